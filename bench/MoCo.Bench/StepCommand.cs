using System.Globalization;
using Spectre.Console;

namespace MoCo.Bench;

/// <summary>
/// <c>moco-bench step</c>: runs each configuration in a child process of its own, one after the other, and
/// prints their throughput as a ratio to the bare loop (a) measured in the same run, their peak resident
/// memory, and how (b)'s peak compares with (a)'s plus the queue.
/// </summary>
internal static class StepCommand
{
    /// <summary>The issue's goal for (b)'s peak memory over (a)'s peak plus the queue.</summary>
    private const double MemoryGoal = 1.3;

    /// <summary>Runs the children and prints the tables; returns 1 when any child failed.</summary>
    public static int Run(StepOptions options)
    {
        var config = (CifarSmall.Config(1, options.Batch, options.Data) with { Width = options.Width }).Validate();
        AnsiConsole.MarkupLine(Markup.Escape(
            $"cifar-small: {config.Arch}, {config.Stem} stem, width {config.Width}, dim {config.MocoDim}, K {config.MocoK}, m {config.MocoM}, " +
            $"T {config.MocoT}, bn-splits {config.BnSplits}, batch {options.Batch}, {config.ImageSize}x{config.ImageSize}"));
        AnsiConsole.MarkupLine(Markup.Escape(
            $"{options.Warmup} warm-up + {options.Steps} timed steps per configuration; data for (d) and (e): {options.Data}"));

        var peaks = MachineLimit.MeasurePeaks(options);
        var results = new Dictionary<StepWorkload, ChildRun>();
        foreach (var what in options.What)
        {
            AnsiConsole.MarkupLine(Markup.Escape($"({what.Letter()}) {what.Describe()} ..."));
            var run = ChildRun.Start(options.ChildArguments(what));
            results[what] = run;
            if (run.Measurement is null)
            {
                AnsiConsole.MarkupLine($"[red]{Markup.Escape($"({what.Letter()}) failed with exit code {run.ExitCode}")}[/]");
                AnsiConsole.WriteLine(run.ErrorTail);
            }
            else
            {
                AnsiConsole.MarkupLine(Markup.Escape($"    done in {Format(run.WallSeconds, 1)} s (set-up included): {run.Measurement.Note}"));
            }
        }

        var baseline = results.GetValueOrDefault(StepWorkload.BareLoop)?.Measurement;
        AnsiConsole.Write(ResultTable(options, results, baseline));
        AnsiConsole.Write(SummaryTable(config, results, baseline));
        AnsiConsole.Write(MachineLimit.Table(config, options, results, MachineLimit.MeasurePeaks(options, peaks)));
        return results.Values.Any(r => r.Measurement is null) ? 1 : 0;
    }

    private static Table ResultTable(StepOptions options, IReadOnlyDictionary<StepWorkload, ChildRun> results, StepMeasurement? baseline)
    {
        var table = new Table().Title("moco-bench step").Border(TableBorder.Markdown);
        table.AddColumn("");
        table.AddColumn("configuration");
        table.AddColumn(new TableColumn("median step (ms)").RightAligned());
        table.AddColumn(new TableColumn("min..max (ms)").RightAligned());
        table.AddColumn(new TableColumn("images/s").RightAligned());
        table.AddColumn(new TableColumn("vs (a)").RightAligned());
        table.AddColumn(new TableColumn("peak RSS (MiB)").RightAligned());
        foreach (var what in options.What)
        {
            var m = results[what].Measurement;
            if (m is null)
            {
                table.AddRow($"({what.Letter()})", Markup.Escape(what.Describe()), "failed", "", "", "", "");
                continue;
            }
            string ratio = baseline is null ? "n/a" : Format(m.ImagesPerSecond / baseline.ImagesPerSecond, 2) + "x";
            table.AddRow(
                $"({what.Letter()})",
                Markup.Escape(what.Describe()),
                Format(m.MedianStepSeconds * 1000, 0),
                $"{Format(m.MinStepSeconds * 1000, 0)}..{Format(m.MaxStepSeconds * 1000, 0)}",
                Format(m.ImagesPerSecond, 1),
                ratio,
                Format(m.PeakResidentMiB, 0));
        }
        return table;
    }

    private static Table SummaryTable(Model.Training.RunConfig config, IReadOnlyDictionary<StepWorkload, ChildRun> results, StepMeasurement? baseline)
    {
        var any = results.Values.Select(r => r.Measurement).FirstOrDefault(m => m is not null);
        double queueMiB = (double)config.MocoDim * config.MocoK * sizeof(float) / (1024 * 1024);
        var table = new Table().Border(TableBorder.Markdown);
        table.AddColumn("quantity");
        table.AddColumn(new TableColumn("value").RightAligned());
        table.AddRow("torch threads (per child)", any is null ? "n/a" : any.TorchThreads.ToString(CultureInfo.InvariantCulture));
        table.AddRow("cores (Environment.ProcessorCount)", any is null ? Environment.ProcessorCount.ToString(CultureInfo.InvariantCulture) : any.Cores.ToString(CultureInfo.InvariantCulture));
        table.AddRow(Markup.Escape($"queue, {config.MocoDim} x {config.MocoK} float32 (MiB)"), Format(queueMiB, 2));
        var moco = results.GetValueOrDefault(StepWorkload.MocoFp32)?.Measurement;
        if (baseline is not null && moco is not null)
        {
            double ratio = moco.PeakResidentMiB / (baseline.PeakResidentMiB + queueMiB);
            string verdict = ratio <= MemoryGoal ? "[green]within[/]" : "[red]over[/]";
            table.AddRow(
                Markup.Escape("peak (b) / (peak (a) + queue)"),
                $"{Format(ratio, 2)}x ({verdict} the {Format(MemoryGoal, 1)}x goal)");
        }
        else
        {
            table.AddRow(Markup.Escape("peak (b) / (peak (a) + queue)"), "n/a (needs (a) and (b))");
        }
        return table;
    }

    private static string Format(double value, int decimals) =>
        double.IsFinite(value) ? value.ToString("F" + decimals.ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture) : "n/a";
}
