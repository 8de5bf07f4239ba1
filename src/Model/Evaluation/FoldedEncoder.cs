using MoCo.Model.Nn;
using TorchSharp;
using static TorchSharp.torch;

namespace MoCo.Model.Evaluation;

/// <summary>
/// An encoder's eval-mode forward with every BatchNorm folded into the convolution before it (w·γ/√(σ²+ε) and
/// β − μ·γ/√(σ²+ε), folded in float64), optionally in bfloat16: what the kNN monitor runs over its memory bank. The
/// same function as <see cref="ResNet"/> in eval mode, up to rounding (fp32: about 1e-6 relative; bf16: the monitor's
/// top-1 is compared with fp32's in the tests and the benchmark); one pass over each activation instead of two, and
/// no autograd. Activations are channels-last in memory where that is safe (<see cref="UsesChannelsLast"/>). Built from a
/// snapshot of the weights: rebuild after the encoder changes. Dispose to free it.
/// </summary>
public sealed class FoldedEncoder : IDisposable
{
    private readonly List<Tensor> _owned = [];
    private readonly Conv _stem;
    private readonly bool _maxPool;
    private readonly List<(Conv[] Convs, Conv? Down)> _blocks = [];
    private readonly (Tensor W, Tensor B)[] _head;
    private readonly ScalarType _dtype;
    private bool _channelsLast;

    /// <summary>
    /// The most channels a convolution may have in or out for the channels-last layout to be used. On this project's cloud
    /// CPUs (their CPUID leaves for caches and cores zeroed, see <see cref="AlignedConvolution"/>) oneDNN's channels-last
    /// 1x1 kernels computed 512 or more output channels wrongly (5e-2 to 1e-1 off) or stopped the process with SIGFPE,
    /// for float32 and bfloat16 alike; every shape up to 256 channels computed correctly (ConvolutionNumericsTests).
    /// </summary>
    public const long ChannelsLastLimit = 256;

    private readonly record struct Conv(Tensor Weight, Tensor Bias, long Stride, long Padding);

    /// <summary>Folds <paramref name="encoder"/>'s current weights and running statistics, computing in <paramref name="dtype"/> (Float32 or BFloat16).</summary>
    /// <param name="encoder">The encoder; its weights and running statistics are copied.</param>
    /// <param name="dtype">Float32 or BFloat16.</param>
    /// <param name="channelsLast">Whether the channels-last layout may be used where it is safe (<see cref="UsesChannelsLast"/>); false
    /// keeps the contiguous layout (what the monitor ran before 2026-12-03, for the benchmark's comparison).</param>
    public FoldedEncoder(ResNet encoder, ScalarType dtype = ScalarType.Float32, bool channelsLast = true)
    {
        ArgumentNullException.ThrowIfNull(encoder);
        if (dtype is not (ScalarType.Float32 or ScalarType.BFloat16))
        {
            throw new ArgumentException($"a folded encoder computes in float32 or bfloat16, not {dtype}", nameof(dtype));
        }
        _dtype = dtype;
        var spec = encoder.Spec;
        double eps = encoder.Norms[0].Eps;
        if (encoder.Norms.Any(n => n.Eps != eps))
        {
            throw new ArgumentException("the encoder's BatchNorms differ in epsilon", nameof(encoder));
        }
        var sd = encoder.state_dict();
        using var _ = no_grad();
        Conv Fold(string conv, string bn, long stride, long padding)
        {
            using var scope = NewDisposeScope();
            var w = sd[conv + ".weight"].to(ScalarType.Float64);
            var scale = sd[bn + ".weight"].to(ScalarType.Float64) / (sd[bn + ".running_var"].to(ScalarType.Float64) + eps).sqrt();
            var weight = (w * scale.view(-1, 1, 1, 1)).to(dtype).contiguous().MoveToOuterDisposeScope();
            var bias = (sd[bn + ".bias"].to(ScalarType.Float64) - sd[bn + ".running_mean"].to(ScalarType.Float64) * scale)
                .to(dtype).contiguous().MoveToOuterDisposeScope();
            _owned.Add(weight);
            _owned.Add(bias);
            return new Conv(weight, bias, stride, padding);
        }

        _maxPool = spec.Stem == Stem.ImageNet;
        _stem = _maxPool ? Fold("conv1", "bn1", 2, 3) : Fold("conv1", "bn1", 1, 1);
        var (layers, bottleneck) = spec.Layout;
        for (int layer = 0; layer < 4; layer++)
        {
            for (int block = 0; block < layers[layer]; block++)
            {
                string p = $"layer{layer + 1}.{block}.";
                long stride = block == 0 && layer > 0 ? 2 : 1;
                var convs = bottleneck
                    ? new[] { Fold(p + "conv1", p + "bn1", 1, 0), Fold(p + "conv2", p + "bn2", stride, 1), Fold(p + "conv3", p + "bn3", 1, 0) }
                    : new[] { Fold(p + "conv1", p + "bn1", stride, 1), Fold(p + "conv2", p + "bn2", 1, 1) };
                Conv? down = sd.ContainsKey(p + "downsample.0.weight") ? Fold(p + "downsample.0", p + "downsample.1", stride, 0) : null;
                _blocks.Add((convs, down));
            }
        }
        var names = spec.Mlp ? new[] { "fc.0", "fc.2" } : new[] { "fc" };
        _head = names.Select(n =>
        {
            var w = sd[n + ".weight"].to(dtype).contiguous();
            var b = sd[n + ".bias"].to(dtype).contiguous();
            _owned.Add(w);
            _owned.Add(b);
            return (w, b);
        }).ToArray();
        _channelsLast = channelsLast && _blocks.SelectMany(b => b.Down is { } d ? b.Convs.Append(d) : b.Convs).Append(_stem)
            .All(c => c.Weight.shape[0] <= ChannelsLastLimit && c.Weight.shape[1] <= ChannelsLastLimit) && AgreesInBothLayouts();
    }

