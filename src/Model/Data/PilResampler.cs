namespace MoCo.Model.Data;

/// <summary>
/// Pillow's BILINEAR resize (libImaging/Resample.c) on float: a triangle filter with pixel centres aligned
/// (source coordinate of output pixel x is (x + 0.5) * scale), its support widened by the scale factor when
/// downscaling (antialias), taps clipped to the source and renormalised at the borders. Separable: a horizontal
/// pass over only the rows the vertical pass reads, then a vertical pass, as Pillow does.
/// Unlike Pillow's 8-bit path, nothing is rounded to uint8 between or after the passes (fixed-point
/// coefficients, per-pass rounding): the result is float in [0, 1].
/// </summary>
internal static class PilResampler
{
    private const double Support = 1.0;

    private static double Triangle(double x)
    {
        if (x < 0.0)
        {
            x = -x;
        }
        return x < 1.0 ? 1.0 - x : 0.0;
    }

    /// <summary>Number of taps per output pixel for a resize of <paramref name="inSize"/> to <paramref name="outSize"/>.</summary>
    public static int KernelSize(int inSize, int outSize)
    {
        double filterScale = Math.Max(1.0, (double)inSize / outSize);
        return (int)Math.Ceiling(Support * filterScale) * 2 + 1;
    }

    /// <summary>
    /// Pillow's <c>precompute_coeffs</c> for output pixels <paramref name="first"/> .. first + count - 1 of a resize of
    /// <paramref name="inSize"/> to <paramref name="outSize"/>; coefficients are normalised then multiplied by <paramref name="gain"/>.
    /// </summary>
    /// <param name="inSize">Source length.</param>
    /// <param name="outSize">Length of the full resized output.</param>
    /// <param name="first">First output pixel wanted (a centre crop of the resized image starts past 0).</param>
    /// <param name="count">Number of output pixels wanted.</param>
    /// <param name="gain">Factor folded into the coefficients (1/255 converts bytes to [0, 1]).</param>
    /// <param name="coefficients">count x kernelSize coefficients, written.</param>
    /// <param name="bounds">count x (first source pixel, tap count), written.</param>
    /// <returns>The kernel size (stride of <paramref name="coefficients"/>).</returns>
    public static int ComputeCoefficients(int inSize, int outSize, int first, int count, float gain, Span<float> coefficients, Span<int> bounds)
    {
        double scale = (double)inSize / outSize;
        double filterScale = Math.Max(1.0, scale);
        double support = Support * filterScale;
        int kernelSize = (int)Math.Ceiling(support) * 2 + 1;
        double ss = 1.0 / filterScale;
        Span<double> w = kernelSize <= 512 ? stackalloc double[kernelSize] : new double[kernelSize];
        for (int o = 0; o < count; o++)
        {
            int xx = first + o;
            double center = (xx + 0.5) * scale;
            int xmin = (int)(center - support + 0.5);
            if (xmin < 0)
            {
                xmin = 0;
            }
            int xmax = (int)(center + support + 0.5);
            if (xmax > inSize)
            {
                xmax = inSize;
            }
            xmax -= xmin;
            double total = 0.0;
            for (int x = 0; x < xmax; x++)
            {
                double v = Triangle((x + xmin - center + 0.5) * ss);
                w[x] = v;
                total += v;
            }
            Span<float> k = coefficients.Slice(o * kernelSize, kernelSize);
            for (int x = 0; x < xmax; x++)
            {
                k[x] = (float)((total != 0.0 ? w[x] / total : w[x]) * gain);
            }
            k.Slice(xmax).Clear();
            bounds[2 * o] = xmin;
            bounds[2 * o + 1] = xmax;
        }
        return kernelSize;
    }

    /// <summary>
    /// Resizes the crop <paramref name="box"/> of <paramref name="image"/> to <paramref name="fullHeight"/> x
    /// <paramref name="fullWidth"/> and writes the window of <paramref name="outHeight"/> x <paramref name="outWidth"/>
    /// pixels starting at (<paramref name="outTop"/>, <paramref name="outLeft"/>) to <paramref name="destinationChw"/>
    /// as three float planes in [0, 1].
    /// </summary>
    public static unsafe void ResizeToPlanar(
        in ImageU8 image, CropBox box, int fullHeight, int fullWidth,
        int outTop, int outLeft, int outHeight, int outWidth,
        Span<float> destinationChw, AugmentScratch scratch)
    {
        int ksH = KernelSize(box.Width, fullWidth);
        int ksV = KernelSize(box.Height, fullHeight);
        Span<float> coefH = scratch.CoefH(outWidth * ksH);
        Span<int> boundsH = scratch.BoundsH(outWidth * 2);
        Span<float> coefV = scratch.CoefV(outHeight * ksV);
        Span<int> boundsV = scratch.BoundsV(outHeight * 2);
        PilResampler.ComputeCoefficients(box.Width, fullWidth, outLeft, outWidth, 1f / 255f, coefH, boundsH);
        PilResampler.ComputeCoefficients(box.Height, fullHeight, outTop, outHeight, 1f, coefV, boundsV);

        // Rows of the crop that the vertical pass reads (Pillow's ybox_first .. ybox_last).
        int rowFirst = boundsV[0];
        int rowLast = boundsV[2 * (outHeight - 1)] + boundsV[2 * (outHeight - 1) + 1];
        int rows = rowLast - rowFirst;
        int tmpPlane = rows * outWidth;
        Span<float> tmp = scratch.Rows(3 * tmpPlane);

        // Horizontal pass: bytes (HWC) -> three float planes of rows x outWidth.
        int stride = image.Width * 3;
        fixed (byte* src = image.Pixels)
        fixed (float* t = tmp)
        fixed (float* kh = coefH)
        fixed (int* bh = boundsH)
        {
            for (int r = 0; r < rows; r++)
            {
                byte* row = src + (long)(box.Top + rowFirst + r) * stride + box.Left * 3;
                float* tr = t + r * outWidth;
                float* tg = tr + tmpPlane;
                float* tb = tg + tmpPlane;
                for (int x = 0; x < outWidth; x++)
                {
                    int xmin = bh[2 * x];
                    int n = bh[2 * x + 1];
                    float* k = kh + x * ksH;
                    byte* p = row + xmin * 3;
                    float sr = 0f;
                    float sg = 0f;
                    float sb = 0f;
                    for (int q = 0; q < n; q++)
                    {
                        float c = k[q];
                        sr += c * p[0];
                        sg += c * p[1];
                        sb += c * p[2];
                        p += 3;
                    }
                    tr[x] = sr;
                    tg[x] = sg;
                    tb[x] = sb;
                }
            }
        }

        // Vertical pass: planes of rows x outWidth -> planes of outHeight x outWidth.
        int outPlane = outHeight * outWidth;
        for (int c = 0; c < 3; c++)
        {
            ReadOnlySpan<float> tc = tmp.Slice(c * tmpPlane, tmpPlane);
            Span<float> dc = destinationChw.Slice(c * outPlane, outPlane);
            for (int y = 0; y < outHeight; y++)
            {
                int ymin = boundsV[2 * y] - rowFirst;
                int n = boundsV[2 * y + 1];
                ReadOnlySpan<float> k = coefV.Slice(y * ksV, ksV);
                Span<float> drow = dc.Slice(y * outWidth, outWidth);
                PlaneMath.Scale(k[0], tc.Slice(ymin * outWidth, outWidth), drow);
                for (int q = 1; q < n; q++)
                {
                    PlaneMath.Axpy(k[q], tc.Slice((ymin + q) * outWidth, outWidth), drow);
                }
            }
        }
    }
}
