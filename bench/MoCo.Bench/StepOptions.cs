using System.Globalization;

namespace MoCo.Bench;

/// <summary>The options of <c>moco-bench step</c> and <c>step-one</c>.</summary>
/// <param name="Batch">Images per step (a multiple of the 8 BN groups, at most the queue's 4096).</param>
/// <param name="Steps">Timed steps after the warm-up.</param>
/// <param name="Warmup">Untimed steps first.</param>
/// <param name="Data">The data spec of the loader configurations (d) and (e): <c>synthetic</c>, <c>synthetic:N</c> or a path.</param>
/// <param name="Threads">Torch intra-op threads, and the loader's threads.</param>
/// <param name="What">The configurations the parent runs, in order.</param>
/// <param name="Width">The ResNet's width (cifar-small: 16; 64 is the official demo's).</param>
internal sealed record StepOptions(int Batch, int Steps, int Warmup, string Data, int Threads, IReadOnlyList<StepWorkload> What, int Width = 16)
{
    /// <summary>Reads the options, with the defaults of the issue (batch 256, 10 steps, 2 warm-up, synthetic data, one thread per core).</summary>
    /// <exception cref="ArgumentException">An option is malformed or unknown.</exception>
    public static StepOptions From(BenchArgs args)
    {
        int batch = args.Int("batch", 256, CifarSmall.BnSplits);
        if (batch % CifarSmall.BnSplits != 0)
        {
            throw new ArgumentException($"--batch {batch} must be a multiple of the {CifarSmall.BnSplits} BN groups");
        }
        var what = args.String("what", "a,b,c,d,e")
            .Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(StepWorkloads.Parse)
            .ToList();
        var options = new StepOptions(
            batch,
            args.Int("steps", 10, 1),
            args.Int("warmup", 2, 0),
            args.String("data", "synthetic"),
            args.Int("threads", Environment.ProcessorCount, 1),
            what,
            args.Int("width", 16, 1));
        args.EnsureAllRead();
        return options;
    }

    /// <summary>The command-line arguments that reproduce these options for a <c>step-one</c> child running <paramref name="what"/>.</summary>
    public IEnumerable<string> ChildArguments(StepWorkload what)
    {
        var c = CultureInfo.InvariantCulture;
        return
        [
            "step-one",
            "--what", what.Letter(),
            "--batch", Batch.ToString(c),
            "--steps", Steps.ToString(c),
            "--warmup", Warmup.ToString(c),
            "--data", Data,
            "--threads", Threads.ToString(c),
            "--width", Width.ToString(c),
        ];
    }
}
