using MoCo.Model.Data;

namespace MoCo.Model.Tests;

/// <summary>Hand-made images for the augmentation tests.</summary>
internal static class AugmentationTestImages
{
    /// <summary>An image with every pixel equal to (r, g, b).</summary>
    public static ImageU8 Constant(int height, int width, byte r, byte g, byte b)
    {
        var px = new byte[height * width * 3];
        for (int i = 0; i < height * width; i++)
        {
            px[3 * i] = r;
            px[3 * i + 1] = g;
            px[3 * i + 2] = b;
        }
        return new ImageU8(px, height, width);
    }

    /// <summary>A horizontal ramp: every channel of column x equals step * x.</summary>
    public static ImageU8 HorizontalRamp(int height, int width, int step)
    {
        var px = new byte[height * width * 3];
        for (int y = 0; y < height; y++)
        {
            for (int x = 0; x < width; x++)
            {
                int o = 3 * (y * width + x);
                px[o] = px[o + 1] = px[o + 2] = checked((byte)(step * x));
            }
        }
        return new ImageU8(px, height, width);
    }

    /// <summary>Pseudo-random bytes from a fixed seed.</summary>
    public static ImageU8 Noise(int height, int width, int seed)
    {
        var px = new byte[height * width * 3];
        new Random(seed).NextBytes(px);
        return new ImageU8(px, height, width);
    }

    /// <summary>Settings that take the whole image (scale 1, ratio 1) and resize it to <paramref name="size"/>, then normalise with mean 0 and std 1.</summary>
    public static AugmentationSettings WholeImage(int size, double flip = 0.0) => new()
    {
        Size = size,
        Scale = (1.0, 1.0),
        Ratio = (1.0, 1.0),
        FlipProbability = flip,
        Mean = (0f, 0f, 0f),
        Std = (1f, 1f, 1f),
        Ops = [AugmentOp.RandomResizedCrop, AugmentOp.HorizontalFlip, AugmentOp.Normalize],
    };
}
