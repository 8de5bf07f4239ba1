using MoCo.Model.Checkpoints;
using MoCo.Model.Collectives;
using MoCo.Model.Data;
using MoCo.Model.Evaluation;
using MoCo.Model.Nn;
using MoCo.Model.Training;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace MoCo.Model.Tests;

public class LinearProbeTests
{
    private readonly ITestOutputHelper _output;

    public LinearProbeTests(ITestOutputHelper output)
    {
        _output = output;
    }

    /// <summary>
    /// A tiny random encoder (width 4, 32 features) whose BN running statistics were fitted to the synthetic images
    /// (five train-mode batches, committed), so that its eval-mode features have a sane scale and differ from the defaults.
    /// </summary>
    private static ResNet TinyBackbone(long seed = 3, int width = 4)
    {
        random.manual_seed(seed);
        var net = new ResNet(new EncoderSpec("resnet18", width, Stem.Cifar, 8, false, 1));
        var data = new SyntheticTexturesDataset(320, train: true, seed: 11);
        var (images, _) = ImagesOf(data);
        using (images)
        using (no_grad())
        {
            net.train();
            for (int b = 0; b < 5; b++)
            {
                using var y = net.Backbone(images.narrow(0, 64 * b, 64));
                net.CommitNormStatistics();
            }
        }
        net.eval();
        return net;
    }

    private static (Tensor Images, long[] Labels) ImagesOf(IImageDataset data)
    {
        var eval = EvalTransform.Cifar();
        var x = empty(data.Count, 3, 32, 32);
        var labels = new long[data.Count];
        var buffer = new float[eval.OutputLength];
        for (int i = 0; i < data.Count; i++)
        {
            eval.Apply(data.Image(i), buffer);
            x[i].copy_(tensor(buffer).view(3, 32, 32));
            labels[i] = data.Label(i);
        }
        return (x, labels);
    }

    private static List<(string Name, Tensor Value)> Clone(ResNet net) =>
        net.state_dict().Select(p => (p.Key, p.Value.clone())).ToList();

