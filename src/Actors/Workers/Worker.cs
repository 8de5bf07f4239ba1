namespace MoCo.Actors.Workers;

/// <summary>
/// The protocol of <see cref="WorkerActor"/>: one worker per device slot, driven by its parent (the training
/// director). Every message holds scalars only; tensors travel through the collective, never here.
/// </summary>
public static class Worker
{
    /// <summary>Run steps until the global step reaches <paramref name="UpTo"/> or the epoch ends; answered by <see cref="StepsDone"/> or <see cref="WorkerFailed"/>.</summary>
    /// <param name="UpTo">The global step to stop at (exclusive bound of the steps run: the last step run is <c>UpTo - 1</c>).</param>
    public sealed record RunSteps(long UpTo) : IMocoMessage;

    /// <summary>Write a checkpoint of the current state (rank 0 only); answered by <see cref="CheckpointWritten"/> or <see cref="WorkerFailed"/>.</summary>
    /// <param name="Path">The checkpoint file to write (atomically).</param>
    public sealed record SaveCheckpoint(string Path) : IMocoMessage;

    /// <summary>The worker built its model (and loaded its checkpoint when resuming); sent to the parent once, at start.</summary>
    /// <param name="Rank">The worker's rank.</param>
    /// <param name="GlobalStep">Steps completed since the start of the run.</param>
    /// <param name="Epoch">The epoch of the next step.</param>
    /// <param name="StepInEpoch">The step within <paramref name="Epoch"/> of the next step.</param>
    /// <param name="StepsPerEpoch">Global batches per epoch.</param>
    public sealed record Ready(int Rank, long GlobalStep, int Epoch, int StepInEpoch, int StepsPerEpoch) : IMocoMessage;

    /// <summary>Rank 0 finished one step (sent after every step, for progress displays).</summary>
    /// <param name="GlobalStep">The global step just completed (0-based).</param>
    /// <param name="Epoch">Its epoch.</param>
    /// <param name="StepInEpoch">Its step within the epoch (0-based).</param>
    /// <param name="StepsPerEpoch">Global batches per epoch.</param>
    /// <param name="Loss">The step's contrastive loss.</param>
    /// <param name="InstanceAccuracy">The step's instance-discrimination accuracy in [0, 1].</param>
    /// <param name="LearningRate">The step's learning rate.</param>
    public sealed record StepCompleted(long GlobalStep, int Epoch, int StepInEpoch, int StepsPerEpoch, double Loss, double InstanceAccuracy, double LearningRate) : IMocoMessage;

    /// <summary>The reply to <see cref="RunSteps"/>: where the worker's cursor now is.</summary>
    /// <param name="Rank">The worker's rank.</param>
    /// <param name="GlobalStep">Steps completed since the start of the run.</param>
    /// <param name="Epoch">The epoch of the next step (equal to the run's epochs once it has finished).</param>
    /// <param name="StepInEpoch">The step within <paramref name="Epoch"/> of the next step.</param>
    /// <param name="Loss">The last step's loss (NaN when no step ran).</param>
    /// <param name="LearningRate">The last step's learning rate (NaN when no step ran).</param>
    /// <param name="ImagesPerSecond">Global images per second over the steps of this command.</param>
    public sealed record StepsDone(int Rank, long GlobalStep, int Epoch, int StepInEpoch, double Loss, double LearningRate, double ImagesPerSecond) : IMocoMessage;

    /// <summary>Rank 0 finished an epoch (sent before its <see cref="StepsDone"/>); the fields of an epoch report.</summary>
    /// <param name="Epoch">The epoch that ended.</param>
    /// <param name="GlobalStep">The global step at its end.</param>
    /// <param name="Steps">Steps of the epoch run by this worker since it started (fewer than an epoch after a mid-epoch resume).</param>
    /// <param name="Loss">Mean loss over those steps.</param>
    /// <param name="InstanceAccuracy">Mean instance-discrimination accuracy in [0, 1].</param>
    /// <param name="LearningRate">The learning rate of the epoch's last step.</param>
    /// <param name="KnnTop1Percent">kNN monitor top-1 in percent, or null when it did not run this epoch.</param>
    /// <param name="KnnTop5Percent">kNN monitor top-5 in percent, or null when it did not run this epoch.</param>
    /// <param name="Seconds">Wall-clock seconds of the epoch, kNN included.</param>
    /// <param name="ImagesPerSecond">Global images per second of training (kNN excluded).</param>
    /// <param name="LoaderWaitSeconds">Seconds this worker waited on its data loader.</param>
    public sealed record EpochDone(int Epoch, long GlobalStep, int Steps, double Loss, double InstanceAccuracy, double LearningRate, double? KnnTop1Percent, double? KnnTop5Percent, double Seconds, double ImagesPerSecond, double LoaderWaitSeconds) : IMocoMessage;

    /// <summary>Rank 0 evaluated the random encoder with the kNN monitor before the first step.</summary>
    /// <param name="Top1Percent">Top-1 in percent.</param>
    /// <param name="Top5Percent">Top-5 in percent.</param>
    public sealed record KnnEvaluated(double Top1Percent, double Top5Percent) : IMocoMessage;

    /// <summary>The reply to <see cref="SaveCheckpoint"/>.</summary>
    /// <param name="Path">The file written.</param>
    /// <param name="Sha256">Its SHA-256, lower-case hex.</param>
    /// <param name="Seconds">How long writing took.</param>
    /// <param name="Epoch">The epoch in the checkpoint's header (the epoch of the next step).</param>
    /// <param name="GlobalStep">The global step it holds.</param>
    public sealed record CheckpointWritten(string Path, string Sha256, double Seconds, int Epoch, long GlobalStep) : IMocoMessage;

    /// <summary>The worker failed; its state can no longer be trusted and it must be stopped.</summary>
    /// <param name="Rank">The worker's rank.</param>
    /// <param name="Operation">What it was doing: starting, training, evaluating kNN, writing a checkpoint.</param>
    /// <param name="GlobalStep">Its global step when it failed (the failing step left no trace).</param>
    /// <param name="Epoch">Its epoch.</param>
    /// <param name="StepInEpoch">Its step within the epoch.</param>
    /// <param name="Error">The exception's type and message.</param>
    /// <param name="FirstFailure">Whether it was the first rank of its group to fail (the others failed because the group was aborted).</param>
    public sealed record WorkerFailed(int Rank, string Operation, long GlobalStep, int Epoch, int StepInEpoch, string Error, bool FirstFailure) : IMocoMessage;
}
