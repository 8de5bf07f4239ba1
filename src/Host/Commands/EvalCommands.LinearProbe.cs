using System.CommandLine;
using MoCo.Model.Data;
using MoCo.Model.Evaluation;
using MoCo.Model.Training;
using Spectre.Console;
using TorchSharp;

namespace MoCo.Host.Commands;

public static partial class EvalCommands
{
    /// <summary><c>moco lincls</c>: the official main_lincls.py protocol (frozen backbone in eval mode, linear head).</summary>
    public static Command CreateLinearProbe()
    {
        var command = new Command("lincls", "Linear probe on a checkpoint's frozen query backbone (official main_lincls.py: lr 30, 100 epochs, steps at 60/80).");
        var pretrained = new Option<string>("--pretrained")
        {
            Description = "A checkpoint file or run directory, or weights from elsewhere (official MoCo .pth.tar, torchvision .pth, .safetensors), detected by content",
            Required = true,
        };
        var preset = new Option<string?>("--preset") { Description = "For weights from elsewhere: the preset whose image size and normalisation apply (default by stem: cifar-small or moco-v2)" };
        var data = new Option<string?>("--data") { Description = "Data (default: the run's)" };
        var epochs = new Option<int>("--epochs") { DefaultValueFactory = _ => 100, Description = "Epochs" };
        var lr = new Option<double>("--lr") { DefaultValueFactory = _ => 30.0, Description = "Initial learning rate" };
        var schedule = new Option<int[]>("--schedule") { DefaultValueFactory = _ => [60, 80], AllowMultipleArgumentsPerToken = true, Description = "Epochs at which lr is multiplied by 0.1" };
        var cos = new Option<bool>("--cos") { Description = "Cosine schedule instead of steps" };
        var batch = new Option<int>("--batch-size") { DefaultValueFactory = _ => 256, Description = "Batch size" };
        var wd = new Option<double>("--wd") { DefaultValueFactory = _ => 0.0, Description = "Weight decay" };
        var seed = new Option<ulong>("--seed") { DefaultValueFactory = _ => 0UL, Description = "Seed" };
        var cache = new Option<bool>("--cache-features") { Description = "No augmentation: compute features once and train the head on them (fast; departs from the official protocol)" };
        foreach (var o in new Option[] { pretrained, preset, data, epochs, lr, schedule, cos, batch, wd, seed, cache })
        {
            command.Options.Add(o);
        }
        command.SetAction(parse =>
        {
            var console = AnsiConsole.Console;
            torch.set_num_threads(Environment.ProcessorCount);
            var (config, weights) = OpenWeights(parse.GetValue(pretrained)!, parse.GetValue(preset), console);
            using var _ = weights;
            var splits = DataCommandHelpers.OpenData(parse.GetValue(data) ?? config.Data, config, console);
            using var backbone = weights.Layout == Model.Checkpoints.WeightsLayout.MocoActorsCheckpoint
                ? LinearProbe.LoadQueryBackbone(weights.Path, config.ComputePrecision)
                : LinearProbe.LoadQueryBackbone(weights, config.Encoder, config.ComputePrecision);
            var settings = new LinearProbeSettings
            {
                Epochs = parse.GetValue(epochs),
                Lr = parse.GetValue(lr),
                Milestones = parse.GetValue(schedule)!,
                Cosine = parse.GetValue(cos),
                BatchSize = parse.GetValue(batch),
                WeightDecay = parse.GetValue(wd),
                Seed = parse.GetValue(seed),
                CacheFeatures = parse.GetValue(cache),
                Threads = Environment.ProcessorCount,
            }.Validate();
            // the pretraining's normalisation for both transforms
            var testTransform = RunTransforms.Eval(config);
            var trainTransform = settings.CacheFeatures ? null : ViewTransforms.Random(new Augmenter(RunTransforms.LinearProbeTrain(config)));
            using var probe = new LinearProbe(backbone, splits.Train.Classes.Count, settings);
            var report = probe.Run(splits.Train, splits.Test, trainTransform, testTransform, (epoch, loss, acc) =>
                console.MarkupLine($"epoch {epoch}: loss {loss:F4}  test top-1 [bold]{acc.Top1:F2}%[/]  top-5 {acc.Top5:F2}%"));
            console.MarkupLine($"linear probe: final top-1 [bold green]{report.Final.Top1:F2}%[/] top-5 {report.Final.Top5:F2}%; best top-1 {report.Best.Top1:F2}% at epoch {report.BestTop1Epoch}; backbone verified unchanged");
            return 0;
        });
        return command;
    }
}
