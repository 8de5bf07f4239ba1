using MoCo.Model.Training;
using static TorchSharp.torch;

namespace MoCo.Model.Data;

/// <summary>
/// A picture of what the augmentation does: for the first <c>n</c> images of an epoch's order, the original (resized
/// to the crop size) beside its two augmented views, one row per image, exactly the views the run's step draws for
/// them (the same counter-based streams: seed, augmentation, epoch, image index, view 0 or 1), normalisation undone.
/// </summary>
public static class AugmentationGrid
{
    /// <summary>Pixels between tiles (left white).</summary>
    public const int Gap = 2;

    /// <summary>
    /// A CHW float image in [0, 1] of <paramref name="images"/> rows and three columns (original, view 0, view 1).
    /// </summary>
    /// <param name="data">The training images.</param>
    /// <param name="augmentation">The run's pretraining augmentation.</param>
    /// <param name="seed">The run's seed.</param>
    /// <param name="epoch">The epoch whose views are drawn.</param>
    /// <param name="images">Rows (at most the data set's size).</param>
    public static Tensor Render(IImageDataset data, AugmentationSettings augmentation, ulong seed, int epoch, int images = 8)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(augmentation);
        int rows = Math.Min(images, data.Count);
        if (rows < 1)
        {
            throw new ArgumentException("no images to show", nameof(data));
        }

        var augmenter = new Augmenter(augmentation);
        int size = augmenter.Size;
        int height = rows * size + (rows + 1) * Gap;
        int width = 3 * size + 4 * Gap;
        var canvas = new float[3 * height * width];
        Array.Fill(canvas, 1f);
        var order = data is Shards.ShardDataset shards
            ? shards.Epoch(seed, epoch, globalBatch: 1).Order
            : new EpochOrder(seed, epoch, data.Count, globalBatch: 1); // the run's order: its first images are the first step's
        var view = new float[augmenter.OutputLength];
        var (mean, std) = (augmentation.Mean, augmentation.Std);
        for (int row = 0; row < rows; row++)
        {
            int index = order.SampleAt(row, 0);
            var image = data.Image(index);
            int top = Gap + row * (size + Gap);
            Original(image, size, canvas, height, width, top, Gap);
            for (int v = 0; v < 2; v++)
            {
                var rng = new CounterRng(seed, RngStream.Augmentation, (ulong)epoch, (ulong)index, (ulong)v);
                augmenter.Apply(image, ref rng, view);
                int left = Gap + (v + 1) * (size + Gap);
                for (int c = 0; c < 3; c++)
                {
                    float m = c == 0 ? mean.R : c == 1 ? mean.G : mean.B;
                    float s = c == 0 ? std.R : c == 1 ? std.G : std.B;
                    for (int y = 0; y < size; y++)
                    {
                        for (int x = 0; x < size; x++)
                        {
                            float value = view[(c * size + y) * size + x] * s + m;
                            canvas[(c * height + top + y) * width + left + x] = Math.Clamp(value, 0f, 1f);
                        }
                    }
                }
            }
        }
        return tensor(canvas, [3, height, width]);
    }

    /// <summary>The image resized to size x size by nearest neighbour (a preview, not a transform of the run).</summary>
    private static void Original(in ImageU8 image, int size, float[] canvas, int height, int width, int top, int left)
    {
        for (int y = 0; y < size; y++)
        {
            int sy = Math.Min(image.Height - 1, (int)((y + 0.5) * image.Height / size));
            for (int x = 0; x < size; x++)
            {
                int sx = Math.Min(image.Width - 1, (int)((x + 0.5) * image.Width / size));
                for (int c = 0; c < 3; c++)
                {
                    canvas[(c * height + top + y) * width + left + x] = image.Pixels[(sy * image.Width + sx) * 3 + c] / 255f;
                }
            }
        }
    }
}
