using MoCo.Model;
using MoCo.Model.Nn;
using MoCo.Model.Training;

namespace MoCo.Model.Tests;

/// <summary>Small encoders and MoCo instances that run in milliseconds.</summary>
internal static class TinyModels
{
    public static EncoderSpec Spec(int groups = 2, bool mlp = false, int dim = 8) => new("resnet18", 4, Stem.Cifar, dim, mlp, groups);

    public static MomentumContrast Moco(int groups = 2, int queue = 32, bool symmetric = false, ulong seed = 1, Precision precision = Precision.Fp32, int dim = 8)
    {
        var spec = Spec(groups, dim: dim);
        return new MomentumContrast(() => new ResNet(spec, precision), new MocoSettings(dim, queue, 0.99, 0.1, symmetric), seed);
    }
}
