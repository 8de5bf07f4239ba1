using MoCo.Model.Data;

namespace MoCo.Model.Tests;

public class AugmentationColorTests
{
    // The colour operations run in float32 on values in [0, 1] with a handful of operations per value;
    // 1e-6 absolute covers their rounding against the float64 hand computations.
    private const double Tolerance = 1e-6;

    /// <summary>Pixels (r, g, b) as a 3 x 1 x n CHW buffer.</summary>
    private static float[] Chw(params (double R, double G, double B)[] pixels)
    {
        int n = pixels.Length;
        var chw = new float[3 * n];
        for (int i = 0; i < n; i++)
        {
            chw[i] = (float)pixels[i].R;
            chw[n + i] = (float)pixels[i].G;
            chw[2 * n + i] = (float)pixels[i].B;
        }
        return chw;
    }

    private static void AssertPixel(float[] chw, int n, int i, double r, double g, double b, double tolerance = Tolerance)
    {
        Assert.Equal(r, chw[i], tolerance);
        Assert.Equal(g, chw[n + i], tolerance);
        Assert.Equal(b, chw[2 * n + i], tolerance);
    }

    private static double Gray(double r, double g, double b) => 0.299 * r + 0.587 * g + 0.114 * b;

    private static double Clamp(double x) => Math.Clamp(x, 0.0, 1.0);

    [Fact]
    public void Brightness_blends_with_black_and_clamps()
    {
        float[] img = Chw((0.5, 0.8, 0.1), (0.0, 1.0, 0.25));
        ColorOps.Brightness(img, 2, 1.3f);
        AssertPixel(img, 2, 0, 0.65, 1.0, 0.13);
        AssertPixel(img, 2, 1, 0.0, 1.0, 0.325);
    }

    [Fact]
    public void Contrast_blends_toward_the_mean_of_the_grayscale_image()
    {
        (double R, double G, double B)[] px = [(0.9, 0.2, 0.4), (0.1, 0.5, 0.7), (0.3, 0.3, 0.3)];
        double mean = px.Average(p => Gray(p.R, p.G, p.B));
        const double c = 1.35;
        float[] img = Chw(px);
        ColorOps.Contrast(img, 3, (float)c);
        for (int i = 0; i < 3; i++)
        {
            AssertPixel(img, 3, i, Clamp(c * px[i].R + (1 - c) * mean), Clamp(c * px[i].G + (1 - c) * mean), Clamp(c * px[i].B + (1 - c) * mean));
        }
    }

    [Fact]
    public void Saturation_blends_toward_each_pixels_gray()
    {
        (double R, double G, double B)[] px = [(0.9, 0.2, 0.4), (0.1, 0.5, 0.7)];
        foreach (double s in new[] { 0.0, 0.6, 1.4 })
        {
            float[] img = Chw(px);
            ColorOps.Saturation(img, 2, (float)s);
            for (int i = 0; i < 2; i++)
            {
                double l = Gray(px[i].R, px[i].G, px[i].B);
                AssertPixel(img, 2, i, Clamp(s * px[i].R + (1 - s) * l), Clamp(s * px[i].G + (1 - s) * l), Clamp(s * px[i].B + (1 - s) * l));
            }
        }
    }

    [Fact]
    public void Grayscale_uses_601_weights_on_all_channels()
    {
        float[] img = Chw((1, 0, 0), (0, 1, 0), (0, 0, 1), (0.2, 0.4, 0.6));
        ColorOps.Grayscale(img, 4);
        AssertPixel(img, 4, 0, 0.299, 0.299, 0.299);
        AssertPixel(img, 4, 1, 0.587, 0.587, 0.587);
        AssertPixel(img, 4, 2, 0.114, 0.114, 0.114);
        double l = Gray(0.2, 0.4, 0.6);
        AssertPixel(img, 4, 3, l, l, l);
    }

    [Fact]
    public void Hue_shift_by_a_third_turns_red_to_green_and_back_to_blue()
    {
        float[] img = Chw((1, 0, 0), (0.5, 0, 0));
        ColorOps.Hue(img, 2, 1f / 3f);
        AssertPixel(img, 2, 0, 0, 1, 0);
        AssertPixel(img, 2, 1, 0, 0.5, 0);
        float[] blue = Chw((1, 0, 0));
        ColorOps.Hue(blue, 1, -1f / 3f);
        AssertPixel(blue, 1, 0, 0, 0, 1);
    }

    [Fact]
    public void Hue_shift_matches_float64_hsv_rotation()
    {
        // Reference: the textbook hexcone HSV (Python's colorsys) in float64, written independently of ColorOps.
        (double R, double G, double B)[] px = [(0.9, 0.2, 0.4), (0.1, 0.5, 0.7), (0.3, 0.3, 0.3), (0.05, 0.95, 0.6), (1, 1, 0)];
        foreach (double shift in new[] { -0.5, -0.23, 0.07, 0.1, 0.41 })
        {
            float[] img = Chw(px);
            ColorOps.Hue(img, px.Length, (float)shift);
            for (int i = 0; i < px.Length; i++)
            {
                var (h, s, v) = RgbToHsv(px[i].R, px[i].G, px[i].B);
                h = (h + shift) - Math.Floor(h + shift);
                var (r, g, b) = HsvToRgb(h, s, v);
                // Float32 hue arithmetic (h * 6, fractional part) loses ~1e-7 per step: 2e-6.
                AssertPixel(img, px.Length, i, r, g, b, 2e-6);
            }
        }
    }

