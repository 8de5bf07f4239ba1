using System.Security.Cryptography;
using MoCo.Model.Data;

namespace MoCo.Model.Tests;

public class DatasetSyntheticTests
{
    private static string Hash(IImageDataset data, int count)
    {
        using var sha = SHA256.Create();
        for (int i = 0; i < count; i++)
        {
            var pixels = data.Image(i).Pixels;
            sha.TransformBlock(pixels, 0, pixels.Length, null, 0);
        }
        sha.TransformFinalBlock([], 0, 0);
        return Convert.ToHexString(sha.Hash!);
    }

    [Fact]
    public void Images_are_a_pure_function_of_seed_split_and_index()
    {
        var a = new SyntheticTexturesDataset(100, train: true, seed: 3);
        var b = new SyntheticTexturesDataset(100, train: true, seed: 3);

        // Asked in another order and from several threads: the same bytes.
        var fromThreads = new byte[100][];
        Parallel.For(0, 100, i => fromThreads[99 - i] = b.Image(99 - i).Pixels);
        for (int i = 0; i < 100; i++)
        {
            Assert.Equal(a.Image(i).Pixels, fromThreads[i]);
            Assert.Equal((32, 32), (a.Image(i).Height, a.Image(i).Width));
        }

        Assert.NotEqual(a.Image(0).Pixels, new SyntheticTexturesDataset(100, train: true, seed: 4).Image(0).Pixels);
        Assert.NotEqual(a.Image(0).Pixels, new SyntheticTexturesDataset(100, train: false, seed: 3).Image(0).Pixels);
    }

    [Fact]
    public void Images_match_the_pinned_checksum_so_every_machine_sees_the_same_data()
    {
        // The renderer uses only +, -, *, /, sqrt and floor on doubles, which IEEE 754 fixes bit for bit.
        var data = new SyntheticTexturesDataset(SyntheticTexturesDataset.DefaultTrainCount, train: true);

        string hash = Hash(data, 20);
        Assert.True(hash == PinnedTrainHash, $"the first 20 train images hash to {hash}, not the pinned {PinnedTrainHash}");
    }

    private const string PinnedTrainHash = "F1FAC35E8BFF9836E93E9CE874D0AA859A62C39A44BE91DEE90899FFE73A62BF";

    [Fact]
    public void Labels_are_balanced_over_the_ten_classes()
    {
        var data = new SyntheticTexturesDataset(5000, train: true);

        var counts = Enumerable.Range(0, data.Count).GroupBy(data.Label).ToDictionary(g => g.Key, g => g.Count());

        Assert.Equal(10, data.Classes.Count);
        Assert.All(Enumerable.Range(0, 10), c => Assert.Equal(500, counts[c]));
    }

    [Fact]
    public void Mean_colour_does_not_predict_the_class()
    {
        // Colours are drawn independently of the class, so each class's mean RGB over 200 images is near the overall
        // mean: an image's mean channel value varies with a standard deviation of at most about 70 levels (a bright and
        // a dark colour of any hue, either one the pattern), so a class mean has a standard error of about 5 levels;
        // 20 levels is about 4 standard errors.
        var data = new SyntheticTexturesDataset(2000, train: true);
        var means = new double[10, 3];
        for (int i = 0; i < data.Count; i++)
        {
            var pixels = data.Image(i).Pixels;
            for (int c = 0; c < 3; c++)
            {
                double sum = 0;
                for (int p = c; p < pixels.Length; p += 3)
                {
                    sum += pixels[p];
                }
                means[data.Label(i), c] += sum / (pixels.Length / 3) / 200.0;
            }
        }
        for (int c = 0; c < 3; c++)
        {
            double overall = Enumerable.Range(0, 10).Average(k => means[k, c]);
            Assert.All(Enumerable.Range(0, 10), k => Assert.InRange(means[k, c], overall - 20, overall + 20));
        }
    }
}
