using MoCo.Host.Configuration;
using MoCo.Model.Training;

namespace MoCo.Bench;

/// <summary>
/// The cifar-small configuration every command measures, read from <c>hocon/cifar-small.conf</c> (the preset
/// <c>moco train --preset cifar-small</c> runs), so that the benchmarks and the product cannot drift apart:
/// ResNet-18 with the CIFAR stem at width 16, a 128-d output, MoCo with K 4096, m 0.99, T 0.1, SplitBatchNorm in
/// 8 groups, the official CIFAR-10 demo's augmentation at 32x32, lr 0.03 cosine for batch 256, wd 5e-4.
/// </summary>
internal static class CifarSmall
{
    /// <summary>The BN groups of the configuration (checked against the preset when it is read).</summary>
    public const int BnSplits = 8;

    /// <summary>The preset's run configuration for <paramref name="epochs"/> epochs of a global batch of <paramref name="batch"/> on <paramref name="data"/>.</summary>
    public static RunConfig Config(int epochs, int batch, string data)
    {
        var path = Path.Combine(RepoPaths.Root, "hocon", "cifar-small.conf");
        var preset = SettingsReader.Read<RunConfig>(SettingsReader.ParseFile(path), "moco.run", path);
        if (preset.BnSplits != BnSplits)
        {
            throw new InvalidOperationException($"{path} sets bn-splits {preset.BnSplits}; the benchmarks assume {BnSplits}");
        }

        return preset with { Epochs = epochs, BatchSize = batch, Data = data };
    }
}
