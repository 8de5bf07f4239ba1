using System.CommandLine;
using System.Globalization;
using MoCo.Host.Configuration;
using MoCo.Host.Hosting;
using MoCo.Model.Diagnostics;
using MoCo.Model.Training;
using Spectre.Console;
using TorchSharp;

namespace MoCo.Host.Commands;

/// <summary>
/// <c>moco doctor</c>: the numerical self-check of the configured network on this machine, every layer in a table
/// (<see cref="NumericsCheck"/>). The same check runs before <c>moco train</c> and in every worker.
/// </summary>
public static class DoctorCommand
{
    public static Command Create()
    {
        var command = new Command("doctor", "Check that this machine computes the configured network correctly: every layer against float64, in a table.");
        var preset = new Option<string?>("--preset") { Description = "quickstart | cifar-small | moco-v1 | moco-v2 (default quickstart)" };
        var config = new Option<string?>("--config") { Description = "A HOCON file instead of a preset" };
        var devices = new Option<int>("--devices") { Description = "Workers in this process: the layers are checked at the batch share and threads of one", DefaultValueFactory = _ => 1 };
        var batch = new Option<int?>("--check-batch") { Description = $"The batch the layers are checked at (default a worker's share of --batch-size, at most {NumericsGate.MaxBatch})" };
        command.Options.Add(preset);
        command.Options.Add(config);
        command.Options.Add(devices);
        command.Options.Add(batch);
        var runOptions = TrainCommand.AddSectionOptions<RunConfig>(command, "moco.run");
        var hostOptions = TrainCommand.AddSectionOptions<HostSettings>(command, "moco.host");
        command.SetAction(parse =>
        {
            var (cfg, source) = Presets.Load(parse.GetValue(preset), parse.GetValue(config));
            cfg = Presets.WithEnvironment(cfg, Environment.GetEnvironmentVariables());
            cfg = Presets.WithOverrides(cfg, "moco.run", TrainCommand.Collect(parse, runOptions));
            cfg = Presets.WithOverrides(cfg, "moco.host", TrainCommand.Collect(parse, hostOptions));
            SettingsReader.CheckSections(cfg, "moco", Presets.Sections, source);
            var run = SettingsReader.Read<RunConfig>(cfg, "moco.run", source).Validate();
            var host = SettingsReader.Read<HostSettings>(cfg, "moco.host", source).Validate();
            int workers = Math.Max(1, parse.GetValue(devices));
            var (device, deviceLine) = DeviceChoice.Choose(host.Device, workers);
            var console = AnsiConsole.Console;
            console.MarkupLine(Markup.Escape(deviceLine));
            torch.set_num_threads(Math.Max(1, host.EffectiveThreads / workers));
            long share = parse.GetValue(batch) ?? Math.Min(run.BatchSize / workers, NumericsGate.MaxBatch);
            var report = NumericsCheck.Run(run.Encoder, run.ComputePrecision, run.ImageSize, Math.Max(2, share), ComputeDevices.For(device, 0));
            Print(console, report);
            return report.Passed ? 0 : 3;
        });
        return command;
    }

    /// <summary>The report as a table (layer, check, error, tolerance) and its summary lines.</summary>
    public static void Print(IAnsiConsole console, NumericsReport report)
    {
        var table = new Table().AddColumns("layer (input per sample, weight, stride, padding, dtype)", "compared", "‖a−b‖/‖b‖", "tolerance", "");
        table.Columns[2].RightAligned();
        table.Columns[3].RightAligned();
        foreach (var entry in report.Entries)
        {
            int colon = entry.Name.LastIndexOf(": ", StringComparison.Ordinal);
            string layer = colon < 0 ? entry.Name : entry.Name[..colon];
            string what = colon < 0 ? "" : entry.Name[(colon + 2)..];
            string error = entry.Finite ? entry.RelativeError.ToString("0.0e0", CultureInfo.InvariantCulture) : "NaN/Inf";
            table.AddRow(Markup.Escape(layer), Markup.Escape(what), error, entry.Tolerance.ToString("0e0", CultureInfo.InvariantCulture),
                entry.Passed ? "[green]ok[/]" : "[red]WRONG[/]");
        }

        console.Write(table);
        console.MarkupLine(Markup.Escape(report.Setting));
        console.MarkupLine(report.Passed
            ? $"[green]numerics {Markup.Escape(report.Summary)}[/]"
            : $"[red]numerics {Markup.Escape(report.Summary)}[/]\n{Markup.Escape(NumericsCheckFailedException.Describe(report))}");
    }
}
