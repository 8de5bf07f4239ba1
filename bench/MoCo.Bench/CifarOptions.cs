namespace MoCo.Bench;

/// <summary>The options of <c>moco-bench cifar</c>.</summary>
/// <param name="Epochs">Epochs of pretraining (the cosine schedule spans them).</param>
/// <param name="Data">The data spec: a path (relative ones from the repository root), <c>synthetic</c> or <c>synthetic:N</c>.</param>
/// <param name="Out">The folder of the CSV (relative ones from the repository root).</param>
/// <param name="Threads">Torch intra-op threads, loader threads and kNN threads.</param>
internal sealed record CifarOptions(int Epochs, string Data, string Out, int Threads)
{
    /// <summary>The CIFAR-10 JPEG archive beside the checkout, never copied into it.</summary>
    public const string DefaultData = "../shared/data/cifar10-jpg.tar.gz";

    /// <summary>Reads the options, with the defaults of the issue (10 epochs, the shared CIFAR-10 archive, bench/out).</summary>
    /// <exception cref="ArgumentException">An option is malformed or unknown.</exception>
    public static CifarOptions From(BenchArgs args)
    {
        var options = new CifarOptions(
            args.Int("epochs", 10, 1),
            args.String("data", DefaultData),
            args.String("out", "bench/out"),
            args.Int("threads", Environment.ProcessorCount, 1));
        args.EnsureAllRead();
        return options;
    }
}
