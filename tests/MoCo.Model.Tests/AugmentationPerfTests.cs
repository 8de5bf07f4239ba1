using System.Diagnostics;
using MoCo.Model.Data;
using MoCo.Model.Training;
using Xunit.Abstractions;

namespace MoCo.Model.Tests;

/// <summary>
/// Prints single-threaded time per view; asserts nothing about speed. Meaningful only in Release
/// (dotnet test -c Release --filter Category=Perf); exclude it elsewhere with Category!=Perf.
/// </summary>
public class AugmentationPerfTests
{
    private readonly ITestOutputHelper _output;

    public AugmentationPerfTests(ITestOutputHelper output)
    {
        _output = output;
    }

    [Theory]
    [Trait("Category", "Perf")]
    [InlineData("CifarDemo", 32, 32, 5000)]
    [InlineData("MocoV2", 256, 256, 2000)]
    public void Time_per_view(string preset, int height, int width, int count)
    {
        AugmentationSettings settings = preset switch
        {
            "CifarDemo" => AugmentationSettings.CifarDemo(),
            "MocoV1" => AugmentationSettings.MocoV1(),
            _ => AugmentationSettings.MocoV2(),
        };
        var augmenter = new Augmenter(settings);
        ImageU8 image = AugmentationTestImages.Noise(height, width, 1);
        var dst = new float[augmenter.OutputLength];
        for (int i = 0; i < count / 10; i++)
        {
            var rng = new CounterRng(1, RngStream.Augmentation, 0, (ulong)i, 0);
            augmenter.Apply(image, ref rng, dst);
        }
        var watch = Stopwatch.StartNew();
        for (int i = 0; i < count; i++)
        {
            var rng = new CounterRng(2, RngStream.Augmentation, 0, (ulong)i, 0);
            augmenter.Apply(image, ref rng, dst);
        }
        watch.Stop();
        _output.WriteLine($"{preset} {height}x{width} -> {settings.Size}: {watch.Elapsed.TotalMicroseconds / count:F1} us/view over {count} views");
        Assert.True(float.IsFinite(dst[0]));
    }
}
