using System.Diagnostics;
using System.Globalization;
using MoCo.Model.Collectives;
using MoCo.Model.Data;
using MoCo.Model.Training;
using Spectre.Console;
using TorchSharp;

namespace MoCo.Bench;

/// <summary>
/// <c>moco-bench cifar</c>: the cifar-small pretraining in one process (<see cref="Pretrainer"/> with
/// <see cref="SingleProcessCollective"/> and <c>BatchLayout(256, 8, 1)</c>), the kNN monitor after every
/// epoch, a line per epoch as it ends, a table at the end, and a CSV rewritten after every epoch.
/// </summary>
internal static class CifarCommand
{
    private const int Batch = 256;
    private const string CsvName = "cifar-small.csv";
    private const string CsvHeader = "epoch,loss,instance_acc,knn_top1,epoch_seconds,knn_seconds,images_per_second";

    /// <summary>Runs the pretraining; returns the process exit code.</summary>
    public static int Run(CifarOptions options)
    {
        torch.set_num_threads(options.Threads);
        string dataSpec = RepoPaths.ResolveData(options.Data);
        string outDir = RepoPaths.Resolve(options.Out);
        var config = CifarSmall.Config(options.Epochs, Batch, dataSpec).Validate();

        AnsiConsole.MarkupLine(Markup.Escape($"opening {dataSpec} ..."));
        var data = DataSource.Open(dataSpec);
        AnsiConsole.MarkupLine(Markup.Escape(data.Description));
        AnsiConsole.MarkupLine(Markup.Escape(
            $"cifar-small: {config.Arch} width {config.Width}, K {config.MocoK}, m {config.MocoM}, T {config.MocoT}, bn-splits {config.BnSplits}, " +
            $"batch {Batch}, lr {config.Lr} cosine over {config.Epochs} epochs; kNN k={config.KnnK} T={config.KnnT}; " +
            $"torch threads {torch.get_num_threads()}, cores {Environment.ProcessorCount}"));

        Directory.CreateDirectory(outDir);
        string csvPath = Path.Combine(outDir, CsvName);
        var rows = new List<EpochRow>();
        using var pretrainer = new Pretrainer(config, "bench-cifar", data, SingleProcessCollective.Instance, new BatchLayout(Batch, config.BnSplits, 1), options.Threads);
        AnsiConsole.MarkupLine(Markup.Escape($"{pretrainer.StepsPerEpoch} steps per epoch; CSV: {csvPath}"));
        while (!pretrainer.Finished)
        {
            int epoch = pretrainer.Epoch;
            double lossSum = 0;
            double accSum = 0;
            int steps = 0;
            long t0 = Stopwatch.GetTimestamp();
            while (!pretrainer.Finished && pretrainer.Epoch == epoch)
            {
                var result = pretrainer.TrainStep();
                lossSum += result.Loss;
                accSum += result.InstanceAcc;
                steps++;
            }
            double epochSeconds = Stopwatch.GetElapsedTime(t0).TotalSeconds;
            long t1 = Stopwatch.GetTimestamp();
            var knn = pretrainer.EvaluateKnn(options.Threads);
            double knnSeconds = Stopwatch.GetElapsedTime(t1).TotalSeconds;
            var row = new EpochRow(epoch, lossSum / steps, accSum / steps, knn.Top1, epochSeconds, knnSeconds, (double)steps * Batch / epochSeconds);
            rows.Add(row);
            AnsiConsole.MarkupLine(Markup.Escape(row.ToLine()));
            WriteCsv(csvPath, rows);
        }
        AnsiConsole.Write(Table(rows));
        AnsiConsole.MarkupLine(Markup.Escape($"wrote {csvPath}"));
        return 0;
    }

    private static Table Table(IEnumerable<EpochRow> rows)
    {
        var table = new Table().Title("moco-bench cifar").Border(TableBorder.Markdown);
        table.AddColumn(new TableColumn("epoch").RightAligned());
        table.AddColumn(new TableColumn("loss").RightAligned());
        table.AddColumn(new TableColumn("instance acc").RightAligned());
        table.AddColumn(new TableColumn("kNN top-1 (%)").RightAligned());
        table.AddColumn(new TableColumn("epoch (s)").RightAligned());
        table.AddColumn(new TableColumn("kNN (s)").RightAligned());
        table.AddColumn(new TableColumn("images/s").RightAligned());
        foreach (var row in rows)
        {
            table.AddRow(row.Cells());
        }
        return table;
    }

    /// <summary>Rewrites the whole CSV atomically enough for a bench: a temporary file moved over the old one.</summary>
    private static void WriteCsv(string path, IEnumerable<EpochRow> rows)
    {
        string temporary = path + ".tmp";
        File.WriteAllLines(temporary, rows.Select(r => r.ToCsv()).Prepend(CsvHeader));
        File.Move(temporary, path, overwrite: true);
    }
}
