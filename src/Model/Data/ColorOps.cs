using System.Numerics;
using System.Runtime.InteropServices;

namespace MoCo.Model.Data;

/// <summary>
/// torchvision's functional_tensor colour operations on a float RGB image in [0, 1], stored as three planes
/// (CHW). Each operation clamps to [0, 1] as <c>_blend</c> does; hue goes through <c>_rgb2hsv</c>/<c>_hsv2rgb</c>.
/// </summary>
internal static class ColorOps
{
    /// <summary>ITU-R 601-2 luma weight of red (torchvision rgb_to_grayscale).</summary>
    public const float WeightR = 0.299f;

    /// <summary>Luma weight of green.</summary>
    public const float WeightG = 0.587f;

    /// <summary>Luma weight of blue.</summary>
    public const float WeightB = 0.114f;

    private static void Planes(Span<float> chw, int plane, out Span<float> r, out Span<float> g, out Span<float> b)
    {
        r = chw.Slice(0, plane);
        g = chw.Slice(plane, plane);
        b = chw.Slice(2 * plane, plane);
    }

    /// <summary>adjust_brightness: blend(img, 0, factor) = clamp(factor * img).</summary>
    public static void Brightness(Span<float> chw, int plane, float factor)
    {
        PlaneMath.AffineClamp01(factor, 0f, chw.Slice(0, 3 * plane));
    }

    /// <summary>adjust_contrast: blend(img, mean(grayscale(img)), factor).</summary>
    public static void Contrast(Span<float> chw, int plane, float factor)
    {
        Planes(chw, plane, out var r, out var g, out var b);
        double sum = 0.0;
        for (int i = 0; i < plane; i++)
        {
            sum += WeightR * r[i] + WeightG * g[i] + WeightB * b[i];
        }
        float mean = (float)(sum / plane);
        PlaneMath.AffineClamp01(factor, (1f - factor) * mean, chw.Slice(0, 3 * plane));
    }

    /// <summary>adjust_saturation: blend(img, grayscale(img), factor), per pixel.</summary>
    public static void Saturation(Span<float> chw, int plane, float factor)
    {
        Planes(chw, plane, out var r, out var g, out var b);
        float rest = 1f - factor;
        int i = 0;
        if (Vector.IsHardwareAccelerated && plane >= Vector<float>.Count)
        {
            var vr = MemoryMarshal.Cast<float, Vector<float>>(r);
            var vg = MemoryMarshal.Cast<float, Vector<float>>(g);
            var vb = MemoryMarshal.Cast<float, Vector<float>>(b);
            var zero = Vector<float>.Zero;
            var one = Vector<float>.One;
            for (int k = 0; k < vr.Length; k++)
            {
                Vector<float> l = rest * (WeightR * vr[k] + WeightG * vg[k] + WeightB * vb[k]);
                vr[k] = Vector.Min(Vector.Max(factor * vr[k] + l, zero), one);
                vg[k] = Vector.Min(Vector.Max(factor * vg[k] + l, zero), one);
                vb[k] = Vector.Min(Vector.Max(factor * vb[k] + l, zero), one);
            }
            i = vr.Length * Vector<float>.Count;
        }
        for (; i < plane; i++)
        {
            float l = rest * (WeightR * r[i] + WeightG * g[i] + WeightB * b[i]);
            r[i] = Math.Clamp(factor * r[i] + l, 0f, 1f);
            g[i] = Math.Clamp(factor * g[i] + l, 0f, 1f);
            b[i] = Math.Clamp(factor * b[i] + l, 0f, 1f);
        }
    }

    /// <summary>rgb_to_grayscale with three output channels: every channel becomes 0.299 R + 0.587 G + 0.114 B.</summary>
    public static void Grayscale(Span<float> chw, int plane)
    {
        Planes(chw, plane, out var r, out var g, out var b);
        for (int i = 0; i < plane; i++)
        {
            float l = WeightR * r[i] + WeightG * g[i] + WeightB * b[i];
            r[i] = l;
            g[i] = l;
            b[i] = l;
        }
    }

    /// <summary>adjust_hue: to HSV, h = (h + shift) mod 1, back to RGB. <paramref name="shift"/> in [-0.5, 0.5].</summary>
    public static void Hue(Span<float> chw, int plane, float shift)
    {
        Planes(chw, plane, out var r, out var g, out var b);
        int i = 0;
        if (Vector.IsHardwareAccelerated && plane >= Vector<float>.Count)
        {
            var vr = MemoryMarshal.Cast<float, Vector<float>>(r);
            var vg = MemoryMarshal.Cast<float, Vector<float>>(g);
            var vb = MemoryMarshal.Cast<float, Vector<float>>(b);
            for (int k = 0; k < vr.Length; k++)
            {
                HueVector(ref vr[k], ref vg[k], ref vb[k], shift);
            }
            i = vr.Length * Vector<float>.Count;
        }
        for (; i < plane; i++)
        {
            RgbToHsv(r[i], g[i], b[i], out float h, out float s, out float v);
            h += shift;
            h -= MathF.Floor(h);
            HsvToRgb(h, s, v, out r[i], out g[i], out b[i]);
        }
    }

