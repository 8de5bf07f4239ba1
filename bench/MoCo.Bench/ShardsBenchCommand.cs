using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using MoCo.Host.Configuration;
using MoCo.Model;
using MoCo.Model.Data;
using MoCo.Model.Data.Shards;
using MoCo.Model.Nn;
using MoCo.Model.Training;
using TorchSharp;
using SkiaSharp;
using Spectre.Console;
using static TorchSharp.torch;

namespace MoCo.Bench;

/// <summary>
/// moco-bench shards: the shard loader against what it replaces and against what the step consumes.
/// <list type="number">
/// <item>Throughput: images per second of <see cref="PretrainLoader"/> (two augmented views per image, the loader
/// threads given) over the same images held decoded in memory (the baseline: no read, no decode), as files decoded on
/// demand, and as shards written by <see cref="ShardWriter"/> and streamed, in alternating rounds; next to it the images
/// per second a fp32 MoCo step consumes in the same process. Two workloads: cifar-small (32 px, the CIFAR demo's
/// augmentation, batch 256) on CIFAR-10's own JPEGs, and ResNet-50 at 224 px (moco-v2's aug+, batch 32) on the same
/// images upscaled to 400x400 JPEGs (about ImageNet's mean size).</item>
/// <item>Memory: the peak resident set of a child process that opens a shard set and runs the loader for some steps,
/// for shard sets of 10 k, 100 k and 1.28 M samples generated from CIFAR-10's JPEGs (written under --work, deleted
/// after unless --keep), and for the CIFAR-10 archive held decoded in memory as it is opened today.</item>
/// </list>
/// </summary>
internal static class ShardsBenchCommand
{
    private static readonly CultureInfo C = CultureInfo.InvariantCulture;

    public static int Run(BenchArgs options)
    {
        int threads = options.Int("threads", Environment.ProcessorCount, 1);
        int steps = options.Int("steps", 12, 1);
        int rounds = options.Int("rounds", 2, 1);
        int stepSteps = options.Int("step-steps", 3, 1);
        string dataSpec = RepoPaths.ResolveData(options.String("data", "../shared/data/cifar10-jpg.tar.gz"));
        string work = options.String("work", Path.Combine(Path.GetTempPath(), "moco-bench-shards"));
        var sizes = options.String("sizes", "10000,100000,1281167").Split(',').Select(s => int.Parse(s, C)).ToArray();
        bool keep = options.String("keep", "false") == "true";
        string skip = options.String("skip", "");
        options.EnsureAllRead();
        torch.set_num_threads(threads);
        Directory.CreateDirectory(work);
        AnsiConsole.MarkupLine(Markup.Escape($"moco-bench shards: {threads} threads, {rounds} rounds of {steps} loader steps, data {dataSpec}, work folder {work}; "
            + $"CPU ISA {Environment.GetEnvironmentVariable("DNNL_MAX_CPU_ISA") ?? "default"}"));
        try
        {
            if (!skip.Contains("throughput", StringComparison.Ordinal))
            {
                Throughput(dataSpec, work, threads, steps, rounds, stepSteps);
            }
            if (!skip.Contains("memory", StringComparison.Ordinal))
            {
                Memory(dataSpec, work, sizes, threads);
            }
        }
        finally
        {
            if (!keep)
            {
                Directory.Delete(work, recursive: true);
            }
        }
        return 0;
    }

