using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MoCo.Model.Nn;

/// <summary>torchvision's BasicBlock (ResNet-18/34): two 3x3 convolutions and a shortcut.</summary>
public sealed class BasicBlock : nn.Module<Tensor, Tensor>
{
    public const int Expansion = 1;

    private readonly MixedConv2d conv1;
    private readonly SplitBatchNorm bn1;
    private readonly MixedConv2d conv2;
    private readonly SplitBatchNorm bn2;
    private readonly Sequential? downsample;

    public BasicBlock(long inPlanes, long planes, long stride, Func<long, SplitBatchNorm> norm)
        : base(nameof(BasicBlock))
    {
        conv1 = new MixedConv2d(inPlanes, planes, 3, stride, 1);
        bn1 = norm(planes);
        conv2 = new MixedConv2d(planes, planes, 3, 1, 1);
        bn2 = norm(planes);
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
        y = bn2.forward(conv2.forward(y));
        y = y.add_(identity, HeldScalar.One);
        return nn.functional.relu(y, inplace: true).MoveToOuterDisposeScope();
    }
}