    /// <summary>
    /// Whether the activations run channels-last in memory (<see cref="ChannelsLast"/>): where every convolution has at
    /// most <see cref="ChannelsLastLimit"/> channels in and out, and a forward of two fixed images gave the same features
    /// in both layouts when the encoder was folded (else the contiguous layout, whose kernels
    /// <see cref="AlignedConvolution"/> keeps to safe shapes).
    /// </summary>
    public bool UsesChannelsLast => _channelsLast;

    /// <summary>
    /// The folded network's features of two fixed images in the contiguous and in the channels-last layout agree within
    /// rounding (float32: 1e-4 relative, bfloat16: 5e-2; the wrong kernels were 5e-2 to 1e-1 off in float32, and NaN).
    /// </summary>
    private bool AgreesInBothLayouts()
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator(1);
        var x = rand([2, 3, 32, 32], generator: generator);
        _channelsLast = false;
        var contiguous = Forward(x, FeatureSource.Head).to(ScalarType.Float64);
        _channelsLast = true;
        var channelsLast = Forward(x, FeatureSource.Head).to(ScalarType.Float64);
        double error = ((channelsLast - contiguous).norm().item<double>()) / Math.Max(contiguous.norm().item<double>(), 1e-30);
        return double.IsFinite(error) && error <= (_dtype == ScalarType.BFloat16 ? 5e-2 : 1e-4);
    }

    /// <summary>The features of <paramref name="x"/> (N x 3 x H x W, float32): the head's output or the pooled backbone, as float32.</summary>
    public Tensor Forward(Tensor x, FeatureSource source)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var input = x.dtype == _dtype ? x : x.to(_dtype);
        var y = Apply(_stem, _channelsLast ? ChannelsLast(input) : input).relu_();
        if (_maxPool)
        {
            y = nn.functional.max_pool2d(y, kernel_size: 3, stride: 2, padding: 1);
        }
        foreach (var (convs, down) in _blocks)
        {
            var identity = down is { } d ? Apply(d, y) : y;
            var h = y;
            for (int i = 0; i < convs.Length; i++)
            {
                h = Apply(convs[i], h);
                if (i < convs.Length - 1)
                {
                    h = h.relu_();
                }
            }
            y = h.add_(identity, HeldScalar.One).relu_();
        }
        var features = nn.functional.adaptive_avg_pool2d(y, [1, 1]).flatten(1);
        if (source == FeatureSource.Head)
        {
            for (int i = 0; i < _head.Length; i++)
            {
                features = nn.functional.linear(features, _head[i].W, _head[i].B);
                if (i < _head.Length - 1)
                {
                    features = features.relu_();
                }
            }
        }
        return features.to(ScalarType.Float32).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// <paramref name="x"/> (N x C x H x W) with the channels as its innermost dimension in memory (PyTorch's channels_last:
    /// the same shape, strides C·H·W, 1, W·C, C). oneDNN's convolutions read and write that layout without reordering,
    /// and every convolution given a channels-last input returns one: on cifar-small the bank's forward took 2.2–2.3x less
    /// time than with contiguous tensors, in float32 and in bfloat16 (bench/README.md, <c>moco-bench knn</c>). The weights
    /// stay contiguous (oneDNN reorders them per call either way; they are small beside the activations).
    /// </summary>
    internal static Tensor ChannelsLast(Tensor x) => x.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2);

    private static Tensor Apply(Conv conv, Tensor x) =>
        AlignedConvolution.Conv2d(x, conv.Weight, conv.Stride, conv.Padding, conv.Bias);

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var t in _owned)
        {
            t.Dispose();
        }
        _owned.Clear();
    }
}
