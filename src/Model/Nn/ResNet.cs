using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MoCo.Model.Nn;

/// <summary>
/// A ResNet encoder whose parameter and buffer names are torchvision's (conv1, bn1, layer1.0.conv1, ...,
/// layerN.0.downsample.0/1, fc or fc.0/fc.2 for the MoCo v2 MLP head), so that state dicts map one to one.
/// Every BatchNorm is a <see cref="SplitBatchNorm"/>; convolutions and linear layers follow the
/// <see cref="Precision"/> set on the encoder, and the output has the parameters' dtype (float32; bf16 compute
/// is cast back).
/// </summary>
public sealed class ResNet : nn.Module<Tensor, Tensor>
{
    private readonly MixedConv2d conv1;
    private readonly SplitBatchNorm bn1;
    private readonly Sequential layer1;
    private readonly Sequential layer2;
    private readonly Sequential layer3;
    private readonly Sequential layer4;
    private readonly nn.Module<Tensor, Tensor> fc;

    private readonly bool _maxPool;
    private readonly List<SplitBatchNorm> _norms = [];
    private readonly List<IMixedPrecision> _mixed = [];
    private readonly List<nn.Module<Tensor, Tensor>> _blocks = [];

    public ResNet(EncoderSpec spec, Precision precision = Precision.Fp32)
        : base(nameof(ResNet))
    {
        Spec = spec;
        var (layers, bottleneck) = spec.Layout;
        SplitBatchNorm Norm(long features)
        {
            var bn = new SplitBatchNorm(features, spec.BnGroups);
            _norms.Add(bn);
            return bn;
        }

        long width = spec.Width;
        long inPlanes = width;
        if (spec.Stem == Stem.ImageNet)
        {
            conv1 = new MixedConv2d(3, width, 7, 2, 3);
            _maxPool = true;
        }
        else
        {
            conv1 = new MixedConv2d(3, width, 3, 1, 1);
            _maxPool = false;
        }
        bn1 = Norm(width);
        Sequential Stage(long planes, int blocks, long stride)
        {
            var modules = new List<nn.Module<Tensor, Tensor>>();
            for (int i = 0; i < blocks; i++)
            {
                long s = i == 0 ? stride : 1;
                if (bottleneck)
                {
                    modules.Add(new Bottleneck(inPlanes, planes, s, Norm));
                    inPlanes = planes * Bottleneck.Expansion;
                }
                else
                {
                    modules.Add(new BasicBlock(inPlanes, planes, s, Norm));
                    inPlanes = planes * BasicBlock.Expansion;
                }
            }
            _blocks.AddRange(modules);
            return nn.Sequential(modules.ToArray());
        }

        layer1 = Stage(width, layers[0], 1);
        layer2 = Stage(width * 2, layers[1], 2);
        layer3 = Stage(width * 4, layers[2], 2);
        layer4 = Stage(width * 8, layers[3], 2);
        fc = spec.Mlp
            ? nn.Sequential(new MixedLinear(inPlanes, inPlanes), nn.ReLU(), new MixedLinear(inPlanes, spec.Dim))
            : new MixedLinear(inPlanes, spec.Dim);
        RegisterComponents();
        foreach (var m in modules())
        {
            if (m is IMixedPrecision mp)
            {
                _mixed.Add(mp);
            }
        }
        Precision = precision;
    }

    public EncoderSpec Spec { get; }

    /// <summary>
    /// The parameters in forward order, cut at every boundary where <see cref="SegmentTap"/> is called: segment 0
    /// is the stem (conv1, bn1), segments 1..n the residual blocks of layer1..layer4, the last one the head (fc).
    /// Read afresh on each call (<c>to(dtype)</c> replaces parameters).
    /// </summary>
    public IReadOnlyList<IReadOnlyList<Parameter>> Segments
    {
        get
        {
            var segments = new List<IReadOnlyList<Parameter>> { conv1.parameters().Concat(bn1.parameters()).ToList() };
            segments.AddRange(_blocks.Select(b => b.parameters().ToList()));
            segments.Add(fc.parameters().ToList());
            return segments;
        }
    }

