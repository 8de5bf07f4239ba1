using MoCo.Model.Data;
using MoCo.Model.Nn;
using MoCo.Model.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace MoCo.Model.Evaluation;

/// <summary>Which features an evaluation reads from an encoder.</summary>
public enum FeatureSource
{
    /// <summary>The encoder's output (after fc or the MLP head), as the official CIFAR demo's kNN monitor.</summary>
    Head,

    /// <summary>The pooled backbone features (the input of fc), as the linear probe.</summary>
    Backbone,
}

/// <summary>Runs an encoder in eval mode over a data set under a deterministic transform, in batches.</summary>
public static class FeatureExtractor
{
    /// <summary>L2-normalised (or raw) features, N x D float32, in data set order, and the labels.</summary>
    public static (Tensor Features, Tensor Labels) Extract(ResNet encoder, IImageDataset dataset, IViewTransform transform, FeatureSource source, bool normalise, int batchSize = 256, int threads = 2)
    {
        bool wasTraining = encoder.training;
        encoder.eval();
        try
        {
            var device = encoder.parameters().First().device;
            return Extract(x => source == FeatureSource.Head ? encoder.forward(x) : encoder.Backbone(x), device, dataset, transform, normalise, batchSize, threads);
        }
        finally
        {
            encoder.train(wasTraining);
        }
    }

    /// <summary>
    /// The features <paramref name="forward"/> computes for every image of <paramref name="dataset"/> (batches built on
    /// the CPU, moved to <paramref name="device"/>), L2-normalised or raw, in data set order, and the labels.
    /// </summary>
    public static (Tensor Features, Tensor Labels) Extract(Func<Tensor, Tensor> forward, Device device, IImageDataset dataset, IViewTransform transform, bool normalise,
        int batchSize = 256, int threads = 2)
    {
        using var _ = no_grad();
        bool onCpu = device.type == DeviceType.CPU;
        var chunks = new List<Tensor>();
        for (int start = 0; start < dataset.Count; start += batchSize)
        {
            int n = Math.Min(batchSize, dataset.Count - start);
            using var scope = NewDisposeScope();
            int first = start;
            var x = ViewBatch.Build(dataset, transform, n, i => first + i, (_, index) => new CounterRng(0, RngStream.Augmentation, 0, (ulong)index), threads);
            if (!onCpu)
            {
                x = x.to(device, non_blocking: true);
            }
            var f = forward(x);
            if (normalise)
            {
                f = nn.functional.normalize(f, dim: 1);
            }
            chunks.Add(f.MoveToOuterDisposeScope());
        }
        var labels = new long[dataset.Count];
        for (int i = 0; i < labels.Length; i++)
        {
            labels[i] = dataset.Label(i);
        }
        var features = cat(chunks, 0);
        foreach (var c in chunks)
        {
            c.Dispose();
        }
        return (features, onCpu ? tensor(labels) : tensor(labels, device: device));
    }
}
