namespace MoCo.Model.Diagnostics;

/// <summary>What the CPU is and which oneDNN kernels it may get: the model, the vector extensions libtorch's kernels choose from, the limit set by the environment.</summary>
public sealed record CpuDescription(string Model, IReadOnlyList<string> VectorExtensions, string? IsaLimit)
{
    /// <summary>The CPU flags that decide which oneDNN and ATen kernels run, in the order of their width.</summary>
    private static readonly string[] Relevant = ["avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_bf16", "amx_tile"];

    /// <summary>This machine, read from <c>/proc/cpuinfo</c> (model "unknown" and no extensions where it cannot be read).</summary>
    public static CpuDescription Current()
    {
        string model = "unknown";
        var flags = new HashSet<string>();
        try
        {
            foreach (var line in File.ReadLines("/proc/cpuinfo"))
            {
                int colon = line.IndexOf(':');
                if (colon < 0)
                {
                    continue;
                }

                var key = line[..colon].Trim();
                var value = line[(colon + 1)..].Trim();
                if (key == "model name" && model == "unknown")
                {
                    model = value;
                }
                else if (key == "flags" && flags.Count == 0)
                {
                    flags.UnionWith(value.Split(' ', StringSplitOptions.RemoveEmptyEntries));
                }
            }
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }

        var limit = Environment.GetEnvironmentVariable("ONEDNN_MAX_CPU_ISA") ?? Environment.GetEnvironmentVariable("DNNL_MAX_CPU_ISA");
        return new CpuDescription(model, Relevant.Where(flags.Contains).ToList(), string.IsNullOrWhiteSpace(limit) ? null : limit);
    }

    /// <summary>
    /// Whether oneDNN may run bfloat16 on native instructions here: the CPU has AVX512_BF16 or AMX-BF16, and
    /// <c>DNNL_MAX_CPU_ISA</c> (or <c>ONEDNN_MAX_CPU_ISA</c>) does not hold it below them (AVX2 or AVX512_CORE makes bf16 an
    /// emulation, slower than float32).
    /// </summary>
    public bool NativeBf16 =>
        (VectorExtensions.Contains("avx512_bf16") || VectorExtensions.Contains("amx_bf16"))
        && (IsaLimit is null || IsaLimit.Equals("ALL", StringComparison.OrdinalIgnoreCase)
            || IsaLimit.Contains("BF16", StringComparison.OrdinalIgnoreCase) || IsaLimit.Contains("AMX", StringComparison.OrdinalIgnoreCase)
            || IsaLimit.Contains("FP16", StringComparison.OrdinalIgnoreCase));

    /// <summary>
    /// A warning for training in <paramref name="precision"/> on this CPU when it computes bf16 without native bf16
    /// instructions (<see cref="NativeBf16"/>), else null: oneDNN then emulates bf16, which made the cifar-small step about
    /// 16x slower than float32 (<c>moco-bench precision</c> under <c>DNNL_MAX_CPU_ISA=AVX2</c>, bench/README.md).
    /// </summary>
    /// <param name="precision">The run's precision.</param>
    public string? EmulatedBf16Warning(MoCo.Model.Nn.Precision precision) => precision == MoCo.Model.Nn.Precision.Bf16Mixed && !NativeBf16
        ? $"precision bf16-mixed on {this}: without native bf16 instructions (AVX512_BF16 or AMX) oneDNN emulates bf16, which made the "
            + "cifar-small step about 16x slower than fp32 on such a CPU (bench/README.md, moco-bench precision); --precision fp32 is the fast choice here"
        : null;

    public override string ToString() =>
        $"{Model} ({(VectorExtensions.Count == 0 ? "no AVX2" : string.Join(" ", VectorExtensions))}; oneDNN ISA {(IsaLimit is null ? "the best available" : "limited to " + IsaLimit)})";
}
