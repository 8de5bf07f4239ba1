using System.CommandLine;
using MoCo.Host.Configuration;
using MoCo.Model.Checkpoints;
using MoCo.Model.Collectives;
using MoCo.Model.Training;
using Spectre.Console;
using TorchSharp;

namespace MoCo.Host.Commands;

/// <summary><c>moco knn</c>, <c>moco lincls</c> and <c>moco export</c>.</summary>
public static partial class EvalCommands
{
    public static Command CreateKnn()
    {
        var command = new Command("knn", "Weighted kNN accuracy of an encoder (k 200, t 0.1 by default): a checkpoint's query encoder, "
            + "an official MoCo checkpoint, a torchvision state_dict or safetensors.");
        var checkpoint = new Option<string>("--checkpoint")
        {
            Description = "A checkpoint file or run directory, or weights from elsewhere (official MoCo .pth.tar, torchvision .pth, .safetensors), detected by content",
            Required = true,
        };
        var data = new Option<string?>("--data") { Description = "Data (default: the run's, or the preset's)" };
        var k = new Option<int?>("--knn-k") { Description = "Neighbours" };
        var t = new Option<double?>("--knn-t") { Description = "Temperature" };
        var features = new Option<string?>("--knn-features") { Description = "head | backbone" };
        var preset = new Option<string?>("--preset") { Description = "For weights from elsewhere: the preset whose image size, normalisation and kNN settings apply (default by stem: cifar-small or moco-v2)" };
        command.Options.Add(checkpoint);
        command.Options.Add(data);
        command.Options.Add(k);
        command.Options.Add(t);
        command.Options.Add(features);
        command.Options.Add(preset);
        command.SetAction(parse =>
        {
            var console = AnsiConsole.Console;
            torch.set_num_threads(Environment.ProcessorCount);
            var (config, weights) = OpenWeights(parse.GetValue(checkpoint)!, parse.GetValue(preset), console);
            using var _ = weights;
            config = config with
            {
                Data = parse.GetValue(data) ?? config.Data,
                KnnK = parse.GetValue(k) ?? config.KnnK,
                KnnT = parse.GetValue(t) ?? config.KnnT,
                KnnFeatures = parse.GetValue(features) ?? config.KnnFeatures,
            };
            var splits = DataCommandHelpers.OpenData(config.Data, config, console);
            using var ours = weights.Layout == WeightsLayout.MocoActorsCheckpoint ? CheckpointFile.Read(weights.Path) : null;
            using var trainer = new Pretrainer(config, ours?.Header.RunId ?? "external-weights", splits, SingleProcessCollective.Instance,
                new BatchLayout(config.BatchSize, config.BnSplits, 1), 1);
            if (ours is not null)
            {
                trainer.LoadCheckpoint(ours);
            }
            else
            {
                weights.LoadInto(trainer.Model.EncoderQ, withHead: config.KnnFeatures == "head");
            }
            var acc = trainer.EvaluateKnn(Environment.ProcessorCount);
            console.MarkupLine($"kNN (k {config.KnnK}, t {config.KnnT}, {config.KnnFeatures}) on {acc.Count} test images: top-1 [bold]{acc.Top1:F2}%[/], top-5 {acc.Top5:F2}%");
            return 0;
        });
        return command;
    }

    public static Command CreateExport()
    {
        var command = new Command("export", "Write the query encoder for torchvision's resnet (.pth or .safetensors) or detectron2 (.pkl).");
        var checkpoint = new Option<string>("--checkpoint") { Description = "A checkpoint file or run directory", Required = true };
        var output = new Option<string>("--out") { Description = "Output file", Required = true };
        var withHead = new Option<bool>("--with-head") { Description = "Keep fc.* (the projection head); default drops it, for model.fc = nn.Identity()" };
        var format = new Option<string?>("--format")
        {
            Description = "pth (torch.save, torchvision names; the default), safetensors (the same names), or detectron2 (the .pkl of "
                + "facebookresearch/moco's convert-pretrain-to-detectron2.py: numpy arrays under detectron2 names)",
        };
        var detectron2 = new Option<bool>("--detectron2") { Description = "Same as --format detectron2" };
        command.Options.Add(checkpoint);
        command.Options.Add(output);
        command.Options.Add(withHead);
        command.Options.Add(format);
        command.Options.Add(detectron2);
        command.SetAction(parse =>
        {
            using var ckpt = OpenCheckpoint(parse.GetValue(checkpoint)!);
            var config = RunConfig.FromJson(ckpt.Header.ConfigJson);
            const string prefix = "model.encoder_q.";
            var stateDict = ckpt.Tensors.Where(p => p.Key.StartsWith(prefix, StringComparison.Ordinal))
                .Select(p => new KeyValuePair<string, torch.Tensor>(p.Key[prefix.Length..], p.Value)).ToList();
            var exportFormat = parse.GetValue(detectron2) ? ExportFormat.Detectron2Pkl : (parse.GetValue(format)?.Trim().ToLowerInvariant()) switch
            {
                null or "" or "pth" => ExportFormat.Pth,
                "safetensors" => ExportFormat.Safetensors,
                "detectron2" or "pkl" => ExportFormat.Detectron2Pkl,
                var other => throw new ConfigurationError($"--format must be pth, safetensors or detectron2, not '{other}'"),
            };
            var options = new PyTorchExportOptions { IncludeHead = parse.GetValue(withHead), Format = exportFormat };
            var path = parse.GetValue(output)!;
            var sha = PyTorchExport.Save(path, stateDict, options);
            AnsiConsole.MarkupLine($"wrote [cyan]{Markup.Escape(path)}[/] (sha256 {sha[..16]}…), {config.Arch} width {config.Width}, {config.Stem} stem");
            if (config.Width != 64)
            {
                AnsiConsole.MarkupLine("[yellow]note[/]: torchvision's ResNet class fixes 64 base channels; this width-" + config.Width +
                    " encoder loads with strict=True only into a ResNet built with the same width.");
            }
            if (config.Stem == "cifar")
            {
                AnsiConsole.MarkupLine("CIFAR stem: in PyTorch set model.conv1 = nn.Conv2d(3, " + config.Width + ", 3, 1, 1, bias=False) and model.maxpool = nn.Identity() before loading.");
            }
            return 0;
        });
        return command;
    }

    /// <summary>A checkpoint file, or the latest valid checkpoint of a run directory.</summary>
    internal static Checkpoint OpenCheckpoint(string pathOrRunDir)
    {
        if (Directory.Exists(pathOrRunDir))
        {
            var dir = new CheckpointDirectory(pathOrRunDir);
            foreach (var path in dir.List().Reverse())
            {
                try
                {
                    return CheckpointFile.Read(path);
                }
                catch (CheckpointRejectedException e)
                {
                    AnsiConsole.MarkupLine($"[yellow]skipped[/] {Markup.Escape(e.Message)}");
                }
            }
            throw new ConfigurationError($"{pathOrRunDir} holds no valid checkpoint");
        }
        if (!File.Exists(pathOrRunDir))
        {
            throw new ConfigurationError($"no such checkpoint file or run directory: {pathOrRunDir}");
        }
        return CheckpointFile.Read(pathOrRunDir);
    }
}
