namespace MoCo.Actors.Run;

/// <summary>What one finished epoch measured.</summary>
/// <param name="Loss">Mean contrastive loss over the epoch.</param>
/// <param name="InstanceAccuracy">Mean instance-discrimination accuracy (positive key ranked first), in [0, 1].</param>
/// <param name="LearningRate">Learning rate at the end of the epoch.</param>
/// <param name="KnnTop1">kNN monitor top-1 accuracy in [0, 1], or null when the monitor did not run this epoch.</param>
/// <param name="KnnTop5">kNN monitor top-5 accuracy in [0, 1], or null when the monitor did not run this epoch.</param>
/// <param name="Seconds">Wall-clock duration of the epoch.</param>
/// <param name="ImagesPerSecond">Training throughput over the epoch (global batch, all workers).</param>
public sealed record EpochMetrics(
    double Loss,
    double InstanceAccuracy,
    double LearningRate,
    double? KnnTop1,
    double? KnnTop5,
    double Seconds,
    double ImagesPerSecond) : IMocoMessage;
