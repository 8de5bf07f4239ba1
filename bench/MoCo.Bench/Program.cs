using Spectre.Console;

namespace MoCo.Bench;

/// <summary>
/// moco-bench: throughput and memory of the MoCo step against a bare TorchSharp loop of the same network
/// (<c>step</c>, one child process per configuration through <c>step-one</c>), and a short cifar-small
/// pretraining with the kNN monitor after every epoch (<c>cifar</c>), and the TCP ring's all-reduce against
/// PyTorch's Gloo between local processes (<c>allreduce</c>, one child per rank through <c>allreduce-rank</c>), and the
/// gradient all-reduce of two workers flat, in buckets, and in buckets overlapped with backward (<c>buckets</c>).
/// </summary>
internal static class Program
{
    private const string Usage =
        "usage:\n" +
        "  moco-bench step [--batch 256] [--steps 10] [--warmup 2] [--data synthetic|PATH] [--threads T] [--what a,b,c,d,e]\n" +
        "  moco-bench step-one --what a|b|c|d|e [same options as step]   (one configuration; prints one JSON line)\n" +
        "  moco-bench cifar [--epochs 10] [--data ../shared/data/cifar10-jpg.tar.gz] [--out bench/out] [--threads T]\n" +
        "  moco-bench actors [--batch 256] [--steps 30] [--warmup 5] [--checkpoint-every 5] [--rounds 2] [--threads T]   (actor path vs bare loop; checkpoint stall)\n" +
        "  moco-bench buckets [--batch 64] [--width 64] [--steps 8] [--warmup 2] [--rounds 2] [--bucket-mib 25] [--transport inproc,ring] [--threads T]   (flat vs bucketed vs overlapped gradient all-reduce, 2 workers)\n" +
        "  moco-bench knn [--data ../shared/data/cifar10-jpg.tar.gz] [--checkpoint RUN_DIR] [--rounds 2] [--threads T]   (the kNN monitor: unfolded fp32, folded fp32 and bf16 contiguous, and the monitor now: folded, channels-last, fp32 and bf16)\n" +
        "  moco-bench conv-sweep [--channels 1,3,4,7,8,12,16,17,24,32,48,64] [--dtypes fp32,bf16] [--threads T]   (libtorch's conv2d and AlignedConvolution against float64, shape by shape)\n" +
        "  moco-bench shards [--data ../shared/data/cifar10-jpg.tar.gz] [--steps 8] [--rounds 2] [--sizes 10000,100000,1281167] [--work DIR] [--keep true] [--skip throughput|memory] [--threads T]   (the shard loader: img/s against in-memory and on-demand images and the step; peak memory as the shard set grows)\n" +
        "  moco-bench precision [--pairs 20] [--warmup 2] [--batch 256] [--width 16] [--threads T]   (the fp32 and the bf16-mixed step alternated pair by pair in one process: the speed-up)\n" +
        "  moco-bench flat [--rounds 3] [--updates 30] [--steps 4] [--batch 64] [--threads T]   (flat parameter buffers against the loop over parameters: the update alone and the whole step)\n" +
        "  moco-bench allreduce [--sizes 1,4,16,64] [--procs 2,3] [--warmup 5] [--chunks BYTES,...] [--protection aes-gcm,none] [--gloo on|off] [--python /usr/bin/python3] [--rounds 3] [--timeout 120]";

    private const int RedirectedWidth = 200;

    private static int Main(string[] args)
    {
        if (args.Length == 0 || args[0] is "-h" or "--help" or "help")
        {
            Console.WriteLine(Usage);
            return args.Length == 0 ? 2 : 0;
        }
        if (Console.IsOutputRedirected)
        {
            // Spectre falls back to 80 columns without a terminal; the tables are meant to be pasted whole
            AnsiConsole.Profile.Width = RedirectedWidth;
        }
        MoCo.Model.Diagnostics.TorchLogging.QuietWarnings(); // libtorch's per-call warnings (NNPACK on AVX2) are not results
        try
        {
            var options = BenchArgs.Parse(args.AsSpan(1));
            return args[0] switch
            {
                "step" => StepCommand.Run(StepOptions.From(options)),
                "step-one" => StepOneCommand.Run(StepOptions.From(options), StepWorkloads.Parse(options.String("what", ""))),
                "cifar" => CifarCommand.Run(CifarOptions.From(options)),
                "actors" => ActorsCommand.Run(options),
                "allreduce" => AllReduceCommand.Run(AllReduceOptions.From(options)),
                "buckets" => BucketsCommand.Run(options),
                "knn" => KnnCommand.Run(options),
                "conv-sweep" => ConvSweepCommand.Run(options),
                "shards" => ShardsBenchCommand.Run(options),
                "flat" => FlatCommand.Run(options),
                "precision" => PrecisionCommand.Run(options),
                "shards-rss" => ShardsBenchCommand.RunChild(options),
                "allreduce-rank" => AllReduceRankCommand.Run(options),
                _ => throw new ArgumentException($"unknown command '{args[0]}'\n{Usage}"),
            };
        }
        catch (ArgumentException e)
        {
            AnsiConsole.MarkupLine($"[red]{Markup.Escape(e.Message)}[/]");
            return 2;
        }
    }
}
