using MoCo.Model.Data;
using MoCo.Model.Training;

namespace MoCo.Model.Tests;

public class AugmentationStatisticsTests
{
    private const int Draws = 20000;

    private static AugmentPlan[] Plans(AugmentationSettings settings, int height, int width)
    {
        var augmenter = new Augmenter(settings);
        var plans = new AugmentPlan[Draws];
        for (int n = 0; n < Draws; n++)
        {
            var rng = new CounterRng(99, RngStream.Augmentation, 1, (ulong)n, (ulong)(n & 1));
            plans[n] = augmenter.Plan(height, width, ref rng);
        }
        return plans;
    }

    /// <summary>Binomial check: |count - n p| within 5 standard deviations sqrt(n p (1 - p)) (false alarm ~ 6e-7).</summary>
    private static void AssertRate(int count, double p)
    {
        double sd = Math.Sqrt(Draws * p * (1 - p));
        Assert.InRange(count, Draws * p - 5 * sd, Draws * p + 5 * sd);
    }

    [Fact]
    public void MocoV2_applies_jitter_grayscale_blur_and_flip_at_their_rates()
    {
        AugmentPlan[] plans = Plans(AugmentationSettings.MocoV2(), 256, 320);
        AssertRate(plans.Count(p => p.JitterApplied), 0.8);
        AssertRate(plans.Count(p => p.Grayscale), 0.2);
        AssertRate(plans.Count(p => p.BlurSigma > 0), 0.5);
        AssertRate(plans.Count(p => p.Flip), 0.5);
        Assert.All(plans.Where(p => p.BlurSigma > 0), p => Assert.InRange(p.BlurSigma, 0.1, 2.0));
    }

    [Fact]
    public void CifarDemo_applies_jitter_grayscale_and_flip_at_their_rates()
    {
        AugmentPlan[] plans = Plans(AugmentationSettings.CifarDemo(), 32, 32);
        AssertRate(plans.Count(p => p.JitterApplied), 0.8);
        AssertRate(plans.Count(p => p.Grayscale), 0.2);
        AssertRate(plans.Count(p => p.Flip), 0.5);
        Assert.All(plans, p => Assert.Equal(0.0, p.BlurSigma));
    }

    [Fact]
    public void MocoV1_always_jitters_with_factors_in_torchvision_ranges()
    {
        AugmentPlan[] plans = Plans(AugmentationSettings.MocoV1(), 224, 224);
        Assert.All(plans, p =>
        {
            Assert.True(p.JitterApplied);
            Assert.InRange(p.BrightnessFactor, 0.6, 1.4);
            Assert.InRange(p.ContrastFactor, 0.6, 1.4);
            Assert.InRange(p.SaturationFactor, 0.6, 1.4);
            Assert.InRange(p.HueShift, -0.4, 0.4);
            int[] order = Enumerable.Range(0, 4).Select(p.JitterStep).Order().ToArray();
            Assert.Equal([0, 1, 2, 3], order);
        });
        AssertRate(plans.Count(p => p.Grayscale), 0.2);
        // Each function comes first a quarter of the time (torchvision's randperm(4)).
        for (int f = 0; f < 4; f++)
        {
            AssertRate(plans.Count(p => p.JitterStep(0) == f), 0.25);
        }
        // Factor means: U(0.6, 1.4) has mean 1 and sd 0.8 / sqrt(12); 5 standard errors.
        double se = 0.8 / Math.Sqrt(12) / Math.Sqrt(Draws);
        Assert.InRange(plans.Average(p => p.BrightnessFactor), 1 - 5 * se, 1 + 5 * se);
        Assert.InRange(plans.Average(p => p.HueShift), -5 * se, 5 * se);
    }
}
