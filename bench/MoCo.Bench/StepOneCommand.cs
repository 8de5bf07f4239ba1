using MoCo.Model.Nn;
using TorchSharp;

namespace MoCo.Bench;

/// <summary>
/// <c>moco-bench step-one --what X</c>: sets up one configuration, runs its warm-up and timed steps, and writes
/// one <see cref="StepMeasurement"/> JSON line on standard output. Run in a process of its own so that its
/// VmHWM is the peak of that configuration alone.
/// </summary>
internal static class StepOneCommand
{
    /// <summary>Builds the long run that the loader configurations step through (never finished in a bench).</summary>
    private const int Epochs = 1000;

    /// <summary>Runs configuration <paramref name="what"/>; returns the process exit code.</summary>
    public static int Run(StepOptions options, StepWorkload what)
    {
        torch.set_num_threads(options.Threads);
        var config = (CifarSmall.Config(Epochs, options.Batch, options.Data) with { Width = options.Width }).Validate();
        using var bench = Create(what, config, options);
        var seconds = StepClock.Measure(bench, options.Warmup, options.Steps);
        double median = StepClock.Median(seconds);
        var measurement = new StepMeasurement(
            what.Letter(),
            options.Batch,
            options.Steps,
            options.Warmup,
            median,
            seconds.Min(),
            seconds.Max(),
            options.Batch / median,
            ProcessMemory.PeakResidentMiB(),
            torch.get_num_threads(),
            Environment.ProcessorCount,
            bench.Note);
        Console.Out.WriteLine(measurement.ToJson());
        Console.Out.Flush();
        return 0;
    }

    private static IStepBench Create(StepWorkload what, Model.Training.RunConfig config, StepOptions options)
    {
        switch (what)
        {
            case StepWorkload.BareLoop:
                return new BareLoopBench(config, options.Batch);
            case StepWorkload.MocoFp32:
                return new MocoStepBench(config, options.Batch, Precision.Fp32, flat: true); // as Pretrainer runs it
            case StepWorkload.MocoBf16:
                return new MocoStepBench(config, options.Batch, Precision.Bf16Mixed, flat: true);
            case StepWorkload.Loader:
            {
                var (data, note) = BenchData.Open(options.Data, options.Batch, options.Threads);
                return new LoaderBench(config, data, options.Batch, options.Threads, note);
            }
            case StepWorkload.Pretrainer:
            {
                var (data, note) = BenchData.Open(options.Data, options.Batch, options.Threads);
                return new PretrainerBench(config, data, options.Threads, note);
            }
            default:
                throw new ArgumentOutOfRangeException(nameof(what), what, null);
        }
    }
}