    [Fact]
    public void Hue_vector_path_matches_scalar_path_bit_for_bit()
    {
        // Exact: the vectorised body must give a pixel the same bits as the scalar code, so that a view does not
        // depend on where a pixel falls relative to the vector width. 1003 pixels: vector body plus a scalar tail.
        const int n = 1003;
        var random = new Random(17);
        var img = new float[3 * n];
        for (int i = 0; i < img.Length; i++)
        {
            img[i] = random.Next(4) == 0 ? random.Next(256) / 255f : (float)random.NextDouble();
        }
        foreach (float shift in new[] { -0.5f, -0.1f, 0.0371f, 1f / 3f, 0.5f })
        {
            float[] vec = (float[])img.Clone();
            ColorOps.Hue(vec, n, shift);
            for (int i = 0; i < n; i++)
            {
                ColorOps.RgbToHsv(img[i], img[n + i], img[2 * n + i], out float h, out float s, out float v);
                h += shift;
                h -= MathF.Floor(h);
                ColorOps.HsvToRgb(h, s, v, out float r, out float g, out float b);
                Assert.Equal(BitConverter.SingleToInt32Bits(r), BitConverter.SingleToInt32Bits(vec[i]));
                Assert.Equal(BitConverter.SingleToInt32Bits(g), BitConverter.SingleToInt32Bits(vec[n + i]));
                Assert.Equal(BitConverter.SingleToInt32Bits(b), BitConverter.SingleToInt32Bits(vec[2 * n + i]));
            }
        }
    }

    [Fact]
    public void Hue_of_gray_is_unchanged()
    {
        float[] img = Chw((0.42, 0.42, 0.42));
        ColorOps.Hue(img, 1, 0.3f);
        AssertPixel(img, 1, 0, 0.42, 0.42, 0.42);
    }

    [Fact]
    public void Gaussian_blur_of_an_impulse_is_the_normalised_gaussian()
    {
        // A unit impulse in the middle of a 21 x 21 plane: the output is the outer product of the 1-D kernel
        // exp(-d^2 / (2 sigma^2)) / sum over |d| <= ceil(3 sigma). Float32 weights and sums: 1e-6.
        const int n = 21;
        const double sigma = 1.3;
        var img = new float[3 * n * n];
        img[10 * n + 10] = 1f;
        img[n * n + 10 * n + 10] = 1f;
        img[2 * n * n + 10 * n + 10] = 1f;
        GaussianBlur.Apply(img, n, n, sigma, AugmentScratch.Current);
        int radius = GaussianBlur.Radius(sigma);
        Assert.Equal(4, radius);
        double total = Enumerable.Range(-radius, 2 * radius + 1).Sum(d => Math.Exp(-d * d / (2 * sigma * sigma)));
        double K(int d) => Math.Abs(d) <= radius ? Math.Exp(-d * d / (2 * sigma * sigma)) / total : 0.0;
        for (int c = 0; c < 3; c++)
        {
            for (int y = 0; y < n; y++)
            {
                for (int x = 0; x < n; x++)
                {
                    Assert.Equal(K(y - 10) * K(x - 10), img[c * n * n + y * n + x], Tolerance);
                }
            }
        }
        Assert.Equal(1.0, img.AsSpan(0, n * n).ToArray().Sum(v => (double)v), 1e-5);
    }

    [Fact]
    public void Gaussian_blur_reflects_at_borders_and_keeps_constants()
    {
        Assert.Equal(new[] { 2, 1, 0, 1, 2, 3, 4, 3, 2 }, Enumerable.Range(-2, 9).Select(i => GaussianBlur.Reflect(i, 5)).ToArray());
        Assert.Equal(0, GaussianBlur.Reflect(7, 1));
        // Constant planes stay constant (weights sum to 1), including a plane narrower than the kernel.
        foreach (int n in new[] { 3, 16 })
        {
            var img = Enumerable.Repeat(0.7f, 3 * n * n).ToArray();
            GaussianBlur.Apply(img, n, n, 2.0, AugmentScratch.Current);
            Assert.All(img, v => Assert.Equal(0.7, v, 1e-6));
        }
    }

    private static (double H, double S, double V) RgbToHsv(double r, double g, double b)
    {
        double max = Math.Max(r, Math.Max(g, b));
        double min = Math.Min(r, Math.Min(g, b));
        if (max == min)
        {
            return (0, 0, max);
        }
        double d = max - min;
        double h = max == r ? (g - b) / d : max == g ? 2 + (b - r) / d : 4 + (r - g) / d;
        h = h / 6;
        h -= Math.Floor(h);
        return (h, d / max, max);
    }

    private static (double R, double G, double B) HsvToRgb(double h, double s, double v)
    {
        int i = (int)Math.Floor(h * 6) % 6;
        double f = h * 6 - Math.Floor(h * 6);
        double p = v * (1 - s);
        double q = v * (1 - s * f);
        double t = v * (1 - s * (1 - f));
        return i switch
        {
            0 => (v, t, p),
            1 => (q, v, p),
            2 => (p, v, t),
            3 => (p, q, v),
            4 => (t, p, v),
            _ => (v, p, q),
        };
    }
}
