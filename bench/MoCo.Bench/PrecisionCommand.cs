using System.Diagnostics;
using System.Globalization;
using MoCo.Model.Nn;
using Spectre.Console;
using TorchSharp;

namespace MoCo.Bench;

/// <summary>
/// moco-bench precision: the fp32 and the bf16-mixed MoCo step of one worker (<see cref="MocoStepBench"/>, flat buffers as
/// training runs them, pre-made views) built side by side in one process and timed in alternation, fp32 then bf16-mixed,
/// pair after pair. Each pair's ratio compares two steps a few hundred milliseconds apart, so the hypervisor's slow
/// swings (threefold within minutes on the development VMs) fall on both halves of a pair: the median of the pairs'
/// ratios is the speed-up, with its quartiles as the spread. <c>moco-bench step</c> runs each configuration in a burst of
/// its own process (for its peak memory), where such a swing can land on one configuration only.
/// </summary>
internal static class PrecisionCommand
{
    private static readonly CultureInfo C = CultureInfo.InvariantCulture;

    public static int Run(BenchArgs options)
    {
        int threads = options.Int("threads", Environment.ProcessorCount, 1);
        int pairs = options.Int("pairs", 20, 3);
        int warmup = options.Int("warmup", 2, 0);
        int batch = options.Int("batch", 256, 8);
        int width = options.Int("width", 16, 4);
        options.EnsureAllRead();
        torch.set_num_threads(threads);
        var config = CifarSmall.Config(1, batch, "synthetic") with { Width = width };
        AnsiConsole.MarkupLine(Markup.Escape($"moco-bench precision: cifar-small at width {width}, batch {batch}, {threads} threads, {pairs} pairs after {warmup} warm-up pair(s); "
            + $"CPU ISA {Environment.GetEnvironmentVariable("DNNL_MAX_CPU_ISA") ?? "default"}"));
        using var fp32 = new MocoStepBench(config, batch, Precision.Fp32, flat: true);
        using var bf16 = new MocoStepBench(config, batch, Precision.Bf16Mixed, flat: true);
        var fp32Ms = new List<double>();
        var bf16Ms = new List<double>();
        var ratios = new List<double>();
        for (int i = 0; i < warmup + pairs; i++)
        {
            double a = Time(fp32, i), b = Time(bf16, i);
            if (i >= warmup)
            {
                fp32Ms.Add(a);
                bf16Ms.Add(b);
                ratios.Add(a / b);
            }
        }

        var sorted = ratios.Order().ToArray();
        double Quantile(double q) => sorted[(int)Math.Round(q * (sorted.Length - 1))];
        var table = new Table().AddColumns("configuration", "median step (ms)", "images/s", "fp32 / bf16-mixed, per pair: median", "quartiles", "min..max");
        table.AddRow("fp32 (flat buffers)", StepClock.Median(fp32Ms).ToString("F0", C), (batch / StepClock.Median(fp32Ms) * 1000).ToString("F1", C), "", "", "");
        table.AddRow("bf16-mixed (flat buffers)", StepClock.Median(bf16Ms).ToString("F0", C), (batch / StepClock.Median(bf16Ms) * 1000).ToString("F1", C),
            StepClock.Median(ratios).ToString("F2", C) + "x", $"{Quantile(0.25).ToString("F2", C)}..{Quantile(0.75).ToString("F2", C)}x",
            $"{sorted[0].ToString("F2", C)}..{sorted[^1].ToString("F2", C)}x");
        AnsiConsole.Write(table);
        return 0;
    }

    private static double Time(MocoStepBench bench, int index)
    {
        long t0 = Stopwatch.GetTimestamp();
        bench.Step(index);
        return Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
    }
}
