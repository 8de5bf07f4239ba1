using MoCo.Model.Data;
using MoCo.Model.Training;

namespace MoCo.Model.Tests;

public class AugmentationResizeTests
{
    // Float32 results of weights summing to 1 on values <= 1: rounding error well below 1e-6.
    private const float Tolerance = 1e-6f;

    private static float[] WholeImageView(ImageU8 image, int size, double flip = 0.0)
    {
        var augmenter = new Augmenter(AugmentationTestImages.WholeImage(size, flip));
        var rng = new CounterRng(0, RngStream.Augmentation, 0, 0, 0);
        var dst = new float[augmenter.OutputLength];
        augmenter.Apply(image, ref rng, dst);
        return dst;
    }

    [Theory]
    [InlineData(37, 53, 16)]
    [InlineData(9, 9, 32)]
    [InlineData(256, 200, 224)]
    public void Resize_of_constant_image_stays_constant(int height, int width, int size)
    {
        // Up- and downscaling with renormalised taps reproduces a constant to float precision.
        ImageU8 image = AugmentationTestImages.Constant(height, width, 200, 17, 90);
        var augmenter = new Augmenter(AugmentationSettings.LinearProbeTrain(size) with { Mean = (0f, 0f, 0f), Std = (1f, 1f, 1f) });
        var dst = new float[augmenter.OutputLength];
        for (ulong i = 0; i < 5; i++)
        {
            var rng = new CounterRng(3, RngStream.Augmentation, 0, i, 0);
            augmenter.Apply(image, ref rng, dst);
            int plane = size * size;
            float[] expected = [200f / 255f, 17f / 255f, 90f / 255f];
            for (int k = 0; k < dst.Length; k++)
            {
                Assert.Equal(expected[k / plane], dst[k], 1e-5f);
            }
        }
    }

    [Fact]
    public void Downscale_of_horizontal_ramp_by_two_matches_pil_bilinear()
    {
        // Ramp 0, 10, ..., 70 (8 columns) to 4 columns. PIL: scale 2, support 2, centre (x + 0.5) * 2,
        // taps xmin = int(centre - 2 + 0.5) .. int(centre + 2 + 0.5) clipped, weight tri((p + 0.5 - centre) / 2):
        // x=0: pixels 0,1,2 weights .75,.75,.25 -> /1.75 -> 10 * (3/7 + 2/7) = 50/7
        // x=1: pixels 1..4 weights .25,.75,.75,.25 -> /2 -> 25;  x=2: 45
        // x=3: pixels 5,6,7 weights .25,.75,.75 -> /1.75 -> 10 * (5 + 18 + 21) / 7 = 440/7
        // (Pillow's 8-bit path would then round to 7, 25, 45, 63.) Rows are constant, so every row is the same.
        float[] dst = WholeImageView(AugmentationTestImages.HorizontalRamp(8, 8, 10), 4);
        double[] expected = [50.0 / 7, 25, 45, 440.0 / 7];
        for (int c = 0; c < 3; c++)
        {
            for (int y = 0; y < 4; y++)
            {
                for (int x = 0; x < 4; x++)
                {
                    Assert.Equal((float)(expected[x] / 255), dst[c * 16 + y * 4 + x], Tolerance);
                }
            }
        }
    }

    [Fact]
    public void Upscale_of_horizontal_ramp_by_two_matches_pil_bilinear()
    {
        // Ramp 0, 40, 80, 120 to 8 columns. Scale 1/2, support 1, centre (x + 0.5) / 2:
        // x=0: only pixel 0 (weight .75, renormalised to 1) -> 0; x=1: .75 p0 + .25 p1 = 10; x=2: .25 p0 + .75 p1 = 30;
        // x=3: 50; x=4: 70; x=5: 90; x=6: 110; x=7: only pixel 3 -> 120.
        float[] dst = WholeImageView(AugmentationTestImages.HorizontalRamp(4, 4, 40), 8);
        double[] expected = [0, 10, 30, 50, 70, 90, 110, 120];
        for (int y = 0; y < 8; y++)
        {
            for (int x = 0; x < 8; x++)
            {
                Assert.Equal((float)(expected[x] / 255), dst[y * 8 + x], Tolerance);
            }
        }
    }

