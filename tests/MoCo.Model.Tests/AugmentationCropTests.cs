using MoCo.Model.Data;
using MoCo.Model.Training;

namespace MoCo.Model.Tests;

public class AugmentationCropTests
{
    private const int Side = 224;
    private const int Draws = 20000;
    private static readonly (double Min, double Max) DefaultRatio = (3.0 / 4.0, 4.0 / 3.0);

    private static CropBox[] Sample((double Min, double Max) scale, int count)
    {
        var crops = new CropBox[count];
        for (int n = 0; n < count; n++)
        {
            var rng = new CounterRng(42, RngStream.Augmentation, 0, (ulong)n, 0);
            crops[n] = RandomResizedCrop.GetParams(Side, Side, scale, DefaultRatio, ref rng);
        }
        return crops;
    }

    /// <summary>An independent float64 copy of torchvision's get_params (System.Random), returning the area fraction.</summary>
    private static double TorchvisionAreaFraction(Random random, int height, int width, (double Min, double Max) scale)
    {
        double area = (double)height * width;
        for (int attempt = 0; attempt < 10; attempt++)
        {
            double target = area * (scale.Min + (scale.Max - scale.Min) * random.NextDouble());
            double logR = Math.Log(3.0 / 4.0) + (Math.Log(4.0 / 3.0) - Math.Log(3.0 / 4.0)) * random.NextDouble();
            double aspect = Math.Exp(logR);
            double w = Math.Round(Math.Sqrt(target * aspect));
            double h = Math.Round(Math.Sqrt(target / aspect));
            if (w > 0 && w <= width && h > 0 && h <= height)
            {
                return w * h / area;
            }
        }
        return 1.0;
    }

    private static (double Mean, double Variance) Moments(IEnumerable<double> values)
    {
        double[] v = values.ToArray();
        double mean = v.Average();
        double variance = v.Sum(x => (x - mean) * (x - mean)) / (v.Length - 1);
        return (mean, variance);
    }

    /// <summary>Simpson's rule on [a, b] with 2000 intervals (error far below the statistical tolerances used here).</summary>
    private static double Integrate(Func<double, double> f, double a, double b)
    {
        const int n = 2000;
        double h = (b - a) / n;
        double sum = f(a) + f(b);
        for (int i = 1; i < n; i++)
        {
            sum += f(a + i * h) * (i % 2 == 1 ? 4 : 2);
        }
        return sum * h / 3;
    }

    [Fact]
    public void Crops_lie_inside_the_image_and_area_fraction_in_scale_range()
    {
        // Rounding w and h to whole pixels moves the area fraction by at most about 2 * 0.5 / 100 around the
        // ends of the range (sides >= ~100 px at scale 0.2), hence the 0.01 margin.
        foreach (CropBox c in Sample((0.2, 1.0), Draws))
        {
            Assert.InRange(c.Top, 0, Side - c.Height);
            Assert.InRange(c.Left, 0, Side - c.Width);
            Assert.InRange((double)c.Width * c.Height / (Side * Side), 0.2 - 0.01, 1.0);
        }
    }

    [Fact]
    public void Mean_area_fraction_matches_torchvision_sampler()
    {
        // Expected value two ways. (1) Analytic, continuous: with a ~ U(0.2, 1) and t = log ratio ~ U(-L, L),
        // L = log(4/3), a crop fits a square image iff a <= exp(-|t|); the accepted mean is
        // E[a | fit] = (int_0^L (e^{-2t} - 0.04) / 2 dt) / (int_0^L (e^{-t} - 0.2) dt) = 0.5384
        // (the all-ten-attempts-fail fallback has probability 0.164^10 ~ 1e-8).
        // (2) An independent float64 Monte-Carlo of torchvision's code with pixel rounding (400000 draws).
        // Tolerance: 5 standard errors of the difference of the two sample means; analytic vs Monte-Carlo within
        // 0.004, the effect of rounding to whole pixels near the acceptance boundary plus 5 standard errors.
        double l = Math.Log(4.0 / 3.0);
        double analytic = Integrate(t => (Math.Exp(-2 * t) - 0.04) / 2, 0, l) / Integrate(t => Math.Exp(-t) - 0.2, 0, l);
        Assert.Equal(0.5384, analytic, 3);

        var random = new Random(2024);
        const int reference = 400000;
        var (refMean, refVar) = Moments(Enumerable.Range(0, reference).Select(_ => TorchvisionAreaFraction(random, Side, Side, (0.2, 1.0))));
        var (mean, variance) = Moments(Sample((0.2, 1.0), Draws).Select(c => (double)c.Width * c.Height / (Side * Side)));

        Assert.InRange(Math.Abs(refMean - analytic), 0, 0.004);
        double tolerance = 5 * Math.Sqrt(variance / Draws + refVar / reference);
        Assert.InRange(Math.Abs(mean - refMean), 0, tolerance);
    }

