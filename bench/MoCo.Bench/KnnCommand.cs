using System.Diagnostics;
using System.Globalization;
using MoCo.Model.Checkpoints;
using MoCo.Model.Data;
using MoCo.Model.Evaluation;
using MoCo.Model.Nn;
using MoCo.Model.Training;
using Spectre.Console;
using TorchSharp;
using static TorchSharp.torch;

namespace MoCo.Bench;

/// <summary>
/// moco-bench knn: the kNN monitor's cost, as it was (the encoder's own eval forward, unfolded, float32, a new similarity
/// product per batch of queries) against BatchNorm folded into the convolutions in float32 and bfloat16 with contiguous
/// activations (the monitor of 2026-12-03 morning) and the monitor now (folded, channels-last where safe, one similarity
/// buffer), in the same rounds: the seconds of the
/// bank's and the queries' features, of the vote, their sum, the ratio to the first configuration, and each one's
/// top-1 and its difference from the first's. A trained encoder (<c>--checkpoint</c>, a run directory or checkpoint
/// of ours) shows accuracy differences a random one hides.
/// </summary>
internal static class KnnCommand
{
    private static readonly CultureInfo C = CultureInfo.InvariantCulture;

    public static int Run(BenchArgs options)
    {
        int threads = options.Int("threads", Environment.ProcessorCount, 1);
        int rounds = options.Int("rounds", 2, 1);
        string dataSpec = options.String("data", "../shared/data/cifar10-jpg.tar.gz");
        string checkpoint = options.String("checkpoint", "");
        torch.set_num_threads(threads);

        RunConfig config;
        var encoder = default(ResNet);
        if (checkpoint.Length > 0)
        {
            string path = Directory.Exists(checkpoint) ? new CheckpointDirectory(checkpoint).List().Last() : checkpoint;
            using var weights = EncoderWeights.Read(path);
            config = weights.Config ?? throw new ArgumentException($"{checkpoint} is not a checkpoint of ours (its run gives the kNN settings)");
            encoder = new ResNet(config.Encoder);
            weights.LoadInto(encoder, withHead: true);
        }
        else
        {
            config = CifarSmall.Config(1, 256, dataSpec);
            torch.random.manual_seed(0);
            encoder = new ResNet(config.Encoder);
        }
        using var _ = encoder;
        encoder.eval();
        var (data, note) = BenchData.Open(dataSpec, 1, threads);
        var transform = RunTransforms.Eval(config);
        var source = config.KnnFeatures == "backbone" ? FeatureSource.Backbone : FeatureSource.Head;
        int classes = data.Train.Classes.Count;
        var monitor = new KnnMonitor(config.KnnK, config.KnnT, source);
        AnsiConsole.MarkupLine(Markup.Escape($"kNN monitor: {config.Arch} width {config.Width} ({config.Stem} stem, {source} features, "
            + $"{(checkpoint.Length > 0 ? "trained: " + checkpoint : "random init")}), k {config.KnnK}, t {config.KnnT}; {note}, {data.Test.Count} test images; "
            + $"{threads} threads, {rounds} round(s); CPU ISA {Environment.GetEnvironmentVariable("DNNL_MAX_CPU_ISA") ?? "default"}"));

        string[] names = ["before: unfolded fp32, batches in turn", "folded fp32, contiguous", "folded bf16, contiguous", "monitor fp32: folded, channels-last",
            "monitor bf16: folded, channels-last"];
        var seconds = names.ToDictionary(n => n, _ => new List<(double Features, double Vote)>());
        var top1 = new Dictionary<string, double>();
        for (int round = 0; round < rounds; round++)
        {
            foreach (var name in names)
            {
                long t0 = Stopwatch.GetTimestamp();
                Tensor bank, bankLabels, queries, labels;
                if (name.StartsWith("before", StringComparison.Ordinal))
                {
                    (bank, bankLabels) = ExtractAsBefore(encoder, data.Train, transform, source, threads);
                    (queries, labels) = ExtractAsBefore(encoder, data.Test, transform, source, threads);
                }
                else
                {
                    using var folded = new FoldedEncoder(encoder, name.Contains("bf16", StringComparison.Ordinal) ? ScalarType.BFloat16 : ScalarType.Float32,
                        channelsLast: name.StartsWith("monitor", StringComparison.Ordinal));
                    var device = encoder.parameters().First().device;
                    (bank, bankLabels) = FeatureExtractor.Extract(x => folded.Forward(x, source), device, data.Train, transform, normalise: true, threads: threads);
                    (queries, labels) = FeatureExtractor.Extract(x => folded.Forward(x, source), device, data.Test, transform, normalise: true, threads: threads);
                }
                double features = Stopwatch.GetElapsedTime(t0).TotalSeconds;
                long t1 = Stopwatch.GetTimestamp();
                // the vote as it was (a new similarity product per batch) for the baseline and the contiguous rows, as it is for the monitor's
                var accuracy = monitor.Predict(queries, labels, bank, bankLabels, classes, reuseSimilarity: name.StartsWith("monitor", StringComparison.Ordinal));
                double vote = Stopwatch.GetElapsedTime(t1).TotalSeconds;
                foreach (var t in new[] { bank, bankLabels, queries, labels })
                {
                    t.Dispose();
                }
                seconds[name].Add((features, vote));
                top1[name] = accuracy.Top1;
                AnsiConsole.MarkupLine(Markup.Escape($"  round {round + 1}: {name}: features {features.ToString("F1", C)} s, vote {vote.ToString("F2", C)} s, top-1 {accuracy.Top1.ToString("F2", C)} %"));
            }
        }

        static double Median(IEnumerable<double> values)
        {
            var sorted = values.Order().ToArray();
            return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
        }

        var table = new Table().AddColumns("configuration", "features s", "vote s", "total s", "speed-up", "top-1 %", "Δ top-1");
        double baseline = Median(seconds[names[0]].Select(s => s.Features + s.Vote));
        foreach (var name in names)
        {
            double total = Median(seconds[name].Select(s => s.Features + s.Vote));
            table.AddRow(name, Median(seconds[name].Select(s => s.Features)).ToString("F1", C), Median(seconds[name].Select(s => s.Vote)).ToString("F2", C),
                total.ToString("F1", C), (baseline / total).ToString("F2", C) + "x", top1[name].ToString("F2", C),
                (top1[name] - top1[names[0]]).ToString("+0.00;-0.00;0.00", C));
        }
        AnsiConsole.Write(table);
        AnsiConsole.MarkupLine("medians over the rounds; each configuration ran in every round, in turn (the machine's noise falls on all of them)");
        return 0;
    }

