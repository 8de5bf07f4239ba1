using MoCo.Model.Training;

namespace MoCo.Bench;

/// <summary>
/// The cifar-small configuration both commands measure: ResNet-18 with the CIFAR stem at width 16, a 128-d
/// output, MoCo with K 4096, m 0.99, T 0.1, SplitBatchNorm in 8 groups, a global batch of 256 and the
/// official CIFAR-10 demo's augmentation at 32x32 (lr 0.06 with a cosine schedule, wd 5e-4, SGD momentum 0.9).
/// </summary>
internal static class CifarSmall
{
    /// <summary>The BN groups of the configuration.</summary>
    public const int BnSplits = 8;

    /// <summary>The run configuration for <paramref name="epochs"/> epochs of a global batch of <paramref name="batch"/> on <paramref name="data"/>.</summary>
    public static RunConfig Config(int epochs, int batch, string data) => new()
    {
        Arch = "resnet18",
        Width = 16,
        Stem = "cifar",
        MocoDim = 128,
        MocoK = 4096,
        MocoM = 0.99,
        MocoT = 0.1,
        Mlp = false,
        Symmetric = false,
        BnSplits = BnSplits,
        Epochs = epochs,
        BatchSize = batch,
        Lr = 0.03, // hocon/cifar-small.conf: the demo's 0.06 for batch 512, scaled to 256
        Cos = true,
        Wd = 5e-4,
        SgdMomentum = 0.9,
        Augmentation = "cifar",
        ImageSize = 32,
        Seed = 0,
        Data = data,
        Precision = "fp32",
        KnnK = 200,
        KnnT = 0.1,
    };
}
