using System.Globalization;

namespace MoCo.Model.Training;

/// <summary>
/// The layout of a run's <c>metrics.csv</c>, one row per epoch: written by the training director during training
/// and by <c>moco replay</c> from the run journal, so both produce the same columns and number formats.
/// </summary>
public static class MetricsCsv
{
    /// <summary>The file name inside a run directory.</summary>
    public const string FileName = "metrics.csv";

    /// <summary>The header line (kNN accuracies are percentages, like <c>moco knn</c> prints them).</summary>
    /// <c>seconds</c> is the epoch's wall time, the kNN monitor's <c>knn_seconds</c> included.
    public const string Header = "epoch,steps,loss,instance_acc,lr,knn_top1,knn_top5,seconds,images_per_second,loader_wait_seconds,knn_seconds";

    /// <summary>One epoch's row, without the line break.</summary>
    /// <param name="epoch">The epoch number.</param>
    /// <param name="steps">Steps taken in the epoch.</param>
    /// <param name="loss">Mean contrastive loss.</param>
    /// <param name="instanceAccuracy">Mean instance-discrimination accuracy in [0, 1].</param>
    /// <param name="learningRate">Learning rate at the end of the epoch.</param>
    /// <param name="knnTop1Percent">kNN top-1 in percent, or null when the monitor did not run (empty cell).</param>
    /// <param name="knnTop5Percent">kNN top-5 in percent, or null when the monitor did not run (empty cell).</param>
    /// <param name="seconds">Wall-clock duration of the epoch.</param>
    /// <param name="imagesPerSecond">Training throughput.</param>
    /// <param name="loaderWaitSeconds">Seconds spent waiting on the data loader, or null when unknown (empty cell).</param>
    /// <param name="knnSeconds">Seconds of the kNN monitor after the epoch, or null when it did not run or is unknown (empty cell).</param>
    public static string Row(
        int epoch,
        long steps,
        double loss,
        double instanceAccuracy,
        double learningRate,
        double? knnTop1Percent,
        double? knnTop5Percent,
        double seconds,
        double imagesPerSecond,
        double? loaderWaitSeconds,
        double? knnSeconds = null)
    {
        var c = CultureInfo.InvariantCulture;
        return string.Join(",",
            epoch.ToString(c),
            steps.ToString(c),
            loss.ToString("G6", c),
            instanceAccuracy.ToString("G6", c),
            learningRate.ToString("G6", c),
            knnTop1Percent?.ToString("F2", c) ?? string.Empty,
            knnTop5Percent?.ToString("F2", c) ?? string.Empty,
            seconds.ToString("F2", c),
            imagesPerSecond.ToString("F1", c),
            loaderWaitSeconds?.ToString("F2", c) ?? string.Empty,
            knnSeconds?.ToString("F2", c) ?? string.Empty);
    }
}
