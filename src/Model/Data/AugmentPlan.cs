namespace MoCo.Model.Data;

/// <summary>
/// Every random choice of one view, drawn before any pixel is touched (<see cref="Augmenter.Plan"/>), so that a view
/// is a pure function of the image and its plan. Factors of a step that is not applied keep their neutral value.
/// </summary>
/// <param name="Crop">The RandomResizedCrop rectangle.</param>
/// <param name="JitterApplied">Whether ColorJitter runs (its RandomApply coin).</param>
/// <param name="JitterOrder">The order of the jitter's four functions, 2 bits per position (see <see cref="JitterStep"/>).</param>
/// <param name="BrightnessFactor">Brightness factor (1 = unchanged).</param>
/// <param name="ContrastFactor">Contrast factor (1 = unchanged).</param>
/// <param name="SaturationFactor">Saturation factor (1 = unchanged).</param>
/// <param name="HueShift">Hue shift in turns (0 = unchanged).</param>
/// <param name="Grayscale">Whether RandomGrayscale fires.</param>
/// <param name="BlurSigma">Gaussian blur sigma in pixels, 0 when the blur is not applied.</param>
/// <param name="Flip">Whether the view is mirrored horizontally.</param>
public readonly record struct AugmentPlan(
    CropBox Crop,
    bool JitterApplied,
    int JitterOrder,
    double BrightnessFactor,
    double ContrastFactor,
    double SaturationFactor,
    double HueShift,
    bool Grayscale,
    double BlurSigma,
    bool Flip)
{
    /// <summary>Jitter function id of brightness (torchvision's fn_id 0).</summary>
    public const int BrightnessStep = 0;

    /// <summary>Jitter function id of contrast (fn_id 1).</summary>
    public const int ContrastStep = 1;

    /// <summary>Jitter function id of saturation (fn_id 2).</summary>
    public const int SaturationStep = 2;

    /// <summary>Jitter function id of hue (fn_id 3).</summary>
    public const int HueStep = 3;

    /// <summary>The jitter function (0 brightness, 1 contrast, 2 saturation, 3 hue) run at <paramref name="position"/> 0..3.</summary>
    public int JitterStep(int position) => (JitterOrder >> (2 * position)) & 3;
}
