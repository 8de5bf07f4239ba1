using System.Diagnostics;
using MoCo.Model.Checkpoints;
using MoCo.Model.Data;
using MoCo.Model.Nn;
using MoCo.Model.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MoCo.Model.Evaluation;

/// <summary>
/// The linear evaluation of the official facebookresearch/moco main_lincls.py: a frozen backbone, kept in eval
/// mode throughout so that its BatchNorm running statistics never move, runs under no_grad; only a new linear
/// classifier fc (feature_dim -> classes, weights ~ N(0, <see cref="LinearProbeSettings.InitStd"/>), bias 0)
/// is trained with SGD on cross-entropy, and top-1/top-5 on the test set are measured after every epoch.
/// Before training the backbone's state dict is snapshotted; after training every tensor must be
/// bit-identical (main_lincls's sanity_check), or <see cref="BackboneChangedException"/> is thrown.
/// Deterministic from <see cref="LinearProbeSettings.Seed"/>: the fc initialisation and the augmentation come from
/// <see cref="RngStream.LinearProbe"/>, the data order from <see cref="RngStream.EpochOrder"/> with its own sub key.
/// </summary>
public sealed class LinearProbe : IDisposable
{
    // Sub keys of the counter streams, so that the probe never reuses a pretraining stream (sub 0).
    private const ulong OrderSub = 1;
    private const ulong InitSub = 1;
    private const ulong AugmentSub = 2;

    private readonly ResNet _backbone;
    private readonly LinearProbeSettings _settings;
    private readonly Linear _fc;
    private readonly Sgd _optimizer;
    private bool _ran;

    /// <summary>Creates the probe of <paramref name="backbone"/> (not owned, never trained) for <paramref name="classes"/> classes.</summary>
    public LinearProbe(ResNet backbone, int classes, LinearProbeSettings settings)
    {
        ArgumentNullException.ThrowIfNull(backbone);
        ArgumentOutOfRangeException.ThrowIfLessThan(classes, 2);
        _backbone = backbone;
        _settings = settings.Validate();
        Classes = classes;
        FeatureDim = backbone.Spec.FeatureDim;
        _fc = nn.Linear(FeatureDim, classes);
        InitialiseHead(_fc, settings.InitStd, settings.Seed);
        _optimizer = new Sgd(_fc.named_parameters().Select(p => ("fc." + p.name, p.parameter)), settings.Momentum, settings.WeightDecay);
    }

    /// <summary>Number of classes of the head.</summary>
    public int Classes { get; }

    /// <summary>Width of the backbone's pooled features, the head's input.</summary>
    public int FeatureDim { get; }

    /// <summary>The linear classifier being trained: weight Classes x FeatureDim, bias Classes.</summary>
    public Linear Head => _fc;

    /// <summary>The settings of this probe.</summary>
    public LinearProbeSettings Settings => _settings;

    /// <summary>
    /// The training transform of main_lincls.py: RandomResizedCrop(size) with scale (0.08, 1), horizontal flip,
    /// normalisation (ImageNet statistics unless given).
    /// </summary>
    public static IViewTransform TrainTransform(int size, (float R, float G, float B)? mean = null, (float R, float G, float B)? std = null) =>
        ViewTransforms.Random(new Augmenter(AugmentationSettings.LinearProbeTrain(size, mean, std)));

