namespace MoCo.Actors.Training;

/// <summary>
/// The protocol of <see cref="TrainingDirectorActor"/>. The director reports to its subscriber: first
/// <see cref="RunStarting"/>, then the workers' progress as they send it (<see cref="Workers.Worker.KnnEvaluated"/>,
/// <see cref="Workers.Worker.StepCompleted"/>, <see cref="Workers.Worker.EpochDone"/>), the checkpointer's
/// <see cref="Checkpoints.Checkpointer.Written"/>, the queue keeper's <see cref="Queue.QueueKeeper.Age"/>, each new
/// <see cref="GenerationFormed"/> after a worker was re-created, and <see cref="Notice"/>s, and last exactly one of <see cref="RunCompleted"/>, <see cref="RunFailed"/> or
/// <see cref="Interrupted"/>, after which the director stops.
/// </summary>
public static class TrainingDirector
{
    /// <summary>Stop at the end of the current chunk of steps without failing the run (it can be resumed from its latest checkpoint).</summary>
    public sealed record Interrupt : IMocoMessage
    {
        /// <summary>The only instance.</summary>
        public static Interrupt Instance { get; } = new();

        private Interrupt()
        {
        }
    }

    /// <summary>Every worker is ready and the generation is recorded; training starts.</summary>
    /// <param name="RunId">The run's identity.</param>
    /// <param name="Resumed">Whether the run continues from a checkpoint.</param>
    /// <param name="WorldSize">The number of workers.</param>
    /// <param name="Generation">The generation recorded for this session.</param>
    /// <param name="GlobalStep">The global step training resumes at.</param>
    /// <param name="Epoch">The epoch of the next step.</param>
    /// <param name="StepInEpoch">The step within <paramref name="Epoch"/> of the next step.</param>
    /// <param name="StepsPerEpoch">Global batches per epoch.</param>
    public sealed record RunStarting(string RunId, bool Resumed, int WorldSize, int Generation, long GlobalStep, int Epoch, int StepInEpoch, int StepsPerEpoch) : IMocoMessage;

    /// <summary>A new generation formed after a failure: the failed ranks were re-created and every replica holds the same state.</summary>
    /// <param name="Generation">The generation, as recorded in the journal.</param>
    /// <param name="WorldSize">The number of workers.</param>
    /// <param name="GlobalStep">The global step training resumes at (the interrupted step is redone).</param>
    /// <param name="Recreated">The ranks re-created.</param>
    /// <param name="Source">Where their state came from (a surviving rank or a checkpoint).</param>
    public sealed record GenerationFormed(int Generation, int WorldSize, long GlobalStep, IReadOnlyList<int> Recreated, string Source) : IMocoMessage;

    /// <summary>Something a person should know that does not stop the run.</summary>
    /// <param name="Text">The notice.</param>
    public sealed record Notice(string Text) : IMocoMessage;

    /// <summary>The run finished its schedule and <c>RunCompleted</c> is in the journal.</summary>
    /// <param name="RunId">The run's identity.</param>
    /// <param name="GlobalStep">The final global step.</param>
    public sealed record RunCompleted(string RunId, long GlobalStep) : IMocoMessage;

    /// <summary>The run stopped on an error.</summary>
    /// <param name="RunId">The run's identity.</param>
    /// <param name="Reason">What went wrong and what to do about it.</param>
    /// <param name="Recorded">Whether <c>RunFailed</c> was written to the journal (false when the journal refused it, or the failure was in the journal itself).</param>
    public sealed record RunFailed(string RunId, string Reason, bool Recorded) : IMocoMessage;

    /// <summary>The run stopped after an <see cref="Interrupt"/>; it is still running in the journal and can be resumed.</summary>
    /// <param name="RunId">The run's identity.</param>
    /// <param name="GlobalStep">The global step reached.</param>
    /// <param name="LastCheckpoint">The latest checkpoint written, or null when none was.</param>
    public sealed record Interrupted(string RunId, long GlobalStep, string? LastCheckpoint) : IMocoMessage;

    /// <summary>
    /// The journal already holds the end of the run (<c>RunCompleted</c> or <c>RunFailed</c>) when it was asked to
    /// resume: nothing was trained and nothing was written.
    /// </summary>
    /// <param name="RunId">The run's identity.</param>
    /// <param name="Completed">True when the run completed, false when it failed.</param>
    /// <param name="Reason">What the journal says, and what to do.</param>
    public sealed record AlreadyFinished(string RunId, bool Completed, string Reason) : IMocoMessage;
}
