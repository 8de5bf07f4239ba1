namespace MoCo.Model.Nn;

/// <summary>The first layers of a ResNet.</summary>
public enum Stem
{
    /// <summary>7x7 stride-2 convolution and 3x3 stride-2 max-pool (ImageNet).</summary>
    ImageNet,

    /// <summary>3x3 stride-1 convolution, no max-pool (the official MoCo CIFAR demo).</summary>
    Cifar,
}

/// <summary>
/// What an encoder is: a ResNet (<see cref="Arch"/> resnet18/34/50) with <see cref="Width"/> base channels
/// (64 in torchvision), a <see cref="Stem"/>, an output of <see cref="Dim"/> features, optionally through
/// the MoCo v2 MLP head, and BatchNorm split into <see cref="BnGroups"/> groups in training.
/// </summary>
public sealed record EncoderSpec(string Arch, int Width, Stem Stem, int Dim, bool Mlp, int BnGroups)
{
    public static readonly IReadOnlyList<string> Architectures = ["resnet18", "resnet34", "resnet50"];

    /// <summary>Blocks per stage and whether they are bottlenecks.</summary>
    public (int[] Layers, bool Bottleneck) Layout => Arch switch
    {
        "resnet18" => ([2, 2, 2, 2], false),
        "resnet34" => ([3, 4, 6, 3], false),
        "resnet50" => ([3, 4, 6, 3], true),
        _ => throw new ArgumentException($"unknown architecture '{Arch}': use one of {string.Join(", ", Architectures)}"),
    };

    /// <summary>Channels of the backbone's pooled output (the input of fc).</summary>
    public int FeatureDim => Width * 8 * (Layout.Bottleneck ? Bottleneck.Expansion : BasicBlock.Expansion);

    public static Stem ParseStem(string text) => text.Trim().ToLowerInvariant() switch
    {
        "imagenet" => Stem.ImageNet,
        "cifar" => Stem.Cifar,
        _ => throw new ArgumentException($"unknown stem '{text}': use imagenet or cifar"),
    };
}
