using MoCo.Model.Training;

namespace MoCo.Model.Data;

/// <summary>
/// Produces one normalised training view (3 x Size x Size float32, CHW) of an image with torchvision semantics.
/// Every random draw comes from the caller's <see cref="CounterRng"/> (one per image per view), in the order of
/// <see cref="AugmentationSettings.Ops"/>, so that a given (seed, epoch, index, view) yields the same bits on any
/// thread. Thread-safe: the instance is immutable and scratch buffers are per thread.
/// </summary>
public sealed class Augmenter
{
    private readonly AugmentationSettings _settings;
    private readonly AugmentOp[] _ops;

    /// <summary>Creates an augmenter for a validated pipeline.</summary>
    /// <param name="settings">The pipeline; see the presets on <see cref="AugmentationSettings"/>.</param>
    public Augmenter(AugmentationSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        settings.Validate();
        _settings = settings;
        _ops = settings.Ops.ToArray();
    }

    /// <summary>The pipeline this augmenter runs.</summary>
    public AugmentationSettings Settings => _settings;

    /// <summary>Side of the output view.</summary>
    public int Size => _settings.Size;

    /// <summary>Number of floats in one view: 3 x Size x Size.</summary>
    public int OutputLength => 3 * _settings.Size * _settings.Size;

    /// <summary>
    /// Draws a view of an image of <paramref name="height"/> x <paramref name="width"/> pixels and writes it to
    /// <paramref name="destinationChw"/> (length <see cref="OutputLength"/>): equivalent to
    /// <see cref="Execute"/>(image, <see cref="Plan"/>(...)).
    /// </summary>
    /// <param name="image">The decoded image.</param>
    /// <param name="rng">This image's and view's random stream; advanced by the draws.</param>
    /// <param name="destinationChw">Receives the normalised view, channel-major.</param>
    public void Apply(in ImageU8 image, ref CounterRng rng, Span<float> destinationChw)
    {
        AugmentPlan plan = Plan(image.Height, image.Width, ref rng);
        Execute(image, plan, destinationChw);
    }

    /// <summary>
    /// Draws every random choice of one view, in pipeline order: the crop (torchvision get_params); for ColorJitter
    /// the RandomApply coin (only when its probability is below 1), then a permutation of the four functions and the
    /// factors of the enabled ones (brightness, contrast, saturation, hue); the grayscale coin; the blur coin and,
    /// when it fires, sigma ~ U(BlurSigma); the flip coin.
    /// </summary>
    /// <param name="height">Image height.</param>
    /// <param name="width">Image width.</param>
    /// <param name="rng">The view's random stream; advanced by the draws.</param>
    /// <returns>The plan of the view.</returns>
    public AugmentPlan Plan(int height, int width, ref CounterRng rng)
    {
        AugmentationSettings s = _settings;
        CropBox crop = default;
        bool jitter = false;
        int order = 0;
        double b = 1.0;
        double c = 1.0;
        double sat = 1.0;
        double hue = 0.0;
        bool gray = false;
        double sigma = 0.0;
        bool flip = false;
        foreach (AugmentOp op in _ops)
        {
            switch (op)
            {
                case AugmentOp.RandomResizedCrop:
                    crop = RandomResizedCrop.GetParams(height, width, s.Scale, s.Ratio, ref rng);
                    break;
                case AugmentOp.ColorJitter:
                    jitter = s.JitterProbability >= 1.0 || rng.Bernoulli(s.JitterProbability);
                    if (jitter)
                    {
                        Span<int> perm = [0, 1, 2, 3];
                        rng.Shuffle(perm);
                        order = perm[0] | (perm[1] << 2) | (perm[2] << 4) | (perm[3] << 6);
                        if (s.Brightness > 0)
                        {
                            b = rng.Uniform(Math.Max(0.0, 1.0 - s.Brightness), 1.0 + s.Brightness);
                        }
                        if (s.Contrast > 0)
                        {
                            c = rng.Uniform(Math.Max(0.0, 1.0 - s.Contrast), 1.0 + s.Contrast);
                        }
                        if (s.Saturation > 0)
                        {
                            sat = rng.Uniform(Math.Max(0.0, 1.0 - s.Saturation), 1.0 + s.Saturation);
                        }
                        if (s.Hue > 0)
                        {
                            hue = rng.Uniform(-s.Hue, s.Hue);
                        }
                    }
                    break;
                case AugmentOp.Grayscale:
                    gray = rng.Bernoulli(s.GrayscaleProbability);
                    break;
                case AugmentOp.GaussianBlur:
                    if (rng.Bernoulli(s.BlurProbability))
                    {
                        sigma = rng.Uniform(s.BlurSigma.Min, s.BlurSigma.Max);
                    }
                    break;
                case AugmentOp.HorizontalFlip:
                    flip = rng.Bernoulli(s.FlipProbability);
                    break;
                case AugmentOp.Normalize:
                    break;
                default:
                    throw new InvalidOperationException($"Unknown augmentation op {op}.");
            }
        }
        return new AugmentPlan(crop, jitter, order, b, c, sat, hue, gray, sigma, flip);
    }

