using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MoCo.Model.Nn;

/// <summary>torchvision's Bottleneck (ResNet-50): 1x1, 3x3 (stride here, as torchvision v1.5), 1x1 x4.</summary>
public sealed class Bottleneck : nn.Module<Tensor, Tensor>
{
    public const int Expansion = 4;

    private readonly MixedConv2d conv1;
    private readonly SplitBatchNorm bn1;
    private readonly MixedConv2d conv2;
    private readonly SplitBatchNorm bn2;
    private readonly MixedConv2d conv3;
    private readonly SplitBatchNorm bn3;
    private readonly Sequential? downsample;

    public Bottleneck(long inPlanes, long planes, long stride, Func<long, SplitBatchNorm> norm)
        : base(nameof(Bottleneck))
    {
        conv1 = new MixedConv2d(inPlanes, planes, 1, 1, 0);
        bn1 = norm(planes);
        conv2 = new MixedConv2d(planes, planes, 3, stride, 1);
        bn2 = norm(planes);
        conv3 = new MixedConv2d(planes, planes * Expansion, 1, 1, 0);
        bn3 = norm(planes * Expansion);
        if (stride != 1 || inPlanes != planes * Expansion)
        {
            downsample = nn.Sequential(new MixedConv2d(inPlanes, planes * Expansion, 1, stride, 0), norm(planes * Expansion));
        }
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var identity = downsample is null ? x : downsample.forward(x);
        var y = nn.functional.relu(bn1.forward(conv1.forward(x)), inplace: true);
        y = nn.functional.relu(bn2.forward(conv2.forward(y)), inplace: true);
        y = bn3.forward(conv3.forward(y));
        y = y.add_(identity, HeldScalar.One);
        return nn.functional.relu(y, inplace: true).MoveToOuterDisposeScope();
    }
}
