namespace MoCo.Actors.Run;

/// <summary>
/// The run recorder's protocol. Every command is answered with <see cref="Ack"/> once its event is persisted
/// and applied, or with <see cref="Rejected"/> when <see cref="RunState.Apply"/> refuses it (nothing is then
/// persisted). <see cref="GetState"/> is answered with the current <see cref="RunState"/>.
/// The actor itself is <see cref="RunRecorderActor"/>.
/// </summary>
public static class RunRecorder
{
    /// <summary>Marks the commands that persist an event.</summary>
    public interface ICommand : IMocoMessage
    {
    }

    /// <summary>Start the run; persists <see cref="RunStarted"/>.</summary>
    /// <param name="RunId">Must equal the recorder's run id.</param>
    /// <param name="ConfigJson">The run's configuration, as JSON.</param>
    public sealed record StartRun(string RunId, string ConfigJson) : ICommand;

    /// <summary>Start the next generation; persists <see cref="GenerationStarted"/> numbered one past the current.</summary>
    /// <param name="Ranks">The generation's workers in rank order; each must be a member.</param>
    /// <param name="Step">The global step the generation resumes at.</param>
    public sealed record StartGeneration(IReadOnlyList<WorkerInfo> Ranks, long Step) : ICommand;

    /// <summary>Add a worker to the membership; persists <see cref="WorkerJoined"/>.</summary>
    /// <param name="Worker">The worker.</param>
    public sealed record JoinWorker(WorkerInfo Worker) : ICommand;

    /// <summary>Remove a worker from the membership; persists <see cref="WorkerLeft"/>.</summary>
    /// <param name="WorkerId">The worker's identity.</param>
    /// <param name="Reason">Why it leaves, for the history.</param>
    public sealed record LeaveWorker(string WorkerId, string Reason) : ICommand;

    /// <summary>Record a finished epoch; persists <see cref="EpochCompleted"/>.</summary>
    /// <param name="Epoch">The epoch number.</param>
    /// <param name="Step">The global step at its end.</param>
    /// <param name="Metrics">What it measured.</param>
    public sealed record RecordEpoch(int Epoch, long Step, EpochMetrics Metrics) : ICommand;

    /// <summary>Record a checkpoint written to disk; persists <see cref="CheckpointSaved"/>.</summary>
    /// <param name="Path">The checkpoint file.</param>
    /// <param name="Sha256">Its SHA-256, lower-case hex.</param>
    /// <param name="Epoch">The epoch it belongs to.</param>
    /// <param name="Step">The global step it holds.</param>
    public sealed record RecordCheckpoint(string Path, string Sha256, int Epoch, long Step) : ICommand;

    /// <summary>Finish the run; persists <see cref="RunCompleted"/>.</summary>
    /// <param name="Step">The final global step.</param>
    public sealed record CompleteRun(long Step) : ICommand;

    /// <summary>Record steps' losses and, at a chunk's end, the digest of the state there (<see cref="StepsRecorded"/>).</summary>
    /// <param name="FirstStep">The global step of the first loss.</param>
    /// <param name="Losses">One loss per step.</param>
    /// <param name="Digest">The state digest after the last step, or null.</param>
    /// <param name="Checksums">Each state tensor's checksum, with the digest.</param>
    /// <param name="Threads">Torch threads per worker.</param>
    /// <param name="WorldSize">Workers.</param>
    /// <param name="DataPlane">in-process, tcp-ring or nccl.</param>
    public sealed record RecordSteps(long FirstStep, IReadOnlyList<double> Losses, string? Digest, IReadOnlyList<long>? Checksums, int Threads, int WorldSize,
        string DataPlane) : ICommand;

    /// <summary>Fail the run for good; persists <see cref="RunFailed"/>.</summary>
    /// <param name="Reason">What went wrong.</param>
    public sealed record FailRun(string Reason) : ICommand;

    /// <summary>Ask for the current <see cref="RunState"/>.</summary>
    public sealed record GetState : IMocoMessage
    {
        /// <summary>The only instance.</summary>
        public static GetState Instance { get; } = new();

        private GetState()
        {
        }
    }

    /// <summary>The command's event was persisted and applied.</summary>
    /// <param name="Event">The event persisted.</param>
    /// <param name="SequenceNr">Its journal sequence number.</param>
    /// <param name="State">The run's state after the event: the recorder is the one place that folds the run's events,
    /// and the director takes the state from here.</param>
    public sealed record Ack(IRunEvent Event, long SequenceNr, RunState State) : IMocoMessage;

    /// <summary>The command was refused by <see cref="RunState.Apply"/>; nothing was persisted.</summary>
    /// <param name="Command">The command refused.</param>
    /// <param name="Reason">Why, as <see cref="RunState.Apply"/> put it.</param>
    public sealed record Rejected(ICommand Command, string Reason) : IMocoMessage;
}