    /// <summary>The child of the memory table: opens <c>--data</c>, runs the loader, prints one JSON line.</summary>
    public static int RunChild(BenchArgs options)
    {
        string spec = options.String("data", "");
        int threads = options.Int("threads", Environment.ProcessorCount, 1);
        int steps = options.Int("steps", 20, 1);
        long shuffle = (long)options.Int("shuffle-mib", 16, 1) << 20;
        long readAhead = (long)options.Int("read-ahead-mib", 16, 1) << 20;
        options.EnsureAllRead();
        double before = ProcessMemory.ResidentMiB();
        long t0 = Stopwatch.GetTimestamp();
        var data = DataSource.Open(spec, new DataSourceOptions { Shards = new ShardOptions(shuffle, readAhead) });
        double open = Stopwatch.GetElapsedTime(t0).TotalSeconds;
        double afterOpen = ProcessMemory.ResidentMiB();
        var config = CifarSmall.Config(1, 256, spec);
        var transform = ViewTransforms.Random(new Augmenter(RunTransforms.Pretrain(config)));
        using var loader = new PretrainLoader(data.Train, transform, new BatchLayout(256, CifarSmall.BnSplits, 1), 0, config.Seed, threads);
        t0 = Stopwatch.GetTimestamp();
        loader.Start(0, 0);
        for (int s = 0; s < steps; s++)
        {
            using var batch = loader.Next();
        }
        double seconds = Stopwatch.GetElapsedTime(t0).TotalSeconds;
        Console.WriteLine(JsonSerializer.Serialize(new
        {
            samples = data.Train.Count + data.Test.Count,
            open_seconds = open,
            start_mib = before,
            after_open_mib = afterOpen,
            peak_mib = ProcessMemory.PeakResidentMiB(),
            images_per_second = steps * 256 / seconds,
        }));
        return 0;
    }

    private static void Throughput(string dataSpec, string work, int threads, int steps, int rounds, int stepSteps)
    {
        // cifar-small: the archive decoded in memory (as moco train opens it), and its JPEGs as shards
        var cifar = DataSource.Open(dataSpec);
        var encoded = DataSource.Open(dataSpec, new DataSourceOptions { CacheBudgetBytes = 0 });
        long t0 = Stopwatch.GetTimestamp();
        string cifarShards = WriteShards(encoded, Path.Combine(work, "cifar"), 64L << 20, threads);
        double cifarWrite = Stopwatch.GetElapsedTime(t0).TotalSeconds;
        var cifarStreamed = DataSource.Open(cifarShards);
        var small = CifarSmall.Config(1, 256, dataSpec);

        // ResNet-50 at 224: the first 2000 train images upscaled to 400x400 JPEGs, as an image folder on disk
        string folder = Path.Combine(work, "large-folder");
        WriteLargeFolder(cifar, folder, 2000, 400);
        var largeCached = DataSource.Open(folder);
        var largeFiles = DataSource.Open(folder, new DataSourceOptions { CacheBudgetBytes = 0 });
        t0 = Stopwatch.GetTimestamp();
        string largeShards = WriteShards(largeFiles, Path.Combine(work, "large"), 64L << 20, threads);
        double largeWrite = Stopwatch.GetElapsedTime(t0).TotalSeconds;
        var largeStreamed = DataSource.Open(largeShards);
        var large = MocoV2() with { BatchSize = 32, Data = folder };
        AnsiConsole.MarkupLine(Markup.Escape($"moco shards wrote {cifar.Train.Count} CIFAR-10 train images in {cifarWrite:F1} s and {largeFiles.Train.Count} 400x400 JPEGs in {largeWrite:F1} s"));

        var rows = new List<(string Workload, string Source, IImageDataset Data, RunConfig Config, int Batch)>
        {
            ("cifar-small 32px", "decoded in memory (today)", cifar.Train, small, 256),
            ("cifar-small 32px", "shards, streamed", cifarStreamed.Train, small, 256),
            ("resnet50 224px", "decoded in memory", largeCached.Train, large, 32),
            ("resnet50 224px", "files, decoded on demand", largeFiles.Train, large, 32),
            ("resnet50 224px", "shards, streamed", largeStreamed.Train, large, 32),
        };
        var rates = rows.Select(_ => new List<double>()).ToArray();
        var firsts = rows.Select(_ => new List<double>()).ToArray();
        for (int round = 0; round < rounds; round++)
        {
            for (int i = 0; i < rows.Count; i++)
            {
                var (_, _, data, config, batch) = rows[i];
                // the same images per row of a workload, far more than the loader's few batches of prefetch
                int loaderSteps = batch >= 256 ? steps : steps * 2;
                var transform = ViewTransforms.Random(new Augmenter(RunTransforms.Pretrain(config)));
                using var loader = new PretrainLoader(data, transform, new BatchLayout(batch, config.BnSplits, 1), 0, config.Seed, threads);
                // the first batch waits for the start (for shards, the read-ahead's first group: once per epoch and per
                // change of workers); the batches after it are built one after the other while this thread takes them
                // at once, so no batch made before the clock started can flatter the steady rate
                long start = Stopwatch.GetTimestamp();
                loader.Start(round, 0);
                using (loader.Next())
                {
                }
                firsts[i].Add(Stopwatch.GetElapsedTime(start).TotalSeconds);
                long steady = Stopwatch.GetTimestamp();
                for (int s = 0; s < loaderSteps; s++)
                {
                    using var b = loader.Next();
                }
                rates[i].Add(loaderSteps * batch / Stopwatch.GetElapsedTime(steady).TotalSeconds);
            }
        }
        double smallStep = StepRate(small, 256, stepSteps);
        double largeStep = StepRate(large, 32, Math.Max(1, stepSteps - 1));

        var table = new Table().Title($"loader images/s ({threads} threads, 2 augmented views per image; median of {rounds} rounds) against the fp32 MoCo step's");
        foreach (var column in new[] { "workload", "images from", "first batch s", "loader img/s after it", "vs in memory", "step consumes img/s", "loader / step" })
        {
            table.AddColumn(column);
        }
        double baseline = 0;
        for (int i = 0; i < rows.Count; i++)
        {
            double rate = StepClock.Median(rates[i]);
            if (i == 0 || rows[i].Workload != rows[i - 1].Workload)
            {
                baseline = rate;
            }
            double step = rows[i].Workload.StartsWith("cifar", StringComparison.Ordinal) ? smallStep : largeStep;
            table.AddRow(rows[i].Workload, rows[i].Source, StepClock.Median(firsts[i]).ToString("F2", C), rate.ToString("F0", C), (rate / baseline).ToString("F2", C) + "x",
                step.ToString("F1", C), (rate / step).ToString("F1", C) + "x");
        }
        AnsiConsole.Write(table);
    }

