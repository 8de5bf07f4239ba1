using MoCo.Model.Nn;
using TorchSharp;
using static TorchSharp.torch;

namespace MoCo.Model.Evaluation;

/// <summary>
/// An encoder's eval-mode forward with every BatchNorm folded into the convolution before it (w·γ/√(σ²+ε) and
/// β − μ·γ/√(σ²+ε), folded in float64), optionally in bfloat16: what the kNN monitor runs over its memory bank. The
/// same function as <see cref="ResNet"/> in eval mode, up to rounding (fp32: about 1e-6 relative; bf16: the monitor's
/// top-1 is compared with fp32's in the tests and the benchmark); one pass over each activation instead of two, and
/// no autograd. Built from a snapshot of the weights: rebuild after the encoder changes. Dispose to free it.
/// </summary>
public sealed class FoldedEncoder : IDisposable
{
    private readonly List<Tensor> _owned = [];
    private readonly Conv _stem;
    private readonly bool _maxPool;
    private readonly List<(Conv[] Convs, Conv? Down)> _blocks = [];
    private readonly (Tensor W, Tensor B)[] _head;
    private readonly ScalarType _dtype;

    private readonly record struct Conv(Tensor Weight, Tensor Bias, long Stride, long Padding);

    /// <summary>Folds <paramref name="encoder"/>'s current weights and running statistics, computing in <paramref name="dtype"/> (Float32 or BFloat16).</summary>
    public FoldedEncoder(ResNet encoder, ScalarType dtype = ScalarType.Float32)
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
    }

    /// <summary>The features of <paramref name="x"/> (N x 3 x H x W, float32): the head's output or the pooled backbone, as float32.</summary>
    public Tensor Forward(Tensor x, FeatureSource source)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var y = Apply(_stem, x.dtype == _dtype ? x : x.to(_dtype)).relu_();
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
            y = h.add_(identity).relu_();
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
