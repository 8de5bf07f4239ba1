namespace MoCo.Model.Diagnostics;

/// <summary>The numerical self-check found a layer this machine computes wrongly: training would give wrong results or NaN.</summary>
public sealed class NumericsCheckFailedException(NumericsReport report) : Exception(Describe(report))
{
    public NumericsReport Report { get; } = report;

    /// <summary>What failed, where, and what the user can do about it.</summary>
    public static string Describe(NumericsReport report)
    {
        var failed = report.Entries.Where(e => !e.Passed).Take(5)
            .Select(e => $"{e.Name} {(e.Finite ? e.RelativeError.ToString("0.0e0") : "NaN/Inf")} (tolerance {e.Tolerance:0e0})");
        return $"the numerical self-check failed on this machine ({report.Setting}): {string.Join("; ", failed)}. "
            + "libtorch's CPU kernels compute this network wrongly here, so training would diverge or learn from wrong gradients. "
            + "Try another oneDNN kernel set (DNNL_MAX_CPU_ISA=AVX2 or AVX512_CORE), --precision fp32 when bf16-mixed fails, "
            + "or another width; `moco doctor` prints every layer's check";
    }
}