    private static void Memory(string dataSpec, string work, int[] sizes, int threads)
    {
        var encoded = DataSource.Open(dataSpec, new DataSourceOptions { CacheBudgetBytes = 0 });
        var source = (IEncodedImageDataset)encoded.Train;
        var rows = new List<(string Name, JsonElement Result, double Write)>();
        var today = Child(dataSpec, threads);
        rows.Add(($"CIFAR-10 archive, decoded in memory (today), {encoded.Train.Count + encoded.Test.Count} images", today, 0));
        foreach (int size in sizes)
        {
            string folder = Path.Combine(work, $"synthetic-{size}");
            long t0 = Stopwatch.GetTimestamp();
            // shards of about 1000 samples, as ImageNet's usual 1282 shards of 1000 images
            var train = ShardWriter.Write(new Cycled(source, size), folder, "train", 1L << 20, shuffleSeed: null, threads);
            ShardWriter.Write(new Cycled(source, 1000), folder, "test", 1L << 20, shuffleSeed: null, threads);
            ShardWriter.WriteClasses(source.Classes, folder);
            double write = Stopwatch.GetElapsedTime(t0).TotalSeconds;
            rows.Add(($"shards, {size} train samples in {train.Shards.Count} shards", Child(train.Pattern, threads), write));
            Directory.Delete(folder, recursive: true);
        }
        var table = new Table().Title("peak resident memory of a process that opens the data and runs 20 loader steps of 256 (cifar-small augmentation); "
            + "shards with shard-shuffle-mib 16 and shard-read-ahead-mib 16");
        foreach (var column in new[] { "data", "written in s", "opened in s", "MiB after open", "peak MiB", "peak vs first shard row", "loader img/s (start included)" })
        {
            table.AddColumn(column);
        }
        double first = double.NaN;
        foreach (var (name, result, write) in rows)
        {
            double peak = result.GetProperty("peak_mib").GetDouble();
            if (double.IsNaN(first) && name.StartsWith("shards", StringComparison.Ordinal))
            {
                first = peak;
            }
            table.AddRow(Markup.Escape(name), write > 0 ? write.ToString("F0", C) : "-", result.GetProperty("open_seconds").GetDouble().ToString("F1", C),
                result.GetProperty("after_open_mib").GetDouble().ToString("F0", C), peak.ToString("F0", C),
                double.IsNaN(first) ? "-" : (peak / first).ToString("F2", C) + "x", result.GetProperty("images_per_second").GetDouble().ToString("F0", C));
        }
        AnsiConsole.Write(table);
    }

