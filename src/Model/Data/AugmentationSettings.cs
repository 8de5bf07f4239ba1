using System.Collections.Immutable;

namespace MoCo.Model.Data;

/// <summary>
/// An augmentation pipeline: its parameters and the order of its steps (<see cref="Ops"/>). Immutable; the presets
/// reproduce the official MoCo code (facebookresearch/moco main_moco.py, main_lincls.py, the CIFAR-10 colab demo).
/// A strength or probability of 0 disables its step even when the step is listed.
/// </summary>
public sealed record AugmentationSettings
{
    /// <summary>ImageNet channel means (torchvision's normalize in main_moco.py).</summary>
    public static readonly (float R, float G, float B) ImageNetMean = (0.485f, 0.456f, 0.406f);

    /// <summary>ImageNet channel standard deviations.</summary>
    public static readonly (float R, float G, float B) ImageNetStd = (0.229f, 0.224f, 0.225f);

    /// <summary>CIFAR-10 channel means of the MoCo CIFAR demo.</summary>
    public static readonly (float R, float G, float B) CifarMean = (0.4914f, 0.4822f, 0.4465f);

    /// <summary>CIFAR-10 channel standard deviations of the MoCo CIFAR demo.</summary>
    public static readonly (float R, float G, float B) CifarStd = (0.2023f, 0.1994f, 0.2010f);

    /// <summary>Side of the square output view in pixels.</summary>
    public int Size { get; init; } = 224;

    /// <summary>RandomResizedCrop area range as a fraction of the image (torchvision default (0.08, 1)).</summary>
    public (double Min, double Max) Scale { get; init; } = (0.08, 1.0);

    /// <summary>RandomResizedCrop aspect-ratio range, width / height (torchvision default (3/4, 4/3)).</summary>
    public (double Min, double Max) Ratio { get; init; } = (3.0 / 4.0, 4.0 / 3.0);

    /// <summary>ColorJitter brightness strength: factor ~ U(max(0, 1 - s), 1 + s); 0 disables.</summary>
    public double Brightness { get; init; }

    /// <summary>ColorJitter contrast strength: factor ~ U(max(0, 1 - s), 1 + s); 0 disables.</summary>
    public double Contrast { get; init; }

    /// <summary>ColorJitter saturation strength: factor ~ U(max(0, 1 - s), 1 + s); 0 disables.</summary>
    public double Saturation { get; init; }

    /// <summary>ColorJitter hue strength in [0, 0.5]: shift ~ U(-s, s); 0 disables.</summary>
    public double Hue { get; init; }

    /// <summary>Probability that ColorJitter is applied (RandomApply p; 1 = always, as in MoCo v1).</summary>
    public double JitterProbability { get; init; } = 1.0;

    /// <summary>RandomGrayscale probability.</summary>
    public double GrayscaleProbability { get; init; }

    /// <summary>Probability that the Gaussian blur is applied (RandomApply p).</summary>
    public double BlurProbability { get; init; }

    /// <summary>Range of the blur's sigma in pixels, drawn uniformly (MoCo v2: [0.1, 2.0]).</summary>
    public (double Min, double Max) BlurSigma { get; init; } = (0.1, 2.0);

    /// <summary>RandomHorizontalFlip probability.</summary>
    public double FlipProbability { get; init; } = 0.5;

    /// <summary>Normalisation means per channel (R, G, B).</summary>
    public (float R, float G, float B) Mean { get; init; } = ImageNetMean;

    /// <summary>Normalisation standard deviations per channel (R, G, B).</summary>
    public (float R, float G, float B) Std { get; init; } = ImageNetStd;

    /// <summary>The steps in the order they run: RandomResizedCrop first, Normalize last, each at most once.</summary>
    public ImmutableArray<AugmentOp> Ops { get; init; } =
        [AugmentOp.RandomResizedCrop, AugmentOp.HorizontalFlip, AugmentOp.Normalize];

