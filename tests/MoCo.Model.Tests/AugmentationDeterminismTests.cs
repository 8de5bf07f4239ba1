using System.Runtime.InteropServices;
using MoCo.Model.Data;
using MoCo.Model.Training;

namespace MoCo.Model.Tests;

public class AugmentationDeterminismTests
{
    private static float[] View(Augmenter augmenter, in ImageU8 image, ulong seed, ulong epoch, ulong index, ulong view)
    {
        var rng = new CounterRng(seed, RngStream.Augmentation, epoch, index, view);
        var dst = new float[augmenter.OutputLength];
        augmenter.Apply(image, ref rng, dst);
        return dst;
    }

    private static bool SameBits(float[] a, float[] b) =>
        MemoryMarshal.AsBytes(a.AsSpan()).SequenceEqual(MemoryMarshal.AsBytes(b.AsSpan()));

    [Fact]
    public void Same_key_gives_identical_bytes_on_any_thread()
    {
        // Exact equality: the same plan and the same float operations in the same order must give the same bits.
        var augmenter = new Augmenter(AugmentationSettings.MocoV2(48));
        ImageU8 image = AugmentationTestImages.Noise(70, 90, 1);
        float[] reference = View(augmenter, image, 7, 3, 11, 1);
        var results = new float[16][];
        Parallel.For(0, results.Length, new ParallelOptions { MaxDegreeOfParallelism = 4 }, k =>
        {
            // Interleave other work on the thread so that any leftover scratch state would show.
            View(augmenter, AugmentationTestImages.Noise(31 + k, 45, k), 1, 1, (ulong)k, 0);
            results[k] = View(augmenter, image, 7, 3, 11, 1);
        });
        Assert.All(results, r => Assert.True(SameBits(reference, r)));
    }

    [Fact]
    public void Different_index_or_view_or_epoch_gives_different_output()
    {
        var augmenter = new Augmenter(AugmentationSettings.MocoV2(48));
        ImageU8 image = AugmentationTestImages.Noise(70, 90, 2);
        float[] a = View(augmenter, image, 7, 3, 11, 0);
        Assert.False(SameBits(a, View(augmenter, image, 7, 3, 11, 1)));
        Assert.False(SameBits(a, View(augmenter, image, 7, 3, 12, 0)));
        Assert.False(SameBits(a, View(augmenter, image, 7, 4, 11, 0)));
        Assert.False(SameBits(a, View(augmenter, image, 8, 3, 11, 0)));
    }

    [Fact]
    public void Apply_equals_execute_of_plan()
    {
        var augmenter = new Augmenter(AugmentationSettings.MocoV1(40));
        ImageU8 image = AugmentationTestImages.Noise(50, 60, 3);
        var rng = new CounterRng(5, RngStream.Augmentation, 0, 9, 0);
        AugmentPlan plan = augmenter.Plan(image.Height, image.Width, ref rng);
        var viaPlan = new float[augmenter.OutputLength];
        augmenter.Execute(image, plan, viaPlan);
        Assert.True(SameBits(View(augmenter, image, 5, 0, 9, 0), viaPlan));
    }

    [Fact]
    public void Output_is_finite_and_within_normalised_range()
    {
        // Values in [0, 1] before normalisation map to [(0 - mean) / std, (1 - mean) / std]; allow 1e-5 for float rounding.
        var settings = AugmentationSettings.MocoV2(32);
        var augmenter = new Augmenter(settings);
        ImageU8 image = AugmentationTestImages.Noise(40, 56, 4);
        for (ulong i = 0; i < 50; i++)
        {
            float[] v = View(augmenter, image, 1, 0, i, 0);
            float[] mean = [settings.Mean.R, settings.Mean.G, settings.Mean.B];
            float[] std = [settings.Std.R, settings.Std.G, settings.Std.B];
            int plane = 32 * 32;
            for (int k = 0; k < v.Length; k++)
            {
                int c = k / plane;
                Assert.True(float.IsFinite(v[k]));
                Assert.InRange(v[k], (0f - mean[c]) / std[c] - 1e-5f, (1f - mean[c]) / std[c] + 1e-5f);
            }
        }
    }
}
