using System.Globalization;
using MoCo.Model.Diagnostics;
using MoCo.Model.Nn;
using Spectre.Console;
using TorchSharp;
using static TorchSharp.torch;

namespace MoCo.Bench;

/// <summary>
/// moco-bench conv-sweep: the evidence behind <see cref="AlignedConvolution"/>, reproducible on any machine. Every
/// convolution shape of a grid (input and output channels from <c>--channels</c>, 3x3 and 1x1 kernels, strides 1 and 2,
/// with and without the input gradient, 12x12 images, batch 8) runs forward and backward through libtorch's own
/// <c>conv2d</c> and through <see cref="AlignedConvolution.Conv2d"/>, each checked against a float64 computation by
/// <see cref="NumericsCheck.CheckLayer"/> (output, input gradient and weight gradient of the first and last sample;
/// tolerance 1e-4 in float32 and 3e-2 in bfloat16 on ‖a − b‖ / ‖b‖). The table counts the shapes with any wrong or
/// non-finite tensor. The 1x1 stride-2 backward with 512 → 1024 channels runs in a child process of its own, because
/// on the machines where oneDNN's blocking goes wrong it ends the process with SIGFPE.
/// </summary>
internal static class ConvSweepCommand
{
    private static readonly CultureInfo C = CultureInfo.InvariantCulture;

    public static int Run(BenchArgs options)
    {
        string only = options.String("only", "");
        var channels = options.String("channels", "1,3,4,7,8,12,16,17,24,32,48,64").Split(',').Select(t => long.Parse(t, C)).ToArray();
        var dtypes = options.String("dtypes", "fp32,bf16").Split(',').Select(ParseDtype).ToArray();
        int threads = options.Int("threads", Environment.ProcessorCount, 1);
        options.EnsureAllRead();
        torch.set_num_threads(threads);
        if (only.Length > 0)
        {
            // the child: one case through libtorch's conv2d, float32; exit 0 when it ran (right or wrong)
            var p = only.Split(',').Select(t => long.Parse(t, C)).ToArray();
            var call = new LayerCall("conv2d", [8, p[0], p[4], p[4]], [p[1], p[0], p[2], p[2]], p[3], p[2] / 2, ScalarType.Float32, true);
            using var g = new Generator(11);
            var worst = NumericsCheck.CheckLayer(call, 8, CPU, g, Libtorch).Max(e => double.IsFinite(e.RelativeError) ? e.RelativeError : double.PositiveInfinity);
            Console.WriteLine(worst.ToString("0.0e0", C));
            return 0;
        }

        var cases = (
            from k in new long[] { 3, 1 }
            from s in new long[] { 1, 2 }
            from dx in new[] { true, false }
            from ic in channels
            from oc in channels
            select (ic, oc, k, s, dx)).ToList();
        AnsiConsole.MarkupLine(Markup.Escape($"conv-sweep: {cases.Count} shapes (channels {string.Join(",", channels)}; 3x3 and 1x1; stride 1 and 2; "
            + $"with and without the input gradient; 8x C x 12 x 12) per dtype; {threads} threads; CPU {CpuDescription.Current()}; "
            + $"DNNL_MAX_CPU_ISA {Environment.GetEnvironmentVariable("DNNL_MAX_CPU_ISA") ?? "unset"}"));

        var table = new Table().AddColumns("dtype", "convolution", "shapes", "wrong", "of which NaN/inf", "worst finite error", "first wrong shapes");
        foreach (var dtype in dtypes)
        {
            foreach (var (name, convolution) in new (string, NumericsCheck.Convolution)[] { ("libtorch conv2d", Libtorch), ("AlignedConvolution", AlignedConvolution.Conv2d) })
            {
                int wrong = 0, nonFinite = 0;
                double worst = 0;
                var examples = new List<string>();
                using var generator = new Generator(11);
                foreach (var (ic, oc, k, s, dx) in cases)
                {
                    using var scope = NewDisposeScope();
                    var call = new LayerCall("conv2d", [8, ic, 12, 12], [oc, ic, k, k], s, k / 2, dtype, dx);
                    var entries = NumericsCheck.CheckLayer(call, 8, CPU, generator, convolution).ToList();
                    if (entries.All(e => e.Passed))
                    {
                        worst = Math.Max(worst, entries.Max(e => e.RelativeError));
                        continue;
                    }

                    wrong++;
                    nonFinite += entries.Any(e => !e.Finite) ? 1 : 0;
                    worst = Math.Max(worst, entries.Where(e => e.Finite).Select(e => e.RelativeError).DefaultIfEmpty(0).Max());
                    if (examples.Count < 3)
                    {
                        examples.Add($"{ic}→{oc} {k}x{k} s{s}{(dx ? " dx" : "")}: {entries.First(e => !e.Passed).Name}");
                    }
                }

                table.AddRow(dtype == ScalarType.BFloat16 ? "bf16" : "fp32", name, cases.Count.ToString(C), wrong.ToString(C), nonFinite.ToString(C),
                    worst.ToString("0.0e0", C), Markup.Escape(string.Join("; ", examples)));
            }
        }

        AnsiConsole.Write(table);
        var crash = ChildRun.StartRaw(["conv-sweep", "--only", "512,1024,1,2,14", "--threads", threads.ToString(C)]);
        AnsiConsole.MarkupLine(Markup.Escape("libtorch conv2d, 512 → 1024 channels, 1x1 stride 2, 14x14, backward (fp32, child process): "
            + (crash.ExitCode == 0 ? $"ran, worst error {crash.Output.Trim()}" : $"the process died, exit code {crash.ExitCode} ({Signal(crash.ExitCode)}): {crash.ErrorTail.Split('\n').LastOrDefault(l => l.Length > 0)}")));
        using var aligned = new Generator(11);
        var alignedWorst = NumericsCheck.CheckLayer(new LayerCall("conv2d", [8, 512, 14, 14], [1024, 512, 1, 1], 2, 0, ScalarType.Float32, true), 8, CPU, aligned)
            .Max(e => e.RelativeError);
        AnsiConsole.MarkupLine(Markup.Escape($"AlignedConvolution, the same shape: ran, worst error {alignedWorst.ToString("0.0e0", C)}"));
        return 0;
    }

    private static Tensor Libtorch(Tensor input, Tensor weight, long stride, long padding) =>
        nn.functional.conv2d(input, weight, null, strides: [stride, stride], padding: [padding, padding]);

    private static ScalarType ParseDtype(string text) => text switch
    {
        "fp32" => ScalarType.Float32,
        "bf16" => ScalarType.BFloat16,
        _ => throw new ArgumentException($"--dtypes takes fp32 and bf16, not '{text}'"),
    };

    private static string Signal(int exitCode) => exitCode switch
    {
        136 or -8 => "SIGFPE",
        139 or -11 => "SIGSEGV",
        134 or -6 => "SIGABRT",
        _ => "an error",
    };
}
