using MoCo.Model.Data;

namespace MoCo.Model.Tests;

public class AugmentationSettingsTests
{
    [Fact]
    public void MocoV1_follows_main_moco_order_and_parameters()
    {
        var s = AugmentationSettings.MocoV1();
        Assert.Equal([AugmentOp.RandomResizedCrop, AugmentOp.Grayscale, AugmentOp.ColorJitter, AugmentOp.HorizontalFlip, AugmentOp.Normalize], s.Ops.ToArray());
        Assert.Equal(224, s.Size);
        Assert.Equal((0.2, 1.0), s.Scale);
        Assert.Equal((3.0 / 4.0, 4.0 / 3.0), s.Ratio);
        Assert.Equal((0.4, 0.4, 0.4, 0.4), (s.Brightness, s.Contrast, s.Saturation, s.Hue));
        Assert.Equal(1.0, s.JitterProbability);
        Assert.Equal(0.2, s.GrayscaleProbability);
        Assert.Equal(0.0, s.BlurProbability);
        Assert.Equal(0.5, s.FlipProbability);
        Assert.Equal((0.485f, 0.456f, 0.406f), s.Mean);
        Assert.Equal((0.229f, 0.224f, 0.225f), s.Std);
    }

    [Fact]
    public void MocoV2_follows_aug_plus_order_and_parameters()
    {
        var s = AugmentationSettings.MocoV2(160);
        Assert.Equal([AugmentOp.RandomResizedCrop, AugmentOp.ColorJitter, AugmentOp.Grayscale, AugmentOp.GaussianBlur, AugmentOp.HorizontalFlip, AugmentOp.Normalize], s.Ops.ToArray());
        Assert.Equal(160, s.Size);
        Assert.Equal((0.2, 1.0), s.Scale);
        Assert.Equal((0.4, 0.4, 0.4, 0.1), (s.Brightness, s.Contrast, s.Saturation, s.Hue));
        Assert.Equal(0.8, s.JitterProbability);
        Assert.Equal(0.2, s.GrayscaleProbability);
        Assert.Equal(0.5, s.BlurProbability);
        Assert.Equal((0.1, 2.0), s.BlurSigma);
        Assert.Equal(0.5, s.FlipProbability);
        Assert.Equal(AugmentationSettings.ImageNetMean, s.Mean);
    }

    [Fact]
    public void CifarDemo_follows_the_colab_order_and_default_scale()
    {
        var s = AugmentationSettings.CifarDemo();
        Assert.Equal([AugmentOp.RandomResizedCrop, AugmentOp.HorizontalFlip, AugmentOp.ColorJitter, AugmentOp.Grayscale, AugmentOp.Normalize], s.Ops.ToArray());
        Assert.Equal(32, s.Size);
        Assert.Equal((0.08, 1.0), s.Scale);
        Assert.Equal((0.4, 0.4, 0.4, 0.1), (s.Brightness, s.Contrast, s.Saturation, s.Hue));
        Assert.Equal(0.8, s.JitterProbability);
        Assert.Equal(0.2, s.GrayscaleProbability);
        Assert.Equal(0.0, s.BlurProbability);
        Assert.Equal((0.4914f, 0.4822f, 0.4465f), s.Mean);
        Assert.Equal((0.2023f, 0.1994f, 0.2010f), s.Std);
    }

    [Fact]
    public void LinearProbeTrain_is_crop_flip_normalise()
    {
        var s = AugmentationSettings.LinearProbeTrain(224);
        Assert.Equal([AugmentOp.RandomResizedCrop, AugmentOp.HorizontalFlip, AugmentOp.Normalize], s.Ops.ToArray());
        Assert.Equal((0.08, 1.0), s.Scale);
        Assert.Equal((0.0, 0.0, 0.0, 0.0), (s.Brightness, s.Contrast, s.Saturation, s.Hue));
        Assert.Equal(0.0, s.GrayscaleProbability);
        Assert.Equal(0.5, s.FlipProbability);
    }

    [Fact]
    public void Presets_take_normalisation_as_a_parameter()
    {
        var s = AugmentationSettings.MocoV2(32, AugmentationSettings.CifarMean, AugmentationSettings.CifarStd);
        Assert.Equal(AugmentationSettings.CifarMean, s.Mean);
        Assert.Equal(AugmentationSettings.CifarStd, s.Std);
    }

    [Fact]
    public void Settings_have_value_equality_including_op_order()
    {
        Assert.Equal(AugmentationSettings.MocoV2(), AugmentationSettings.MocoV2());
        Assert.Equal(AugmentationSettings.MocoV2().GetHashCode(), AugmentationSettings.MocoV2().GetHashCode());
        var swapped = AugmentationSettings.MocoV2() with
        {
            Ops = [AugmentOp.RandomResizedCrop, AugmentOp.Grayscale, AugmentOp.ColorJitter, AugmentOp.GaussianBlur, AugmentOp.HorizontalFlip, AugmentOp.Normalize],
        };
        Assert.NotEqual(AugmentationSettings.MocoV2(), swapped);
    }

    [Fact]
    public void Validate_rejects_bad_pipelines()
    {
        Assert.Throws<ArgumentException>(() => new Augmenter(AugmentationSettings.MocoV2() with { Ops = [AugmentOp.ColorJitter, AugmentOp.Normalize] }));
        Assert.Throws<ArgumentException>(() => new Augmenter(AugmentationSettings.MocoV2() with { Ops = [AugmentOp.RandomResizedCrop, AugmentOp.Grayscale] }));
        Assert.Throws<ArgumentException>(() => new Augmenter(AugmentationSettings.MocoV2() with
        {
            Ops = [AugmentOp.RandomResizedCrop, AugmentOp.Grayscale, AugmentOp.Grayscale, AugmentOp.Normalize],
        }));
        Assert.Throws<ArgumentException>(() => new Augmenter(AugmentationSettings.MocoV2() with { Hue = 0.6 }));
        Assert.Throws<ArgumentException>(() => new Augmenter(AugmentationSettings.MocoV2() with { GrayscaleProbability = 1.5 }));
        Assert.Throws<ArgumentException>(() => new Augmenter(AugmentationSettings.MocoV2() with { Scale = (0.5, 0.2) }));
    }
}
