namespace MoCo.Model.Evaluation;

/// <summary>What a linear probe measured, epoch by epoch.</summary>
/// <param name="TrainLoss">Mean cross-entropy over the training images of each epoch (weighted by batch size).</param>
/// <param name="Test">Top-1 and top-5 on the test set after each epoch.</param>
/// <param name="BestTop1Epoch">The epoch with the highest test top-1 (the first such), as main_lincls's best_acc1.</param>
/// <param name="CachedFeatures">Whether the head was trained on cached features (not the official protocol).</param>
/// <param name="Seconds">Wall-clock time of the whole probe, feature caching and sanity check included.</param>
public sealed record LinearProbeReport(IReadOnlyList<double> TrainLoss, IReadOnlyList<Accuracy> Test, int BestTop1Epoch, bool CachedFeatures, double Seconds)
{
    /// <summary>The test accuracy after the last epoch.</summary>
    public Accuracy Final => Test[^1];

    /// <summary>The test accuracy of <see cref="BestTop1Epoch"/>.</summary>
    public Accuracy Best => Test[BestTop1Epoch];
}