    /// <summary>
    /// Builds the backbone of <paramref name="spec"/> from weights of any layout (an official MoCo checkpoint, a
    /// torchvision state_dict, safetensors), as main_lincls.py loads module.encoder_q.*: strict for the backbone, the
    /// head left as built (the probe does not use it); in eval mode.
    /// </summary>
    /// <exception cref="InvalidDataException">A backbone tensor is missing or has another shape.</exception>
    public static ResNet LoadQueryBackbone(EncoderWeights weights, EncoderSpec spec, Precision precision = Precision.Fp32)
    {
        ArgumentNullException.ThrowIfNull(weights);
        var encoder = new ResNet(spec, precision);
        try
        {
            weights.LoadInto(encoder, withHead: false);
            encoder.eval();
            return encoder;
        }
        catch
        {
            encoder.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Builds the query backbone of a MoCo checkpoint, as main_lincls.py loads module.encoder_q.*: the encoder is
    /// constructed from the checkpoint's <see cref="RunConfig"/> and every tensor model.encoder_q.&lt;name&gt; is
    /// copied into it. Strict for the backbone: each of its tensors must be present with the right shape. The
    /// encoder's own head (fc.*) is copied when present; the probe does not use it.
    /// </summary>
    /// <exception cref="CheckpointRejectedException">The file fails verification or lacks a backbone tensor.</exception>
    public static ResNet LoadQueryBackbone(string checkpointPath, Precision precision = Precision.Fp32)
    {
        using var checkpoint = CheckpointFile.Read(checkpointPath);
        var config = RunConfig.FromJson(checkpoint.Header.ConfigJson);
        var encoder = new ResNet(config.Encoder, precision);
        try
        {
            using var _ = no_grad();
            foreach (var (name, target) in encoder.state_dict())
            {
                string key = "model.encoder_q." + name;
                if (!checkpoint.TryGet(key, out var source))
                {
                    if (name.StartsWith("fc.", StringComparison.Ordinal))
                    {
                        continue;
                    }
                    throw new CheckpointRejectedException(checkpoint.Info.Path, $"lacks backbone tensor {key}");
                }
                if (!source.shape.SequenceEqual(target.shape) || source.dtype != target.dtype)
                {
                    throw new CheckpointRejectedException(checkpoint.Info.Path,
                        $"tensor {key} is {source.dtype} [{string.Join(",", source.shape)}], the encoder expects {target.dtype} [{string.Join(",", target.shape)}]");
                }
                target.copy_(source);
            }
            encoder.eval();
            return encoder;
        }
        catch
        {
            encoder.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Trains the head for <see cref="LinearProbeSettings.Epochs"/> epochs and evaluates it after each one. Runs once.
    /// </summary>
    /// <param name="train">The training images.</param>
    /// <param name="test">The evaluation images.</param>
    /// <param name="trainTransform">The training augmentation (<see cref="TrainTransform"/> for the official one), or
    /// null to train on <paramref name="testTransform"/> views without augmentation; must be null with
    /// <see cref="LinearProbeSettings.CacheFeatures"/>.</param>
    /// <param name="testTransform">The deterministic test transform (<see cref="EvalTransform"/>).</param>
    /// <param name="onEpoch">Called after each epoch with (epoch, mean train loss, test accuracy).</param>
    /// <exception cref="BackboneChangedException">A backbone tensor differs after training from before.</exception>
    public LinearProbeReport Run(IImageDataset train, IImageDataset test, IViewTransform? trainTransform, IViewTransform testTransform,
        Action<int, double, Accuracy>? onEpoch = null)
    {
        ArgumentNullException.ThrowIfNull(train);
        ArgumentNullException.ThrowIfNull(test);
        ArgumentNullException.ThrowIfNull(testTransform);
        if (_settings.CacheFeatures && trainTransform is not null)
        {
            throw new ArgumentException("CacheFeatures trains on features computed once under the test transform: pass no train transform (no augmentation).", nameof(trainTransform));
        }
        if (_ran)
        {
            throw new InvalidOperationException("A linear probe runs once; create a new one to probe again.");
        }
        _ran = true;

        var clock = Stopwatch.StartNew();
        bool wasTraining = _backbone.training;
        var snapshot = Snapshot(_backbone);
        var losses = new List<double>(_settings.Epochs);
        var accuracies = new List<Accuracy>(_settings.Epochs);
        try
        {
            _backbone.eval();
            var schedule = _settings.Schedule;
            if (_settings.CacheFeatures)
            {
                var (trainFeatures, trainLabels) = FeatureExtractor.Extract(_backbone, train, testTransform, FeatureSource.Backbone, normalise: false, _settings.BatchSize, _settings.Threads);
                var (testFeatures, testLabels) = FeatureExtractor.Extract(_backbone, test, testTransform, FeatureSource.Backbone, normalise: false, _settings.BatchSize, _settings.Threads);
                using (trainFeatures)
                using (trainLabels)
                using (testFeatures)
                using (testLabels)
                {
                    for (int epoch = 0; epoch < _settings.Epochs; epoch++)
                    {
                        double lr = schedule.At(epoch, 0, 1);
                        double loss = TrainEpoch(train.Count, epoch, lr, (indices, start, n) =>
                        {
                            using var index = tensor(indices.AsSpan(start, n).ToArray().Select(i => (long)i).ToArray());
                            return (trainFeatures.index_select(0, index), trainLabels.index_select(0, index));
                        });
                        var accuracy = EvaluateCached(testFeatures, testLabels);
                        Record(epoch, loss, accuracy);
                    }
                }
            }
            else
            {
                var trainView = trainTransform ?? testTransform;
                for (int epoch = 0; epoch < _settings.Epochs; epoch++)
                {
                    double lr = schedule.At(epoch, 0, 1);
                    int e = epoch;
                    double loss = TrainEpoch(train.Count, epoch, lr, (indices, start, n) =>
                    {
                        using var images = Images(train, indices, start, n, trainView, e);
                        using var __ = no_grad();
                        return (_backbone.Backbone(images), Labels(train, indices, start, n));
                    });
                    var accuracy = Evaluate(test, testTransform);
                    Record(epoch, loss, accuracy);
                }
            }
            SanityCheck(_backbone, snapshot);
        }
        finally
        {
            foreach (var (_, t) in snapshot)
            {
                t.Dispose();
            }
            _backbone.train(wasTraining);
        }
        int best = 0;
        for (int i = 1; i < accuracies.Count; i++)
        {
            if (accuracies[i].Top1 > accuracies[best].Top1)
            {
                best = i;
            }
        }
        return new LinearProbeReport(losses, accuracies, best, _settings.CacheFeatures, clock.Elapsed.TotalSeconds);

        void Record(int epoch, double loss, Accuracy accuracy)
        {
            losses.Add(loss);
            accuracies.Add(accuracy);
            onEpoch?.Invoke(epoch, loss, accuracy);
        }
    }

    /// <summary>Disposes the head and the optimizer state; the backbone belongs to the caller.</summary>
    public void Dispose()
    {
        _optimizer.Dispose();
        _fc.Dispose();
    }

    /// <summary>fc.weight ~ N(0, std²) from the counter stream (seed, LinearProbe, 0, element, InitSub); fc.bias = 0.</summary>
    private static void InitialiseHead(Linear fc, double std, ulong seed)
    {
        var weight = fc.weight!;
        var values = new float[weight.NumberOfElements];
        for (int i = 0; i < values.Length; i++)
        {
            var rng = new CounterRng(seed, RngStream.LinearProbe, 0, (ulong)i, InitSub);
            values[i] = (float)(rng.NextGaussian() * std);
        }
        using var _ = no_grad();
        using var init = tensor(values).view(weight.shape);
        weight.copy_(init);
        fc.bias!.zero_();
    }

    /// <summary>
    /// One epoch over <paramref name="count"/> samples in the order of (seed, EpochOrder, epoch, OrderSub), in
    /// batches of BatchSize, the last one partial. <paramref name="batch"/> gives the features (no grad) and labels
    /// of positions [start, start + n) of the order. Returns the mean loss per sample.
    /// </summary>
    private double TrainEpoch(int count, int epoch, double lr, Func<int[], int, int, (Tensor Features, Tensor Labels)> batch)
    {
        var orderRng = new CounterRng(_settings.Seed, RngStream.EpochOrder, (ulong)epoch, 0, OrderSub);
        int[] order = orderRng.Permutation(count);
        _fc.train();
        double lossSum = 0;
        for (int start = 0; start < count; start += _settings.BatchSize)
        {
            int n = Math.Min(_settings.BatchSize, count - start);
            _backbone.eval(); // the backbone stays in eval mode throughout, as main_lincls's model.eval()
            using var scope = NewDisposeScope();
            var (features, labels) = batch(order, start, n);
            var logits = _fc.forward(features.detach());                 // logits: n x classes
            var loss = nn.functional.cross_entropy(logits, labels);
            _optimizer.ZeroGrad();
            loss.backward();
            _optimizer.Step(lr);
            lossSum += loss.item<float>() * n;
        }
        return lossSum / count;
    }

    /// <summary>Top-1 and top-5 of backbone + head over <paramref name="test"/>, streamed in batches.</summary>
    private Accuracy Evaluate(IImageDataset test, IViewTransform transform)
    {
        _backbone.eval();
        _fc.eval();
        using var _ = no_grad();
        int[] identity = Enumerable.Range(0, test.Count).ToArray();
        long top1 = 0;
        long top5 = 0;
        for (int start = 0; start < test.Count; start += _settings.BatchSize)
        {
            int n = Math.Min(_settings.BatchSize, test.Count - start);
            using var scope = NewDisposeScope();
            var images = Images(test, identity, start, n, transform, 0);
            var logits = _fc.forward(_backbone.Backbone(images));
            var (c1, c5) = Correct(logits, Labels(test, identity, start, n));
            top1 += c1;
            top5 += c5;
        }
        return new Accuracy(100.0 * top1 / test.Count, 100.0 * top5 / test.Count, test.Count);
    }

    /// <summary>Top-1 and top-5 of the head over cached test features.</summary>
    private Accuracy EvaluateCached(Tensor features, Tensor labels)
    {
        _fc.eval();
        using var _ = no_grad();
        long count = features.shape[0];
        long top1 = 0;
        long top5 = 0;
        for (long start = 0; start < count; start += _settings.BatchSize)
        {
            long n = Math.Min(_settings.BatchSize, count - start);
            using var scope = NewDisposeScope();
            var (c1, c5) = Correct(_fc.forward(features.narrow(0, start, n)), labels.narrow(0, start, n));
            top1 += c1;
            top5 += c5;
        }
        return new Accuracy(100.0 * top1 / count, 100.0 * top5 / count, (int)count);
    }

    /// <summary>How many rows of <paramref name="logits"/> (n x C) rank the label first, and among the first min(5, C).</summary>
    private static (long Top1, long Top5) Correct(Tensor logits, Tensor labels)
    {
        int k = (int)Math.Min(5, logits.shape[1]);
        var (_, ranked) = logits.topk(k, dim: 1);                         // n x k
        var hits = ranked.eq(labels.view(-1, 1));
        return (hits.narrow(1, 0, 1).sum().item<long>(), hits.any(1).sum().item<long>());
    }

    /// <summary>Views of images order[start..start+n) as an n x 3 x S x S batch; random draws from (seed, LinearProbe, epoch, index, AugmentSub).</summary>
    private Tensor Images(IImageDataset dataset, int[] order, int start, int n, IViewTransform transform, int epoch)
    {
        ulong seed = _settings.Seed;
        return ViewBatch.Build(dataset, transform, n, i => order[start + i],
            (_, index) => new CounterRng(seed, RngStream.LinearProbe, (ulong)epoch, (ulong)index, AugmentSub), _settings.Threads);
    }

    private static Tensor Labels(IImageDataset dataset, int[] order, int start, int n)
    {
        var labels = new long[n];
        for (int i = 0; i < n; i++)
        {
            labels[i] = dataset.Label(order[start + i]);
        }
        return tensor(labels);
    }

    /// <summary>Clones of every tensor of the backbone's state dict, parameters and BN buffers alike.</summary>
    private static List<KeyValuePair<string, Tensor>> Snapshot(ResNet backbone)
    {
        using var _ = no_grad();
        return backbone.state_dict()
            .Select(p => new KeyValuePair<string, Tensor>(p.Key, p.Value.detach().clone().DetachFromDisposeScope()))
            .ToList();
    }

    /// <summary>main_lincls's sanity_check, bit for bit: throws naming every tensor that is not identical to its snapshot.</summary>
    private static void SanityCheck(ResNet backbone, List<KeyValuePair<string, Tensor>> snapshot)
    {
        var now = backbone.state_dict();
        var changed = new List<string>();
        foreach (var (name, before) in snapshot)
        {
            if (!now.TryGetValue(name, out var after) || !SameBits(before, after))
            {
                changed.Add(name);
            }
        }
        if (changed.Count > 0)
        {
            throw new BackboneChangedException(changed);
        }
    }

    private static bool SameBits(Tensor a, Tensor b)
    {
        if (a.dtype != b.dtype || !a.shape.SequenceEqual(b.shape))
        {
            return false;
        }
        using var ca = a.contiguous();
        using var cb = b.contiguous();
        return ca.bytes.SequenceEqual(cb.bytes);
    }
}