    /// <summary>Element-wise equality of two tensors of one shape (exact: no tolerance).</summary>
    private static bool Same(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();

    private static IViewTransform CifarEval => ViewTransforms.Deterministic(EvalTransform.Cifar());

    [Fact]
    public void Head_is_initialised_normal_with_std_0_01_and_zero_bias()
    {
        // 128 features x 1000 classes = 128,000 draws: the sample std has a relative standard error of
        // 1/sqrt(2n) = 0.2%, the mean a standard error of 0.01/sqrt(n) = 2.8e-5; tolerances are ~10 and ~5 of them.
        using var backbone = new ResNet(new EncoderSpec("resnet18", 16, Stem.Cifar, 8, false, 1));
        using var probe = new LinearProbe(backbone, 1000, new LinearProbeSettings { Seed = 7 });
        var weight = probe.Head.weight!;
        Assert.Equal(new long[] { 1000, 128 }, weight.shape);
        Assert.Equal(0.01, weight.std().item<float>(), 0.0002);
        Assert.InRange(weight.mean().item<float>(), -1.5e-4, 1.5e-4);
        Assert.True(probe.Head.bias!.eq(0).all().item<bool>());

        using var same = new LinearProbe(backbone, 1000, new LinearProbeSettings { Seed = 7 });
        using var other = new LinearProbe(backbone, 1000, new LinearProbeSettings { Seed = 8 });
        Assert.True(Same(weight, same.Head.weight!));
        Assert.False(Same(weight, other.Head.weight!));
    }

    [Fact]
    public void Backbone_is_unchanged_after_a_short_probe_BN_statistics_included()
    {
        using var backbone = TinyBackbone();
        var before = Clone(backbone);
        Assert.False(backbone.Norms[0].RunningVar.eq(1).all().item<bool>()); // fitted statistics, not the defaults
        backbone.train(); // the caller's mode: the probe uses eval mode inside and restores this one
        var train = new SyntheticTexturesDataset(80, train: true, seed: 5);
        var test = new SyntheticTexturesDataset(40, train: false, seed: 5);
        var settings = new LinearProbeSettings { Epochs = 2, BatchSize = 32, Seed = 1 };
        LinearProbeReport report;
        using (var probe = new LinearProbe(backbone, 10, settings))
        {
            // the official protocol: RandomResizedCrop + flip views, features recomputed each batch, lr 30
            report = probe.Run(train, test, LinearProbe.TrainTransform(32, AugmentationSettings.CifarMean, AugmentationSettings.CifarStd), CifarEval);
        }
        Assert.Equal(2, report.TrainLoss.Count);
        Assert.Equal(40, report.Final.Count);
        Assert.True(backbone.training);
        var after = backbone.state_dict();
        Assert.Equal(before.Count, after.Count);
        foreach (var (name, value) in before)
        {
            Assert.True(Same(value, after[name]), $"{name} changed");
        }
        Assert.Contains(before, p => p.Name == "bn1.running_mean");
        Assert.Contains(before, p => p.Name == "layer4.1.bn2.num_batches_tracked");
    }

    [Fact]
    public void Same_seed_gives_the_same_probe()
    {
        using var backbone = TinyBackbone();
        var train = new SyntheticTexturesDataset(70, train: true, seed: 5);
        var test = new SyntheticTexturesDataset(30, train: false, seed: 5);
        var settings = new LinearProbeSettings { Epochs = 2, BatchSize = 32, Seed = 4, Lr = 0.05 };
        var augment = LinearProbe.TrainTransform(32, AugmentationSettings.CifarMean, AugmentationSettings.CifarStd);
        using var a = new LinearProbe(backbone, 10, settings);
        using var b = new LinearProbe(backbone, 10, settings);
        var ra = a.Run(train, test, augment, CifarEval);
        var rb = b.Run(train, test, augment, CifarEval);
        Assert.Equal(ra.TrainLoss, rb.TrainLoss);
        Assert.Equal(ra.Test, rb.Test);
        Assert.True(Same(a.Head.weight!, b.Head.weight!));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Sanity_check_throws_when_the_backbone_changes_during_training(bool cacheFeatures)
    {
        using var backbone = TinyBackbone();
        var train = new SyntheticTexturesDataset(40, train: true, seed: 5);
        var test = new SyntheticTexturesDataset(20, train: false, seed: 5);
        var settings = new LinearProbeSettings { Epochs = 2, BatchSize = 20, Seed = 1, CacheFeatures = cacheFeatures };
        using var probe = new LinearProbe(backbone, 10, settings);
        var epochs = new List<int>();
        var e = Assert.Throws<BackboneChangedException>(() => probe.Run(train, test, null, CifarEval, (epoch, _, _) =>
        {
            epochs.Add(epoch);
            if (epoch == 0)
            {
                using var _ = no_grad();
                backbone.Norms[0].RunningMean.add_(1e-3f); // a BN statistic moves, as it would in train mode
            }
        }));
        Assert.Equal([0, 1], epochs);
        Assert.Equal(["bn1.running_mean"], e.ChangedTensors);
        Assert.Contains("bn1.running_mean", e.Message);
        Assert.Contains("sanity check", e.Message);
    }

    [Fact]
    public void Cached_features_require_no_augmentation()
    {
        using var backbone = TinyBackbone();
        var data = new SyntheticTexturesDataset(20, train: true, seed: 5);
        using var probe = new LinearProbe(backbone, 10, new LinearProbeSettings { CacheFeatures = true });
        Assert.Throws<ArgumentException>(() => probe.Run(data, data, LinearProbe.TrainTransform(32), CifarEval));
    }

    [Fact]
    public void Learns_above_chance_on_synthetic_textures()
    {
        // A random encoder sees mostly colour, which the synthetic set makes useless, so the bar is modest:
        // the train loss falls and test top-1 beats chance (10 classes: 10%). lr 30 suits the small features of a
        // trained ResNet-50; the random encoder's features are far larger, so lr 0.05 here. Cached features keep
        // the test near 10 s on two loaded cores. Fully deterministic (seeded), so the bar cannot flake.
        using var backbone = TinyBackbone();
        var train = new SyntheticTexturesDataset(600, train: true, seed: 5);
        var test = new SyntheticTexturesDataset(300, train: false, seed: 5);
        var settings = new LinearProbeSettings { Epochs = 20, Milestones = [12, 16], BatchSize = 64, Seed = 1, CacheFeatures = true, Lr = 0.05 };
        using var probe = new LinearProbe(backbone, 10, settings);
        var seen = new List<double>();
        var report = probe.Run(train, test, null, CifarEval, (epoch, loss, accuracy) =>
        {
            seen.Add(loss);
            _output.WriteLine($"epoch {epoch} loss {loss:F4} top1 {accuracy.Top1:F1} top5 {accuracy.Top5:F1}");
        });
        _output.WriteLine($"{report.Seconds:F2} s");
        Assert.Equal(report.TrainLoss, seen);
        Assert.True(report.TrainLoss[^1] < report.TrainLoss[0], $"loss {report.TrainLoss[0]} -> {report.TrainLoss[^1]}");
        Assert.True(report.TrainLoss.Skip(16).Max() < report.TrainLoss.Take(4).Min(), "the last epochs' loss is below the first epochs'");
        Assert.True(report.Final.Top1 > 10.0, $"top-1 {report.Final.Top1}% is not above chance");
        Assert.True(report.Best.Top1 >= report.Final.Top1);
        Assert.True(report.CachedFeatures);
    }

    [Fact]
    public void Backbone_loaded_from_a_pretrainer_checkpoint_is_identical()
    {
        var config = PretrainerTests.TinyConfig();
        var data = PretrainerTests.TinyData();
        using var dir = new TempDirectory();
        string path = Path.Combine(dir.Path, "pretrained.mocockpt");
        using var pretrainer = new Pretrainer(config, "run-probe", data, SingleProcessCollective.Instance, new BatchLayout(config.BatchSize, config.BnSplits, 1), loaderThreads: 2);
        pretrainer.TrainStep();
        pretrainer.TrainStep(); // weights and BN statistics differ from a fresh encoder
        pretrainer.SaveCheckpoint(path);

        using var loaded = LinearProbe.LoadQueryBackbone(path);
        var expected = pretrainer.Model.EncoderQ.state_dict();
        var actual = loaded.state_dict();
        Assert.Equal(expected.Keys.Order(), actual.Keys.Order());
        foreach (var (name, value) in expected)
        {
            Assert.True(Same(value, actual[name]), $"{name} differs");
        }
        Assert.Equal(config.Encoder, loaded.Spec);
        Assert.False(loaded.training);

        // strict for the backbone: a checkpoint without one backbone tensor is refused, one without fc.* is not
        string partial = Path.Combine(dir.Path, "partial.mocockpt");
        CheckpointFile.Write(partial, pretrainer.Header(), pretrainer.StateTensors().Where(p => p.Key != "model.encoder_q.layer3.0.bn1.running_var").ToList());
        var e = Assert.Throws<CheckpointRejectedException>(() => LinearProbe.LoadQueryBackbone(partial));
        Assert.Contains("model.encoder_q.layer3.0.bn1.running_var", e.Message);
        string headless = Path.Combine(dir.Path, "headless.mocockpt");
        CheckpointFile.Write(headless, pretrainer.Header(), pretrainer.StateTensors().Where(p => !p.Key.StartsWith("model.encoder_q.fc.", StringComparison.Ordinal)).ToList());
        using var backboneOnly = LinearProbe.LoadQueryBackbone(headless);
        Assert.True(Same(backboneOnly.state_dict()["layer4.1.conv2.weight"], expected["layer4.1.conv2.weight"]));
    }
}
