using System.Collections.Immutable;

namespace MoCo.Actors.Run;

/// <summary>
/// A fact about a run, persisted by the run recorder and folded by <see cref="RunState.Apply"/>.
/// Events are past tense and immutable; replaying them in order rebuilds the run.
/// </summary>
public interface IRunEvent : IJournalMessage
{
}

/// <summary>The run was created with its configuration.</summary>
/// <param name="RunId">The run's identity (the persistence id is <c>run-{RunId}</c>).</param>
/// <param name="ConfigJson">The run's full configuration, as JSON.</param>
/// <param name="StartedUtc">When the run started.</param>
public sealed record RunStarted(string RunId, string ConfigJson, DateTimeOffset StartedUtc) : IRunEvent;

/// <summary>A new generation of workers formed and resumes training at <paramref name="Step"/>.</summary>
/// <param name="Generation">The generation number; strictly increasing within a run, the first is 1.</param>
/// <param name="Ranks">The workers of the generation in rank order (rank i is <c>Ranks[i]</c>).</param>
/// <param name="Step">The global step the generation resumes at.</param>
public sealed record GenerationStarted(int Generation, IReadOnlyList<WorkerInfo> Ranks, long Step) : IRunEvent
{
    /// <summary>Value equality, comparing the ranks element by element.</summary>
    public bool Equals(GenerationStarted? other)
    {
        return other is not null
            && Generation == other.Generation
            && Step == other.Step
            && Ranks.SequenceEqual(other.Ranks);
    }

    /// <inheritdoc />
    public override int GetHashCode()
    {
        return HashCode.Combine(Generation, Step, Ranks.Count);
    }
}

/// <summary>A worker joined the run's membership.</summary>
/// <param name="Worker">The worker.</param>
public sealed record WorkerJoined(WorkerInfo Worker) : IRunEvent;

/// <summary>A worker left the run's membership (stopped, crashed, or its node became unreachable).</summary>
/// <param name="WorkerId">The worker's identity.</param>
/// <param name="Reason">Why it left, for the history.</param>
public sealed record WorkerLeft(string WorkerId, string Reason) : IRunEvent;

/// <summary>An epoch finished.</summary>
/// <param name="Epoch">The epoch number (0-based), strictly increasing within a run.</param>
/// <param name="Step">The global step at the end of the epoch.</param>
/// <param name="Metrics">What the epoch measured.</param>
public sealed record EpochCompleted(int Epoch, long Step, EpochMetrics Metrics) : IRunEvent;

/// <summary>A checkpoint was written, fsynced and renamed into place.</summary>
/// <param name="Path">The checkpoint file.</param>
/// <param name="Sha256">The file's SHA-256, lower-case hex.</param>
/// <param name="Epoch">The epoch the checkpoint belongs to.</param>
/// <param name="Step">The global step the checkpoint holds.</param>
public sealed record CheckpointSaved(string Path, string Sha256, int Epoch, long Step) : IRunEvent;

/// <summary>The run finished its schedule.</summary>
/// <param name="Step">The final global step.</param>
/// <param name="CompletedUtc">When it finished.</param>
public sealed record RunCompleted(long Step, DateTimeOffset CompletedUtc) : IRunEvent;

/// <summary>The run stopped for good on an error.</summary>
/// <param name="Reason">What went wrong.</param>
/// <param name="FailedUtc">When it failed.</param>
public sealed record RunFailed(string Reason, DateTimeOffset FailedUtc) : IRunEvent;

/// <summary>
/// Steps done since the last record: each one's loss, and at a chunk's end the digest of the whole state there (what
/// <c>moco replay --verify</c> re-computes and compares).
/// </summary>
/// <param name="FirstStep">The global step of the first loss (0-based).</param>
/// <param name="Losses">The loss of steps FirstStep, FirstStep + 1, ... (all ranks agree: it is all-reduced).</param>
/// <param name="Digest">The state digest after the last of them (MoCo.Model.Training.StateDigest), or null when the
/// steps end at a failure rather than a chunk's end.</param>
/// <param name="Checksums">Each state tensor's checksum in state order, with the digest (to name a differing tensor).</param>
/// <param name="Threads">The torch threads of each worker (kernels may depend on them: a bit-identical replay uses the same).</param>
/// <param name="WorldSize">The workers that computed them.</param>
/// <param name="DataPlane">How their gradients were summed: in-process, tcp-ring or nccl (the summation order, which a
/// bit-identical replay repeats).</param>
public sealed record StepsRecorded(long FirstStep, ImmutableList<double> Losses, string? Digest, ImmutableList<long>? Checksums, int Threads, int WorldSize,
    string DataPlane) : IRunEvent
{
    /// <summary>The step after the last one recorded.</summary>
    public long EndStep => FirstStep + Losses.Count;

    /// <summary>Value equality, comparing the lists element by element.</summary>
    public bool Equals(StepsRecorded? other) =>
        other is not null && FirstStep == other.FirstStep && Digest == other.Digest && Threads == other.Threads && WorldSize == other.WorldSize
        && DataPlane == other.DataPlane
        && Losses.SequenceEqual(other.Losses) && (Checksums ?? []).SequenceEqual(other.Checksums ?? []) && (Checksums is null) == (other.Checksums is null);

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(FirstStep, Losses.Count, Digest, Threads, WorldSize);
}


/// <summary>The values of <see cref="StepsRecorded.DataPlane"/>.</summary>
public static class StepsRecordedPlanes
{
    /// <summary>Workers of one process, summed in rank order (InProcessGroup).</summary>
    public const string InProcess = "in-process";

    /// <summary>The TCP ring between processes (chunked reduce-scatter and all-gather).</summary>
    public const string TcpRing = "tcp-ring";

    /// <summary>NCCL between GPUs.</summary>
    public const string Nccl = "nccl";
}
