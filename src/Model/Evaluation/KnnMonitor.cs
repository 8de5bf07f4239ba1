using MoCo.Model.Data;
using MoCo.Model.Nn;
using TorchSharp;
using static TorchSharp.torch;

namespace MoCo.Model.Evaluation;

/// <summary>Top-1 and top-5 accuracy in percent.</summary>
public sealed record Accuracy(double Top1, double Top5, int Count);

/// <summary>
/// The weighted kNN monitor of the official MoCo CIFAR demo (after Wu et al. 2018): a memory bank of
/// L2-normalised train features under the test transform; each test feature votes with its k nearest
/// neighbours by cosine similarity, each weighted exp(sim / t); classes ranked by total weight.
/// </summary>
public sealed class KnnMonitor
{
    public KnnMonitor(int k = 200, double temperature = 0.1, FeatureSource source = FeatureSource.Head, ScalarType compute = ScalarType.Float32)
    {
        K = k;
        Temperature = temperature;
        Source = source;
        Compute = compute;
    }

    /// <summary>
    /// What the bank's and the queries' forward computes in: float32, or bfloat16 (features and the vote stay float32).
    /// Either way the encoder runs with its BatchNorms folded into its convolutions (<see cref="FoldedEncoder"/>).
    /// </summary>
    public ScalarType Compute { get; }

    public int K { get; }

    /// <summary>
    /// The monitor's compute type for a <c>knn-precision</c> setting: fp32, bf16, or auto: bf16 where
    /// <paramref name="cpu"/> runs it natively (<see cref="MoCo.Model.Diagnostics.CpuDescription.NativeBf16"/>), else fp32
    /// (emulated bf16 would be slower than fp32). On a CUDA device auto is fp32.
    /// </summary>
    public static ScalarType ComputeFor(string precision, DeviceType device, MoCo.Model.Diagnostics.CpuDescription cpu) => precision switch
    {
        "fp32" => ScalarType.Float32,
        "bf16" => ScalarType.BFloat16,
        "auto" => device == DeviceType.CPU && cpu.NativeBf16 ? ScalarType.BFloat16 : ScalarType.Float32,
        _ => throw new ArgumentException($"unknown kNN precision '{precision}': use auto, fp32 or bf16"),
    };

    public double Temperature { get; }

    public FeatureSource Source { get; }

    public Accuracy Evaluate(ResNet encoder, IImageDataset train, IImageDataset test, IViewTransform transform, int classes, int threads = 2)
    {
        using var folded = new FoldedEncoder(encoder, Compute);
        var device = encoder.parameters().First().device;
        var (bank, bankLabels) = FeatureExtractor.Extract(x => folded.Forward(x, Source), device, train, transform, normalise: true, threads: threads);
        var (queries, labels) = FeatureExtractor.Extract(x => folded.Forward(x, Source), device, test, transform, normalise: true, threads: threads);
        using (bank)
        using (bankLabels)
        using (queries)
        using (labels)
        {
            return Predict(queries, labels, bank, bankLabels, classes);
        }
    }

    /// <summary>kNN prediction of <paramref name="queries"/> (n x D) against <paramref name="bank"/> (N x D).</summary>
    /// <param name="queries">The test features, L2-normalised.</param>
    /// <param name="labels">Their labels.</param>
    /// <param name="bank">The memory bank's features, L2-normalised.</param>
    /// <param name="bankLabels">Their labels.</param>
    /// <param name="classes">The number of classes.</param>
    /// <param name="batchSize">Queries per similarity product.</param>
    /// <param name="reuseSimilarity">Whether every batch writes its similarities into one buffer (true); false allocates a
    /// product per batch, as the monitor did before 2026-12-03 (the benchmark's baseline). The results are the same.</param>
    public Accuracy Predict(Tensor queries, Tensor labels, Tensor bank, Tensor bankLabels, int classes, int batchSize = 512, bool reuseSimilarity = true)
    {
        using var _ = no_grad();
        int k = (int)Math.Min(K, bank.shape[0]);
        long top1 = 0, top5 = 0;
        long n = queries.shape[0];
        using var bankT = bank.t().contiguous(); // D x N
        using Scalar temperature = Temperature; // held (HeldScalar)
        // One similarity buffer for every batch of queries: a new b x N product per batch (100 MB for CIFAR-10's bank) is
        // above glibc's mapping threshold, so it was mapped and faulted in afresh each time, which took 3 of the vote's 4 s.
        using var similarity = reuseSimilarity ? empty(Math.Min(batchSize, n), bank.shape[0], dtype: bank.dtype, device: bank.device) : null;
        for (long start = 0; start < n; start += batchSize)
        {
            using var scope = NewDisposeScope();
            long b = Math.Min(batchSize, n - start);
            var f = queries.narrow(0, start, b);
            // beta 0: the buffer's old values are ignored (NaN included), so this is f·bankᵀ
            var sim = similarity is null ? f.mm(bankT) : similarity.narrow(0, 0, b).addmm_(f, bankT, beta: 0, alpha: 1); // b x N
            var (simWeight, simIndices) = sim.topk(k, dim: -1);     // b x k
            var simLabels = bankLabels.index_select(0, simIndices.flatten()).view(b, k);
            var weight = simWeight.div(temperature).exp_();
            // the official code sums one_hot(label) * weight over the k neighbours; scatter_add is the same sum
            var scores = zeros(b, classes, device: bank.device).scatter_add_(1, simLabels, weight); // b x C
            var ranked = scores.argsort(dim: -1, descending: true);
            var target = labels.narrow(0, start, b).view(-1, 1);
            top1 += ranked.narrow(1, 0, 1).eq(target).sum().item<long>();
            int t5 = Math.Min(5, classes);
            top5 += ranked.narrow(1, 0, t5).eq(target).any(1).sum().item<long>();
        }
        return new Accuracy(100.0 * top1 / n, 100.0 * top5 / n, (int)n);
    }
}
