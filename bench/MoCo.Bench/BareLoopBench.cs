using System.Globalization;
using MoCo.Model.Nn;
using MoCo.Model.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace MoCo.Bench;

/// <summary>
/// (a) The baseline: what plain TorchSharp does with the same network. The query encoder of cifar-small
/// (our <see cref="ResNet"/>, fp32, BN in 8 groups) runs forward on one fixed pre-made batch, cross-entropy
/// against fixed random labels over its 128 outputs, backward, and torch's own SGD (momentum 0.9, wd 5e-4).
/// No second encoder, no queue, no data loading.
/// </summary>
internal sealed class BareLoopBench : IStepBench
{
    private const double Lr = 0.06;

    private readonly ResNet _encoder;
    private readonly optim.Optimizer _optimizer;
    private readonly Tensor _images;
    private readonly Tensor _labels;
    private double _lastLoss = double.NaN;

    /// <summary>Builds the encoder, the optimizer and the batch of <paramref name="batch"/> images.</summary>
    public BareLoopBench(RunConfig config, int batch)
    {
        random.manual_seed(unchecked((long)config.Seed));
        _encoder = new ResNet(config.Encoder, Precision.Fp32);
        _encoder.train();
        _optimizer = optim.SGD(_encoder.parameters(), Lr, momentum: config.SgdMomentum, weight_decay: config.Wd);
        _images = randn(batch, 3, config.ImageSize, config.ImageSize);
        _labels = randint(config.MocoDim, [batch], dtype: ScalarType.Int64);
    }

    /// <inheritdoc />
    public string Note => $"loss {_lastLoss.ToString("F4", CultureInfo.InvariantCulture)}";

    /// <inheritdoc />
    public void Step(int index)
    {
        using var scope = NewDisposeScope();
        _optimizer.zero_grad();
        var output = _encoder.forward(_images); // N x 128
        var loss = nn.functional.cross_entropy(output, _labels);
        loss.backward();
        _optimizer.step();
        _encoder.CommitNormStatistics(); // what a plain BatchNorm does during forward
        _lastLoss = loss.item<float>();
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _labels.Dispose();
        _images.Dispose();
        _optimizer.Dispose();
        _encoder.Dispose();
    }
}
