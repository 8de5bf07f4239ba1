using MoCo.Model.Training;

namespace MoCo.Model.Data;

/// <summary>The crop sampler of torchvision's <c>RandomResizedCrop.get_params</c>, drawing from a <see cref="CounterRng"/>.</summary>
public static class RandomResizedCrop
{
    /// <summary>Number of rejection-sampling attempts before the central fallback (torchvision: 10).</summary>
    public const int Attempts = 10;

    /// <summary>
    /// Draws a crop of an image of <paramref name="height"/> x <paramref name="width"/> pixels: up to ten attempts of
    /// area fraction ~ U(scale) and log aspect ratio ~ U(log ratio), w = round(sqrt(area * aspect)),
    /// h = round(sqrt(area / aspect)) (round half to even, as Python's round), accepted when it fits; then the
    /// top-left corner is uniform. When no attempt fits, a central crop with the aspect ratio clamped to the range.
    /// </summary>
    /// <param name="height">Image height in pixels.</param>
    /// <param name="width">Image width in pixels.</param>
    /// <param name="scale">Range of the crop's area as a fraction of the image's area.</param>
    /// <param name="ratio">Range of the crop's aspect ratio (width / height).</param>
    /// <param name="rng">The image's random stream; advanced by the draws.</param>
    /// <returns>The crop rectangle, inside the image.</returns>
    public static CropBox GetParams(int height, int width, (double Min, double Max) scale, (double Min, double Max) ratio, ref CounterRng rng)
    {
        double area = (double)height * width;
        double logMin = Math.Log(ratio.Min);
        double logMax = Math.Log(ratio.Max);
        for (int attempt = 0; attempt < Attempts; attempt++)
        {
            double targetArea = area * rng.Uniform(scale.Min, scale.Max);
            double aspect = Math.Exp(rng.Uniform(logMin, logMax));
            int w = (int)Math.Round(Math.Sqrt(targetArea * aspect), MidpointRounding.ToEven);
            int h = (int)Math.Round(Math.Sqrt(targetArea / aspect), MidpointRounding.ToEven);
            if (w > 0 && w <= width && h > 0 && h <= height)
            {
                int i = rng.NextInt(0, height - h);
                int j = rng.NextInt(0, width - w);
                return new CropBox(i, j, h, w);
            }
        }

        double inRatio = (double)width / height;
        int fw;
        int fh;
        if (inRatio < ratio.Min)
        {
            fw = width;
            fh = (int)Math.Round(fw / ratio.Min, MidpointRounding.ToEven);
        }
        else if (inRatio > ratio.Max)
        {
            fh = height;
            fw = (int)Math.Round(fh * ratio.Max, MidpointRounding.ToEven);
        }
        else
        {
            fw = width;
            fh = height;
        }
        return new CropBox((height - fh) / 2, (width - fw) / 2, fh, fw);
    }
}
