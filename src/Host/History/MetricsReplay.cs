using MoCo.Model.Training;
using ScottPlot;

namespace MoCo.Host.History;

/// <summary>
/// What <c>moco replay</c> rebuilds from a run's journal: <c>metrics.csv</c> in the columns training writes
/// (<see cref="MetricsCsv"/>) and PNG plots of loss, learning rate and kNN top-1 per epoch.
/// </summary>
/// <remarks>
/// The journal does not record the seconds spent waiting on the data loader, so that column is left empty; the steps
/// column is the epoch's length (its end step minus the previous epoch's), which is what a run that was not resumed
/// mid-epoch writes too.
/// </remarks>
public static class MetricsReplay
{
    /// <summary>The loss plot's file name.</summary>
    public const string LossPlot = "loss.png";

    /// <summary>The learning-rate plot's file name.</summary>
    public const string LearningRatePlot = "lr.png";

    /// <summary>The kNN top-1 plot's file name.</summary>
    public const string KnnPlot = "knn_top1.png";

    private const int Width = 800;
    private const int Height = 500;

    /// <summary>The lines of <c>metrics.csv</c>: the header, then one row per epoch.</summary>
    /// <param name="timeline">The run.</param>
    public static IReadOnlyList<string> CsvLines(RunTimeline timeline)
    {
        ArgumentNullException.ThrowIfNull(timeline);
        var lines = new List<string> { MetricsCsv.Header };
        foreach (var e in timeline.Epochs)
        {
            lines.Add(MetricsCsv.Row(e.Epoch, e.Steps, e.Loss, e.InstanceAccuracy, e.LearningRate, e.KnnTop1 * 100, e.KnnTop5 * 100,
                e.Seconds, e.ImagesPerSecond, loaderWaitSeconds: null));
        }

        return lines;
    }

    /// <summary>Writes <c>metrics.csv</c> and the three plots into <paramref name="directory"/> (created if missing).</summary>
    /// <param name="timeline">The run.</param>
    /// <param name="directory">The output directory.</param>
    /// <returns>The files written.</returns>
    public static IReadOnlyList<string> Write(RunTimeline timeline, string directory)
    {
        ArgumentNullException.ThrowIfNull(timeline);
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        Directory.CreateDirectory(directory);
        var csv = Path.Combine(directory, MetricsCsv.FileName);
        File.WriteAllLines(csv, CsvLines(timeline));

        var epochs = timeline.Epochs;
        var x = epochs.Select(e => (double)e.Epoch).ToArray();
        var written = new List<string> { csv };
        written.Add(SavePlot(Path.Combine(directory, LossPlot), $"{timeline.RunId}: loss", "loss",
            x, epochs.Select(e => e.Loss).ToArray()));
        written.Add(SavePlot(Path.Combine(directory, LearningRatePlot), $"{timeline.RunId}: learning rate", "lr",
            x, epochs.Select(e => e.LearningRate).ToArray()));
        var knn = epochs.Where(e => e.KnnTop1 is not null).ToList();
        written.Add(SavePlot(Path.Combine(directory, KnnPlot),
            knn.Count == 0 ? $"{timeline.RunId}: kNN top-1 (the monitor never ran)" : $"{timeline.RunId}: kNN top-1",
            "kNN top-1 (%)", knn.Select(e => (double)e.Epoch).ToArray(), knn.Select(e => e.KnnTop1!.Value * 100).ToArray()));
        return written;
    }

    private static string SavePlot(string path, string title, string yLabel, double[] x, double[] y)
    {
        var plot = new Plot();
        if (x.Length > 0)
        {
            plot.Add.Scatter(x, y);
        }

        plot.Title(title);
        plot.XLabel("epoch");
        plot.YLabel(yLabel);
        plot.SavePng(path, Width, Height);
        return path;
    }
}
