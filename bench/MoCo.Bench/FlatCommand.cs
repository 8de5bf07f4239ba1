using System.Diagnostics;
using System.Globalization;
using MoCo.Model;
using MoCo.Model.Nn;
using MoCo.Model.Training;
using Spectre.Console;
using TorchSharp;
using static TorchSharp.torch;

namespace MoCo.Bench;

/// <summary>
/// moco-bench flat: flat parameter buffers (<see cref="FlatParameters"/>) against the loop over parameters they replace,
/// in alternating rounds of one process. First what they change alone, the update that touches every parameter
/// (<see cref="Sgd.ZeroGrad"/>, <see cref="Sgd.Step"/>, <see cref="MomentumContrast.MomentumUpdate"/>), then the whole
/// fp32 MoCo step of a world of one (<see cref="MocoStepBench"/>), for ResNet-18 at width 16 and 64 and ResNet-50.
/// </summary>
internal static class FlatCommand
{
    private static readonly CultureInfo C = CultureInfo.InvariantCulture;

    public static int Run(BenchArgs options)
    {
        int threads = options.Int("threads", Environment.ProcessorCount, 1);
        int rounds = options.Int("rounds", 3, 1);
        int updates = options.Int("updates", 30, 1);
        int steps = options.Int("steps", 4, 0); // 0: the update alone
        int batch = options.Int("batch", 64, 8);
        options.EnsureAllRead();
        torch.set_num_threads(threads);
        AnsiConsole.MarkupLine(Markup.Escape($"moco-bench flat: {threads} threads, {rounds} rounds; {updates} updates and {steps} steps (batch {batch}, fp32, 32px) per round; "
            + $"CPU ISA {Environment.GetEnvironmentVariable("DNNL_MAX_CPU_ISA") ?? "default"}"));
        var table = new Table().Title("the loop over parameters (before) against flat buffers (after): medians, ms");
        foreach (var column in new[] { "network", "parameters", "tensors", "update before", "update after", "after / before", "step before", "step after", "after / before" })
        {
            table.AddColumn(column);
        }
        foreach (var (arch, width) in new[] { ("resnet18", 16), ("resnet18", 64), ("resnet50", 64) })
        {
            var config = CifarSmall.Config(1, batch, "synthetic") with { Arch = arch, Width = width };
            var update = new[] { new List<double>(), new List<double>() };
            var step = new[] { new List<double>(), new List<double>() };
            long count = 0;
            int tensors = 0;
            for (int round = 0; round < rounds; round++)
            {
                for (int flat = 0; flat < 2; flat++)
                {
                    using var model = new MomentumContrast(() => new ResNet(config.Encoder), config.Moco, config.Seed);
                    if (flat == 1)
                    {
                        model.UseFlatParameters();
                    }
                    using var sgd = new Sgd(model.EncoderQ.named_parameters().Select(p => ("encoder_q." + p.name, p.parameter)), config.SgdMomentum, config.Wd);
                    if (flat == 1)
                    {
                        sgd.UseFlat(model.FlatQ!);
                    }
                    using (no_grad())
                    {
                        foreach (var (_, p) in sgd.Parameters)
                        {
                            p.grad ??= zeros_like(p);
                            p.grad.normal_();
                        }
                    }
                    count = sgd.Parameters.Sum(p => p.Param.numel());
                    tensors = sgd.Parameters.Count;
                    sgd.Step(0.03); // the momentum buffers exist from here on, as in every step after the first
                    var times = new double[updates];
                    for (int i = 0; i < updates; i++)
                    {
                        long t0 = Stopwatch.GetTimestamp();
                        sgd.ZeroGrad();
                        sgd.Step(0.03);
                        model.MomentumUpdate();
                        times[i] = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
                    }
                    update[flat].Add(StepClock.Median(times));
                }
                for (int flat = 0; flat < 2 && steps > 0; flat++)
                {
                    using var bench = new MocoStepBench(config, batch, Precision.Fp32, flat: flat == 1);
                    step[flat].Add(StepClock.Median(StepClock.Measure(bench, 1, steps)) * 1000);
                }
            }
            double u0 = StepClock.Median(update[0]), u1 = StepClock.Median(update[1]);
            double s0 = steps > 0 ? StepClock.Median(step[0]) : double.NaN, s1 = steps > 0 ? StepClock.Median(step[1]) : double.NaN;
            table.AddRow($"{arch} width {width}", count.ToString("N0", C), tensors.ToString(C), u0.ToString("F2", C), u1.ToString("F2", C), (u1 / u0).ToString("F2", C) + "x",
                steps > 0 ? s0.ToString("F0", C) : "-", steps > 0 ? s1.ToString("F0", C) : "-", steps > 0 ? (s1 / s0).ToString("F3", C) + "x" : "-");
        }
        AnsiConsole.Write(table);
        return 0;
    }
}