    private static JsonElement Child(string spec, int threads)
    {
        var run = ChildRun.StartRaw(["shards-rss", "--data", spec, "--threads", threads.ToString(C)]);
        string? line = run.Output.Split('\n').Select(l => l.Trim()).LastOrDefault(l => l.StartsWith('{'));
        if (run.ExitCode != 0 || line is null)
        {
            throw new InvalidOperationException($"the memory child for '{spec}' failed (exit {run.ExitCode}): {run.ErrorTail}");
        }
        return JsonDocument.Parse(line).RootElement.Clone();
    }

    private static string WriteShards(DatasetSplits data, string folder, long shardBytes, int threads)
    {
        var train = ShardWriter.Write(data.Train, folder, "train", shardBytes, shuffleSeed: 0, threads);
        ShardWriter.Write(data.Test, folder, "test", shardBytes, shuffleSeed: null, threads);
        ShardWriter.WriteClasses(data.Train.Classes, folder);
        return train.Pattern;
    }

    /// <summary>The first <paramref name="count"/> train images, resized to side x side and encoded as JPEG (quality 90) in class folders, with a small test split.</summary>
    private static void WriteLargeFolder(DatasetSplits data, string folder, int count, int side)
    {
        foreach (var (split, n) in new[] { ("train", count), ("test", 20) })
        {
            var images = split == "train" ? data.Train : data.Test;
            Parallel.For(0, n, i =>
            {
                var image = images.Image(i);
                string dir = Path.Combine(folder, split, images.Classes[images.Label(i)]);
                Directory.CreateDirectory(dir);
                File.WriteAllBytes(Path.Combine(dir, $"{i:D6}.jpg"), Jpeg(image, side));
            });
        }
    }

    private static byte[] Jpeg(ImageU8 image, int side)
    {
        using var small = ShardWriter.ToBitmap(image);
        using var large = small.Resize(new SKImageInfo(side, side, SKColorType.Rgba8888, SKAlphaType.Opaque), new SKSamplingOptions(SKCubicResampler.Mitchell));
        using var encoded = large.Encode(SKEncodedImageFormat.Jpeg, 90);
        return encoded.ToArray();
    }

    /// <summary>The images per second one fp32 MoCo step of <paramref name="batch"/> consumes (median of <paramref name="steps"/> after one warm-up), in one thread per core.</summary>
    private static double StepRate(RunConfig config, int batch, int steps)
    {
        using var bench = new MocoStepBench(config, batch, Precision.Fp32);
        return batch / StepClock.Median(StepClock.Measure(bench, 1, steps));
    }

    private static RunConfig MocoV2()
    {
        var path = Path.Combine(RepoPaths.Root, "hocon", "moco-v2.conf");
        return SettingsReader.Read<RunConfig>(SettingsReader.ParseFile(path), "moco.run", path);
    }

    /// <summary><paramref name="count"/> samples cycling through a data set's encoded images (a large synthetic set without the disk of real images).</summary>
    private sealed class Cycled(IEncodedImageDataset inner, int count) : IEncodedImageDataset
    {
        public int Count => count;

        public IReadOnlyList<string> Classes => inner.Classes;

        public int Label(int index) => inner.Label(index % inner.Count);

        public ImageU8 Image(int index) => inner.Image(index % inner.Count);

        public byte[]? EncodedBytes(int index) => inner.EncodedBytes(index % inner.Count);
    }
}