    /// <summary>
    /// When set, every forward that records gradients passes the input of segment s (s ≥ 1) through
    /// <see cref="ISegmentTap.Tap"/>: the identity in value, a point in the autograd graph that backward reaches
    /// once every later segment is done. Null (the default) leaves the graph as it is.
    /// </summary>
    public ISegmentTap? SegmentTap { get; set; }

    /// <summary>Every BatchNorm of the encoder, in registration order.</summary>
    public IReadOnlyList<SplitBatchNorm> Norms => _norms;

    public Precision Precision
    {
        get => _mixed.Count > 0 ? _mixed[0].Precision : Precision.Fp32;
        set
        {
            foreach (var m in _mixed)
            {
                m.Precision = value;
            }
        }
    }

    /// <summary>
    /// Initialises every parameter as torchvision does (convolutions kaiming-normal fan-out, linear layers as
    /// torch.nn.Linear, BN weight 1 and bias 0), drawing only from <paramref name="generator"/>: the result does
    /// not depend on other threads using torch's global generator.
    /// </summary>
    public void ResetParameters(Generator generator)
    {
        using var _ = no_grad();
        foreach (var m in modules())
        {
            switch (m)
            {
                case MixedConv2d conv:
                    conv.ResetParameters(generator);
                    break;
                case MixedLinear linear:
                    linear.ResetParameters(generator);
                    break;
            }
        }
        foreach (var bn in _norms)
        {
            bn.ResetParameters();
        }
    }

    /// <summary>Sets how many BN groups the next training batches hold.</summary>
    public void SetBnGroups(int groups)
    {
        foreach (var bn in _norms)
        {
            bn.Groups = groups;
        }
    }

    public void CommitNormStatistics()
    {
        foreach (var bn in _norms)
        {
            bn.CommitPending();
        }
    }

    public void DropNormStatistics()
    {
        foreach (var bn in _norms)
        {
            bn.DropPending();
        }
    }

    /// <summary>The pooled backbone features (the input of fc), float32.</summary>
    public Tensor Backbone(Tensor x)
    {
        using var scope = NewDisposeScope();
        var y = nn.functional.relu(bn1.forward(conv1.forward(x)), inplace: true);
        if (_maxPool)
        {
            y = nn.functional.max_pool2d(y, kernel_size: 3, stride: 2, padding: 1);
        }
        // layer1..layer4 block by block (what their Sequential forwards do), tapping each block's input
        for (int i = 0; i < _blocks.Count; i++)
        {
            y = _blocks[i].forward(Tapped(i + 1, y));
        }
        y = nn.functional.adaptive_avg_pool2d(y, [1, 1]).flatten(1);
        return (y.dtype == ScalarType.BFloat16 ? y.to(ScalarType.Float32) : y).MoveToOuterDisposeScope();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var features = Tapped(_blocks.Count + 1, Backbone(x));
        var output = fc.forward(features);
        return (output.dtype == ScalarType.BFloat16 ? output.to(ScalarType.Float32) : output).MoveToOuterDisposeScope();
    }

    /// <summary>The input of segment <paramref name="segment"/> through the <see cref="SegmentTap"/>, when one is set and backward will pass it.</summary>
    private Tensor Tapped(int segment, Tensor input) =>
        SegmentTap is { } tap && is_grad_enabled() && input.requires_grad ? tap.Tap(segment, input) : input;

    /// <summary>The encoder's state as torchvision names it; <paramref name="withHead"/> false drops fc.*.</summary>
    public List<KeyValuePair<string, Tensor>> TorchvisionStateDict(bool withHead)
    {
        var result = new List<KeyValuePair<string, Tensor>>();
        foreach (var (name, tensor) in state_dict())
        {
            if (!withHead && name.StartsWith("fc.", StringComparison.Ordinal))
            {
                continue;
            }
            result.Add(new KeyValuePair<string, Tensor>(name, tensor));
        }
        return result;
    }
}