    /// <summary>
    /// MoCo v1 (main_moco.py): RandomResizedCrop(size, scale=(0.2, 1)), RandomGrayscale(p=0.2),
    /// ColorJitter(0.4, 0.4, 0.4, 0.4) always applied, RandomHorizontalFlip, Normalize.
    /// </summary>
    /// <param name="size">Output side.</param>
    /// <param name="mean">Normalisation means; ImageNet's when omitted.</param>
    /// <param name="std">Normalisation standard deviations; ImageNet's when omitted.</param>
    public static AugmentationSettings MocoV1(int size = 224, (float R, float G, float B)? mean = null, (float R, float G, float B)? std = null) => new()
    {
        Size = size,
        Scale = (0.2, 1.0),
        GrayscaleProbability = 0.2,
        Brightness = 0.4,
        Contrast = 0.4,
        Saturation = 0.4,
        Hue = 0.4,
        JitterProbability = 1.0,
        FlipProbability = 0.5,
        Mean = mean ?? ImageNetMean,
        Std = std ?? ImageNetStd,
        Ops = [AugmentOp.RandomResizedCrop, AugmentOp.Grayscale, AugmentOp.ColorJitter, AugmentOp.HorizontalFlip, AugmentOp.Normalize],
    };

    /// <summary>
    /// MoCo v2 "aug+" (main_moco.py --aug-plus): RandomResizedCrop(size, scale=(0.2, 1)),
    /// RandomApply([ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8), RandomGrayscale(p=0.2),
    /// RandomApply([GaussianBlur([.1, 2.])], p=0.5), RandomHorizontalFlip, Normalize.
    /// </summary>
    /// <param name="size">Output side.</param>
    /// <param name="mean">Normalisation means; ImageNet's when omitted.</param>
    /// <param name="std">Normalisation standard deviations; ImageNet's when omitted.</param>
    public static AugmentationSettings MocoV2(int size = 224, (float R, float G, float B)? mean = null, (float R, float G, float B)? std = null) => new()
    {
        Size = size,
        Scale = (0.2, 1.0),
        Brightness = 0.4,
        Contrast = 0.4,
        Saturation = 0.4,
        Hue = 0.1,
        JitterProbability = 0.8,
        GrayscaleProbability = 0.2,
        BlurProbability = 0.5,
        BlurSigma = (0.1, 2.0),
        FlipProbability = 0.5,
        Mean = mean ?? ImageNetMean,
        Std = std ?? ImageNetStd,
        Ops = [AugmentOp.RandomResizedCrop, AugmentOp.ColorJitter, AugmentOp.Grayscale, AugmentOp.GaussianBlur, AugmentOp.HorizontalFlip, AugmentOp.Normalize],
    };

    /// <summary>
    /// The official MoCo CIFAR-10 demo (moco/colab notebook): RandomResizedCrop(32) with torchvision's default
    /// scale (0.08, 1), RandomHorizontalFlip(p=0.5), RandomApply([ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
    /// RandomGrayscale(p=0.2), Normalize(CIFAR mean and std).
    /// </summary>
    /// <param name="size">Output side.</param>
    /// <param name="mean">Normalisation means; the demo's CIFAR values when omitted.</param>
    /// <param name="std">Normalisation standard deviations; the demo's CIFAR values when omitted.</param>
    public static AugmentationSettings CifarDemo(int size = 32, (float R, float G, float B)? mean = null, (float R, float G, float B)? std = null) => new()
    {
        Size = size,
        Scale = (0.08, 1.0),
        FlipProbability = 0.5,
        Brightness = 0.4,
        Contrast = 0.4,
        Saturation = 0.4,
        Hue = 0.1,
        JitterProbability = 0.8,
        GrayscaleProbability = 0.2,
        Mean = mean ?? CifarMean,
        Std = std ?? CifarStd,
        Ops = [AugmentOp.RandomResizedCrop, AugmentOp.HorizontalFlip, AugmentOp.ColorJitter, AugmentOp.Grayscale, AugmentOp.Normalize],
    };

    /// <summary>
    /// Linear-probe training (main_lincls.py): RandomResizedCrop(size) with the default scale (0.08, 1),
    /// RandomHorizontalFlip, Normalize.
    /// </summary>
    /// <param name="size">Output side.</param>
    /// <param name="mean">Normalisation means; ImageNet's when omitted.</param>
    /// <param name="std">Normalisation standard deviations; ImageNet's when omitted.</param>
    public static AugmentationSettings LinearProbeTrain(int size, (float R, float G, float B)? mean = null, (float R, float G, float B)? std = null) => new()
    {
        Size = size,
        Scale = (0.08, 1.0),
        FlipProbability = 0.5,
        Mean = mean ?? ImageNetMean,
        Std = std ?? ImageNetStd,
        Ops = [AugmentOp.RandomResizedCrop, AugmentOp.HorizontalFlip, AugmentOp.Normalize],
    };

