using MoCo.Model.Training;

namespace MoCo.Model.Data;

/// <summary>
/// The transforms of a run, derived from its configuration in one place, so that the evaluation views are
/// normalised exactly as the training views (a v1 or v2 run at 32 pixels uses ImageNet statistics throughout).
/// </summary>
public static class RunTransforms
{
    /// <summary>The pretraining augmentation: cifar (official CIFAR demo), v1 or v2 (aug+).</summary>
    public static AugmentationSettings Pretrain(RunConfig config) => config.Augmentation switch
    {
        "v1" => AugmentationSettings.MocoV1(config.ImageSize),
        "v2" => AugmentationSettings.MocoV2(config.ImageSize),
        _ => AugmentationSettings.CifarDemo(config.ImageSize),
    };

    /// <summary>
    /// The test transform with the pretraining's normalisation: only normalise at 64 pixels or less (CIFAR-sized
    /// images), else resize the shorter side to size·256/224 and centre-crop.
    /// </summary>
    public static IViewTransform Eval(RunConfig config)
    {
        var train = Pretrain(config);
        int size = config.ImageSize;
        int resize = size <= 64 ? size : size * 256 / 224;
        return ViewTransforms.Deterministic(new EvalTransform(resize, size, train.Mean, train.Std));
    }

    /// <summary>The linear probe's training transform (RandomResizedCrop + flip) with the pretraining's normalisation.</summary>
    public static AugmentationSettings LinearProbeTrain(RunConfig config)
    {
        var train = Pretrain(config);
        return AugmentationSettings.LinearProbeTrain(config.ImageSize, train.Mean, train.Std);
    }
}