    [Fact]
    public void Log_aspect_ratio_is_uniform_when_every_attempt_fits()
    {
        // With scale (0.2, 0.5) every attempt fits a square image (a * 4/3 <= 0.67 < 1), so accepted crops show the
        // sampler's raw distribution: log ratio ~ U(log 3/4, log 4/3), mean 0, variance (log 16/9)^2 / 12 = 0.02759.
        // Tolerances: 5 standard errors of the mean and of the variance (from the sample's 4th moment), plus 2e-4
        // for rounding w and h to pixels (|error of log(w/h)| <= ~0.01 at sides >= 100).
        double[] t = Sample((0.2, 0.5), Draws).Select(c => Math.Log((double)c.Width / c.Height)).ToArray();
        var (mean, variance) = Moments(t);
        double expectedVariance = Math.Pow(Math.Log(16.0 / 9.0), 2) / 12;
        double m4 = t.Select(x => Math.Pow(x - mean, 4)).Average();
        Assert.InRange(Math.Abs(mean), 0, 5 * Math.Sqrt(variance / Draws) + 2e-4);
        Assert.InRange(Math.Abs(variance - expectedVariance), 0, 5 * Math.Sqrt((m4 - variance * variance) / Draws) + 2e-4);
        Assert.All(t, x => Assert.InRange(x, Math.Log(3.0 / 4.0) - 0.02, Math.Log(4.0 / 3.0) + 0.02));
    }

    [Fact]
    public void Log_aspect_ratio_of_accepted_crops_follows_torchvision_rejection()
    {
        // With scale (0.2, 1) on a square image the rejection step favours ratios near 1: the accepted log ratio t
        // has density proportional to exp(-|t|) - 0.2 on (-L, L), so its variance is
        // int t^2 (e^{-t} - 0.2) / int (e^{-t} - 0.2) over (0, L) = 0.02506, below the 0.02759 of the raw uniform.
        // Tolerances as in the uniform case: 5 standard errors plus 2e-4 for pixel rounding.
        double l = Math.Log(4.0 / 3.0);
        double expectedVariance = Integrate(x => x * x * (Math.Exp(-x) - 0.2), 0, l) / Integrate(x => Math.Exp(-x) - 0.2, 0, l);
        double[] t = Sample((0.2, 1.0), Draws).Select(c => Math.Log((double)c.Width / c.Height)).ToArray();
        var (mean, variance) = Moments(t);
        double m4 = t.Select(x => Math.Pow(x - mean, 4)).Average();
        Assert.InRange(Math.Abs(mean), 0, 5 * Math.Sqrt(variance / Draws) + 2e-4);
        Assert.InRange(Math.Abs(variance - expectedVariance), 0, 5 * Math.Sqrt((m4 - variance * variance) / Draws) + 2e-4);
    }

    [Fact]
    public void Fallback_is_a_central_crop_with_clamped_ratio()
    {
        // Scale 1.5..2 never fits, so all ten attempts fail. A 10 x 40 image (ratio 4 > 4/3): h = 10,
        // w = round(10 * 4/3) = 13, i = 0, j = (40 - 13) // 2 = 13. A 40 x 10 image: w = 10, h = round(10 / 0.75) = 13.
        var rng = new CounterRng(1, RngStream.Augmentation, 0, 0, 0);
        Assert.Equal(new CropBox(0, 13, 10, 13), RandomResizedCrop.GetParams(10, 40, (1.5, 2.0), DefaultRatio, ref rng));
        Assert.Equal(new CropBox(13, 0, 13, 10), RandomResizedCrop.GetParams(40, 10, (1.5, 2.0), DefaultRatio, ref rng));
        Assert.Equal(new CropBox(0, 0, 20, 20), RandomResizedCrop.GetParams(20, 20, (1.5, 2.0), DefaultRatio, ref rng));
    }
}