    /// <summary>
    /// The monitor's features as they were computed before the folded encoder (the baseline of the table): the
    /// encoder's own eval-mode forward (BatchNorm a pass of its own), each batch of 256 built on the calling thread's
    /// helpers before its forward, never while one runs.
    /// </summary>
    private static (Tensor Features, Tensor Labels) ExtractAsBefore(ResNet encoder, IImageDataset dataset, IViewTransform transform, FeatureSource source, int threads)
    {
        using var _ = no_grad();
        const int batchSize = 256;
        var chunks = new List<Tensor>();
        for (int start = 0; start < dataset.Count; start += batchSize)
        {
            using var scope = NewDisposeScope();
            int first = start;
            var x = ViewBatch.Build(dataset, transform, Math.Min(batchSize, dataset.Count - start), i => first + i,
                (_, index) => new CounterRng(0, RngStream.Augmentation, 0, (ulong)index), threads);
            var f = source == FeatureSource.Head ? encoder.forward(x) : encoder.Backbone(x);
            chunks.Add(nn.functional.normalize(f, dim: 1).MoveToOuterDisposeScope());
        }
        var labels = Enumerable.Range(0, dataset.Count).Select(i => (long)dataset.Label(i)).ToArray();
        var features = cat(chunks, 0);
        chunks.ForEach(c => c.Dispose());
        return (features, tensor(labels));
    }
}