    [Fact]
    public void Flip_mirrors_every_row()
    {
        ImageU8 image = AugmentationTestImages.Noise(6, 6, 9);
        float[] plain = WholeImageView(image, 6, flip: 0.0);
        float[] flipped = WholeImageView(image, 6, flip: 1.0);
        for (int row = 0; row < 18; row++)
        {
            for (int x = 0; x < 6; x++)
            {
                Assert.Equal(plain[row * 6 + x], flipped[row * 6 + 5 - x]);
            }
        }
        // Same-size resize is the identity: the view is the image in CHW order.
        Assert.Equal(image.Pixels[3 * 7 + 1] / 255f, plain[36 + 7], Tolerance);
    }

    [Fact]
    public void Normalize_subtracts_mean_and_divides_by_std()
    {
        // One float subtraction and division per value: within 1e-6.
        ImageU8 image = AugmentationTestImages.Constant(4, 4, 255, 0, 51);
        var settings = AugmentationTestImages.WholeImage(4) with { Mean = (0.5f, 0.25f, 0.1f), Std = (0.5f, 0.25f, 0.2f) };
        var augmenter = new Augmenter(settings);
        var rng = new CounterRng(0, RngStream.Augmentation, 0, 0, 0);
        var dst = new float[augmenter.OutputLength];
        augmenter.Apply(image, ref rng, dst);
        Assert.All(dst.AsSpan(0, 16).ToArray(), v => Assert.Equal(1f, v, Tolerance));
        Assert.All(dst.AsSpan(16, 16).ToArray(), v => Assert.Equal(-1f, v, Tolerance));
        Assert.All(dst.AsSpan(32, 16).ToArray(), v => Assert.Equal(0.5f, v, Tolerance));
    }

    [Fact]
    public void Eval_transform_resizes_shorter_side_then_center_crops()
    {
        // 8 x 12 ramp (step 10), Resize(4): 4 x int(4 * 12 / 8) = 4 x 6, a factor 2 in both directions;
        // CenterCrop(4): top = round(0 / 2) = 0, left = round(2 / 2) = 1. Interior columns x = 1..4 of the 6-wide
        // resize use weights .125, .375, .375, .125 on pixels 2x-1 .. 2x+2: 10 * (2x + 0.5) = 25, 45, 65, 85.
        var eval = new EvalTransform(4, 4, (0f, 0f, 0f), (1f, 1f, 1f));
        var dst = new float[eval.OutputLength];
        eval.Apply(AugmentationTestImages.HorizontalRamp(8, 12, 10), dst);
        double[] expected = [25, 45, 65, 85];
        for (int k = 0; k < dst.Length; k++)
        {
            Assert.Equal((float)(expected[k % 4] / 255), dst[k], Tolerance);
        }
    }

    [Fact]
    public void Eval_transform_only_normalises_an_image_of_the_output_size()
    {
        ImageU8 image = AugmentationTestImages.Noise(32, 32, 5);
        var eval = EvalTransform.Cifar();
        var dst = new float[eval.OutputLength];
        eval.Apply(image, dst);
        (float R, float G, float B) m = AugmentationSettings.CifarMean;
        (float R, float G, float B) s = AugmentationSettings.CifarStd;
        Assert.Equal((image.Pixels[0] / 255f - m.R) / s.R, dst[0], Tolerance);
        Assert.Equal((image.Pixels[3 * 100 + 1] / 255f - m.G) / s.G, dst[1024 + 100], Tolerance);
        Assert.Equal((image.Pixels[3 * 1023 + 2] / 255f - m.B) / s.B, dst[2048 + 1023], Tolerance);
    }
}