    /// <summary>Throws <see cref="ArgumentException"/> when a parameter is out of range or the step order is invalid.</summary>
    public void Validate()
    {
        if (Size <= 0)
        {
            throw new ArgumentException($"Size must be positive, got {Size}.");
        }
        if (!(Scale.Min > 0 && Scale.Min <= Scale.Max))
        {
            throw new ArgumentException($"Scale must satisfy 0 < min <= max, got {Scale}.");
        }
        if (!(Ratio.Min > 0 && Ratio.Min <= Ratio.Max))
        {
            throw new ArgumentException($"Ratio must satisfy 0 < min <= max, got {Ratio}.");
        }
        if (Brightness < 0 || Contrast < 0 || Saturation < 0)
        {
            throw new ArgumentException("Brightness, contrast and saturation strengths must be non-negative.");
        }
        if (Hue < 0 || Hue > 0.5)
        {
            throw new ArgumentException($"Hue strength must lie in [0, 0.5], got {Hue}.");
        }
        CheckProbability(JitterProbability, nameof(JitterProbability));
        CheckProbability(GrayscaleProbability, nameof(GrayscaleProbability));
        CheckProbability(BlurProbability, nameof(BlurProbability));
        CheckProbability(FlipProbability, nameof(FlipProbability));
        if (!(BlurSigma.Min > 0 && BlurSigma.Min <= BlurSigma.Max && BlurSigma.Max <= GaussianBlur.MaxSigma))
        {
            throw new ArgumentException($"BlurSigma must satisfy 0 < min <= max <= {GaussianBlur.MaxSigma}, got {BlurSigma}.");
        }
        if (!(Std.R > 0 && Std.G > 0 && Std.B > 0))
        {
            throw new ArgumentException($"Std must be positive, got {Std}.");
        }
        if (Ops.IsDefaultOrEmpty || Ops[0] != AugmentOp.RandomResizedCrop || Ops[^1] != AugmentOp.Normalize)
        {
            throw new ArgumentException("Ops must start with RandomResizedCrop and end with Normalize.");
        }
        if (Ops.Distinct().Count() != Ops.Length)
        {
            throw new ArgumentException("Each op may appear at most once in Ops.");
        }
    }

    /// <summary>Value equality, including the step order element by element.</summary>
    public bool Equals(AugmentationSettings? other)
    {
        return other is not null
            && Size == other.Size
            && Scale == other.Scale
            && Ratio == other.Ratio
            && Brightness == other.Brightness
            && Contrast == other.Contrast
            && Saturation == other.Saturation
            && Hue == other.Hue
            && JitterProbability == other.JitterProbability
            && GrayscaleProbability == other.GrayscaleProbability
            && BlurProbability == other.BlurProbability
            && BlurSigma == other.BlurSigma
            && FlipProbability == other.FlipProbability
            && Mean == other.Mean
            && Std == other.Std
            && Ops.AsSpan().SequenceEqual(other.Ops.AsSpan());
    }

    /// <summary>Hash consistent with <see cref="Equals(AugmentationSettings?)"/>.</summary>
    public override int GetHashCode()
    {
        var hash = new HashCode();
        hash.Add(Size);
        hash.Add(Scale);
        hash.Add(Ratio);
        hash.Add(Brightness);
        hash.Add(Contrast);
        hash.Add(Saturation);
        hash.Add(Hue);
        hash.Add(JitterProbability);
        hash.Add(GrayscaleProbability);
        hash.Add(BlurProbability);
        hash.Add(BlurSigma);
        hash.Add(FlipProbability);
        hash.Add(Mean);
        hash.Add(Std);
        foreach (AugmentOp op in Ops.AsSpan())
        {
            hash.Add(op);
        }
        return hash.ToHashCode();
    }

    private static void CheckProbability(double p, string name)
    {
        if (!(p >= 0 && p <= 1))
        {
            throw new ArgumentException($"{name} must lie in [0, 1], got {p}.");
        }
    }
}