    /// <summary>
    /// The lane-wise twin of <see cref="RgbToHsv"/>, the shift and <see cref="HsvToRgb"/>: the same float operations in
    /// the same order, so a pixel gets the same bits whichever path (vector body or scalar tail) handles it.
    /// </summary>
    private static void HueVector(ref Vector<float> r, ref Vector<float> g, ref Vector<float> b, float shift)
    {
        var one = Vector<float>.One;
        var zero = Vector<float>.Zero;
        Vector<float> maxc = Vector.Max(r, Vector.Max(g, b));
        Vector<float> minc = Vector.Min(r, Vector.Min(g, b));
        Vector<int> eqc = Vector.Equals(maxc, minc);
        Vector<float> cr = maxc - minc;
        Vector<float> s = cr / Vector.ConditionalSelect(eqc, one, maxc);
        Vector<float> divisor = Vector.ConditionalSelect(eqc, one, cr);
        Vector<float> rc = (maxc - r) / divisor;
        Vector<float> gc = (maxc - g) / divisor;
        Vector<float> bc = (maxc - b) / divisor;
        Vector<float> hr = bc - gc;
        Vector<float> hg = new Vector<float>(2f) + rc - bc;
        Vector<float> hb = new Vector<float>(4f) + gc - rc;
        Vector<float> hh = Vector.ConditionalSelect(Vector.Equals(maxc, r), hr, Vector.ConditionalSelect(Vector.Equals(maxc, g), hg, hb));
        // (hh / 6 + 1) lies in [5/6, 7/6]: fmod(x, 1) = x - floor(x) exactly for positive x.
        Vector<float> h = hh / new Vector<float>(6f) + one;
        h -= Vector.Floor(h);
        h += new Vector<float>(shift);
        h -= Vector.Floor(h);

        Vector<float> h6 = h * new Vector<float>(6f);
        Vector<float> fi = Vector.Floor(h6);
        Vector<float> f = h6 - fi;
        Vector<float> v = maxc;
        Vector<float> p = Vector.Min(Vector.Max(v * (one - s), zero), one);
        Vector<float> q = Vector.Min(Vector.Max(v * (one - s * f), zero), one);
        Vector<float> t = Vector.Min(Vector.Max(v * (one - s * (one - f)), zero), one);
        Vector<int> m0 = Vector.Equals(fi, zero) | Vector.Equals(fi, new Vector<float>(6f));
        Vector<int> m1 = Vector.Equals(fi, one);
        Vector<int> m2 = Vector.Equals(fi, new Vector<float>(2f));
        Vector<int> m3 = Vector.Equals(fi, new Vector<float>(3f));
        Vector<int> m4 = Vector.Equals(fi, new Vector<float>(4f));
        // Sectors: r = (v, q, p, p, t, v), g = (t, v, v, q, p, p), b = (p, p, t, v, v, q).
        r = Vector.ConditionalSelect(m1, q, Vector.ConditionalSelect(m2 | m3, p, Vector.ConditionalSelect(m4, t, v)));
        g = Vector.ConditionalSelect(m0, t, Vector.ConditionalSelect(m1 | m2, v, Vector.ConditionalSelect(m3, q, p)));
        b = Vector.ConditionalSelect(m0 | m1, p, Vector.ConditionalSelect(m2, t, Vector.ConditionalSelect(m3 | m4, v, q)));
    }

    /// <summary>torchvision <c>_rgb2hsv</c> for one pixel: h in [0, 1), s in [0, 1], v = max channel.</summary>
    public static void RgbToHsv(float r, float g, float b, out float h, out float s, out float v)
    {
        float maxc = MathF.Max(r, MathF.Max(g, b));
        float minc = MathF.Min(r, MathF.Min(g, b));
        bool eqc = maxc == minc;
        float cr = maxc - minc;
        s = cr / (eqc ? 1f : maxc);
        float divisor = eqc ? 1f : cr;
        float rc = (maxc - r) / divisor;
        float gc = (maxc - g) / divisor;
        float bc = (maxc - b) / divisor;
        float hh;
        if (maxc == r)
        {
            hh = bc - gc;
        }
        else if (maxc == g)
        {
            hh = 2f + rc - bc;
        }
        else
        {
            hh = 4f + gc - rc;
        }
        h = (hh / 6f + 1f) % 1f;
        v = maxc;
    }

    /// <summary>torchvision <c>_hsv2rgb</c> for one pixel, with its clamps of p, q and t to [0, 1].</summary>
    public static void HsvToRgb(float h, float s, float v, out float r, out float g, out float b)
    {
        float h6 = h * 6f;
        float fi = MathF.Floor(h6);
        float f = h6 - fi;
        int sector = ((int)fi % 6 + 6) % 6;
        float p = Math.Clamp(v * (1f - s), 0f, 1f);
        float q = Math.Clamp(v * (1f - s * f), 0f, 1f);
        float t = Math.Clamp(v * (1f - s * (1f - f)), 0f, 1f);
        switch (sector)
        {
            case 0:
                r = v; g = t; b = p;
                break;
            case 1:
                r = q; g = v; b = p;
                break;
            case 2:
                r = p; g = v; b = t;
                break;
            case 3:
                r = p; g = q; b = v;
                break;
            case 4:
                r = t; g = p; b = v;
                break;
            default:
                r = v; g = p; b = q;
                break;
        }
    }
}
