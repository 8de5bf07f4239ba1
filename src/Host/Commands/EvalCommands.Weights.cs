using MoCo.Host.Configuration;
using MoCo.Model.Checkpoints;
using MoCo.Model.Nn;
using MoCo.Model.Training;
using Spectre.Console;

namespace MoCo.Host.Commands;

public static partial class EvalCommands
{
    /// <summary>
    /// The weights of <paramref name="pathOrRunDir"/> (a run directory's latest valid checkpoint, or a file of any
    /// <see cref="WeightsLayout"/>) and the configuration to evaluate them with: a checkpoint's own run, or for weights
    /// from elsewhere <paramref name="preset"/>'s (default: cifar-small for a CIFAR stem, moco-v2 for an ImageNet stem;
    /// it gives the image size, the normalisation and the kNN settings) with the network read from the weights.
    /// </summary>
    internal static (RunConfig Config, EncoderWeights Weights) OpenWeights(string pathOrRunDir, string? preset, IAnsiConsole console)
    {
        string path = pathOrRunDir;
        if (Directory.Exists(pathOrRunDir))
        {
            using var latest = OpenCheckpoint(pathOrRunDir);
            path = latest.Info.Path;
        }
        else if (!File.Exists(pathOrRunDir))
        {
            throw new ConfigurationError($"no such checkpoint file, weights file or run directory: {pathOrRunDir}");
        }

        var weights = EncoderWeights.Read(path);
        try
        {
            var shape = weights.Shape;
            string head = shape.HeadDim is { } dim ? $"{(shape.Mlp ? "MLP" : "linear")} head of {dim}" : "no head";
            if (weights.Config is { } own)
            {
                return (own, weights);
            }

            string name = preset ?? (shape.Stem == Stem.Cifar ? "cifar-small" : "moco-v2");
            var (cfg, source) = Presets.Load(name, null);
            var config = SettingsReader.Read<RunConfig>(cfg, "moco.run", source) with
            {
                Arch = shape.Arch,
                Width = shape.Width,
                Stem = shape.Stem == Stem.Cifar ? "cifar" : "imagenet",
                MocoDim = shape.HeadDim ?? 128,
                Mlp = shape.Mlp,
                KnnFeatures = shape.HeadDim is null ? "backbone" : "head",
            };
            console.MarkupLine(Markup.Escape($"weights: {weights.LayoutName}, {shape.Arch} width {shape.Width}, {config.Stem} stem, {head}; "
                + $"evaluated with the settings of preset {name} (image size {config.ImageSize}, {config.Augmentation} normalisation)"));
            return (config, weights);
        }
        catch
        {
            weights.Dispose();
            throw;
        }
    }
}