    /// <summary>Runs the pipeline with the choices of <paramref name="plan"/> and writes the view.</summary>
    /// <param name="image">The decoded image the plan was drawn for.</param>
    /// <param name="plan">The view's random choices.</param>
    /// <param name="destinationChw">Receives the normalised view, channel-major, length <see cref="OutputLength"/>.</param>
    public void Execute(in ImageU8 image, in AugmentPlan plan, Span<float> destinationChw)
    {
        CheckImage(image);
        int size = _settings.Size;
        int plane = size * size;
        if (destinationChw.Length != 3 * plane)
        {
            throw new ArgumentException($"Destination must hold 3 x {size} x {size} = {3 * plane} floats, got {destinationChw.Length}.", nameof(destinationChw));
        }
        CropBox crop = plan.Crop;
        if (crop.Top < 0 || crop.Left < 0 || crop.Height <= 0 || crop.Width <= 0
            || crop.Top + crop.Height > image.Height || crop.Left + crop.Width > image.Width)
        {
            throw new ArgumentException($"Crop {crop} lies outside the {image.Height} x {image.Width} image.", nameof(plan));
        }

        AugmentScratch scratch = AugmentScratch.Current;
        Span<float> view = destinationChw;
        foreach (AugmentOp op in _ops)
        {
            switch (op)
            {
                case AugmentOp.RandomResizedCrop:
                    // The only step that reads bytes: crop + resize, converting to float [0, 1] once.
                    PilResampler.ResizeToPlanar(image, crop, size, size, 0, 0, size, size, view, scratch);
                    break;
                case AugmentOp.ColorJitter:
                    if (plan.JitterApplied)
                    {
                        Jitter(view, plane, plan);
                    }
                    break;
                case AugmentOp.Grayscale:
                    if (plan.Grayscale)
                    {
                        ColorOps.Grayscale(view, plane);
                    }
                    break;
                case AugmentOp.GaussianBlur:
                    if (plan.BlurSigma > 0)
                    {
                        GaussianBlur.Apply(view, size, size, plan.BlurSigma, scratch);
                    }
                    break;
                case AugmentOp.HorizontalFlip:
                    if (plan.Flip)
                    {
                        for (int row = 0; row < 3 * size; row++)
                        {
                            view.Slice(row * size, size).Reverse();
                        }
                    }
                    break;
                case AugmentOp.Normalize:
                    Normalize(view, plane, _settings.Mean, _settings.Std);
                    break;
                default:
                    throw new InvalidOperationException($"Unknown augmentation op {op}.");
            }
        }
    }

    /// <summary>(x - mean) / std on each of the three planes.</summary>
    internal static void Normalize(Span<float> chw, int plane, (float R, float G, float B) mean, (float R, float G, float B) std)
    {
        PlaneMath.Normalize(mean.R, std.R, chw.Slice(0, plane));
        PlaneMath.Normalize(mean.G, std.G, chw.Slice(plane, plane));
        PlaneMath.Normalize(mean.B, std.B, chw.Slice(2 * plane, plane));
    }

    /// <summary>Throws when the image's buffer does not match its dimensions.</summary>
    internal static void CheckImage(in ImageU8 image)
    {
        if (image.Pixels is null || image.Height <= 0 || image.Width <= 0 || image.Pixels.Length < image.ByteCount)
        {
            throw new ArgumentException($"Image of {image.Height} x {image.Width} needs {image.ByteCount} bytes, got {image.Pixels?.Length ?? 0}.", nameof(image));
        }
    }

    private static void Jitter(Span<float> view, int plane, in AugmentPlan plan)
    {
        // torchvision ColorJitter.forward: the four functions in the drawn order; a disabled one keeps its
        // neutral factor and is skipped (torchvision's None).
        for (int position = 0; position < 4; position++)
        {
            switch (plan.JitterStep(position))
            {
                case AugmentPlan.BrightnessStep:
                    if (plan.BrightnessFactor != 1.0)
                    {
                        ColorOps.Brightness(view, plane, (float)plan.BrightnessFactor);
                    }
                    break;
                case AugmentPlan.ContrastStep:
                    if (plan.ContrastFactor != 1.0)
                    {
                        ColorOps.Contrast(view, plane, (float)plan.ContrastFactor);
                    }
                    break;
                case AugmentPlan.SaturationStep:
                    if (plan.SaturationFactor != 1.0)
                    {
                        ColorOps.Saturation(view, plane, (float)plan.SaturationFactor);
                    }
                    break;
                default:
                    if (plan.HueShift != 0.0)
                    {
                        ColorOps.Hue(view, plane, (float)plan.HueShift);
                    }
                    break;
            }
        }
    }
}
