namespace MoCo.Model.Data;

/// <summary>
/// MoCo v2's GaussianBlur (moco/loader.py calls PIL's <c>ImageFilter.GaussianBlur(radius=sigma)</c>) as a true
/// separable Gaussian of standard deviation sigma on float planes: kernel radius ceil(3 sigma), weights
/// exp(-d^2 / (2 sigma^2)) normalised to 1, borders by reflection without repeating the edge pixel (torch's
/// "reflect" padding). PIL itself approximates the Gaussian with three successive extended box blurs, so its
/// output differs slightly from this one (mostly in the tails of the kernel).
/// </summary>
internal static class GaussianBlur
{
    /// <summary>Largest sigma accepted; keeps the kernel on the stack.</summary>
    public const double MaxSigma = 32.0;

    /// <summary>Kernel radius for <paramref name="sigma"/>: ceil(3 sigma), at least 1.</summary>
    public static int Radius(double sigma) => Math.Max(1, (int)Math.Ceiling(3.0 * sigma));

    /// <summary>Index of a reflected sample: ... 2 1 | 0 1 2 ... n-1 | n-2 n-3 ...; any distance from the image.</summary>
    public static int Reflect(int i, int n)
    {
        if (n == 1)
        {
            return 0;
        }
        int period = 2 * (n - 1);
        i %= period;
        if (i < 0)
        {
            i += period;
        }
        return i < n ? i : period - i;
    }

    /// <summary>Blurs each of the three planes of <paramref name="chw"/> (height x width) in place.</summary>
    public static void Apply(Span<float> chw, int height, int width, double sigma, AugmentScratch scratch)
    {
        int radius = Radius(sigma);
        int taps = 2 * radius + 1;
        Span<float> kernel = stackalloc float[taps];
        double total = 0.0;
        Span<double> w = stackalloc double[taps];
        for (int k = 0; k < taps; k++)
        {
            double d = k - radius;
            w[k] = Math.Exp(-d * d / (2.0 * sigma * sigma));
            total += w[k];
        }
        for (int k = 0; k < taps; k++)
        {
            kernel[k] = (float)(w[k] / total);
        }

        int plane = height * width;
        Span<float> buffer = scratch.Plane(plane + width + 2 * radius);
        Span<float> tmp = buffer.Slice(0, plane);
        Span<float> padded = buffer.Slice(plane, width + 2 * radius);
        for (int c = 0; c < 3; c++)
        {
            Span<float> p = chw.Slice(c * plane, plane);
            for (int y = 0; y < height; y++)
            {
                Horizontal(p.Slice(y * width, width), tmp.Slice(y * width, width), padded, kernel, radius);
            }
            for (int y = 0; y < height; y++)
            {
                Span<float> dst = p.Slice(y * width, width);
                PlaneMath.Scale(kernel[0], tmp.Slice(Reflect(y - radius, height) * width, width), dst);
                for (int k = 1; k < taps; k++)
                {
                    PlaneMath.Axpy(kernel[k], tmp.Slice(Reflect(y + k - radius, height) * width, width), dst);
                }
            }
        }
    }

    private static void Horizontal(ReadOnlySpan<float> src, Span<float> dst, Span<float> padded, ReadOnlySpan<float> kernel, int radius)
    {
        // Reflect-pad the row once, then one vectorised axpy per tap over shifted views of it.
        int width = src.Length;
        for (int x = 0; x < radius; x++)
        {
            padded[x] = src[Reflect(x - radius, width)];
            padded[radius + width + x] = src[Reflect(width + x, width)];
        }
        src.CopyTo(padded.Slice(radius));
        PlaneMath.Scale(kernel[0], padded.Slice(0, width), dst);
        for (int k = 1; k < kernel.Length; k++)
        {
            PlaneMath.Axpy(kernel[k], padded.Slice(k, width), dst);
        }
    }
}
