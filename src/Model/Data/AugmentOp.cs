namespace MoCo.Model.Data;

/// <summary>One step of an augmentation pipeline; <see cref="AugmentationSettings.Ops"/> lists them in the order they run.</summary>
public enum AugmentOp
{
    /// <summary>torchvision RandomResizedCrop: crop a random area and aspect ratio, resize to the output size (PIL bilinear).</summary>
    RandomResizedCrop = 0,

    /// <summary>torchvision ColorJitter (brightness, contrast, saturation, hue in a random order), wrapped in RandomApply.</summary>
    ColorJitter = 1,

    /// <summary>torchvision RandomGrayscale: L = 0.299 R + 0.587 G + 0.114 B replicated to three channels.</summary>
    Grayscale = 2,

    /// <summary>MoCo v2's GaussianBlur (sigma drawn uniformly), wrapped in RandomApply.</summary>
    GaussianBlur = 3,

    /// <summary>torchvision RandomHorizontalFlip.</summary>
    HorizontalFlip = 4,

    /// <summary>ToTensor + Normalize: (x - mean) / std per channel. Always the last step.</summary>
    Normalize = 5,
}
