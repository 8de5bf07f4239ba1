using System.Numerics;
using System.Runtime.InteropServices;

namespace MoCo.Model.Data;

/// <summary>Small vectorised loops over float planes shared by the resize, the blur and the colour operations.</summary>
internal static class PlaneMath
{
    /// <summary>y = a * x.</summary>
    public static void Scale(float a, ReadOnlySpan<float> x, Span<float> y)
    {
        int n = x.Length;
        int i = 0;
        if (Vector.IsHardwareAccelerated && n >= Vector<float>.Count)
        {
            var va = new Vector<float>(a);
            var vx = MemoryMarshal.Cast<float, Vector<float>>(x);
            var vy = MemoryMarshal.Cast<float, Vector<float>>(y);
            for (int v = 0; v < vx.Length; v++)
            {
                vy[v] = va * vx[v];
            }
            i = vx.Length * Vector<float>.Count;
        }
        for (; i < n; i++)
        {
            y[i] = a * x[i];
        }
    }

    /// <summary>y += a * x.</summary>
    public static void Axpy(float a, ReadOnlySpan<float> x, Span<float> y)
    {
        int n = x.Length;
        int i = 0;
        if (Vector.IsHardwareAccelerated && n >= Vector<float>.Count)
        {
            var va = new Vector<float>(a);
            var vx = MemoryMarshal.Cast<float, Vector<float>>(x);
            var vy = MemoryMarshal.Cast<float, Vector<float>>(y);
            for (int v = 0; v < vx.Length; v++)
            {
                vy[v] += va * vx[v];
            }
            i = vx.Length * Vector<float>.Count;
        }
        for (; i < n; i++)
        {
            y[i] += a * x[i];
        }
    }

    /// <summary>x = clamp(a * x + b, 0, 1): torchvision's <c>_blend</c> with a constant second image b / (1 - a).</summary>
    public static void AffineClamp01(float a, float b, Span<float> x)
    {
        int n = x.Length;
        int i = 0;
        if (Vector.IsHardwareAccelerated && n >= Vector<float>.Count)
        {
            var va = new Vector<float>(a);
            var vb = new Vector<float>(b);
            var zero = Vector<float>.Zero;
            var one = Vector<float>.One;
            var vx = MemoryMarshal.Cast<float, Vector<float>>(x);
            for (int v = 0; v < vx.Length; v++)
            {
                vx[v] = Vector.Min(Vector.Max(va * vx[v] + vb, zero), one);
            }
            i = vx.Length * Vector<float>.Count;
        }
        for (; i < n; i++)
        {
            x[i] = Math.Clamp(a * x[i] + b, 0f, 1f);
        }
    }

    /// <summary>x = (x - mean) / std.</summary>
    public static void Normalize(float mean, float std, Span<float> x)
    {
        int n = x.Length;
        int i = 0;
        if (Vector.IsHardwareAccelerated && n >= Vector<float>.Count)
        {
            var vm = new Vector<float>(mean);
            var vs = new Vector<float>(std);
            var vx = MemoryMarshal.Cast<float, Vector<float>>(x);
            for (int v = 0; v < vx.Length; v++)
            {
                vx[v] = (vx[v] - vm) / vs;
            }
            i = vx.Length * Vector<float>.Count;
        }
        for (; i < n; i++)
        {
            x[i] = (x[i] - mean) / std;
        }
    }
}
