namespace MoCo.Actors.Queue;

/// <summary>
/// The protocol of <see cref="QueueKeeperActor"/>: the run's canonical MoCo queue. Workers keep their replica on
/// their device for the hot path and report to the keeper at the end of every chunk of steps.
/// </summary>
public static class QueueKeeper
{
    /// <summary>
    /// A replica's queue after <paramref name="GlobalStep"/> steps. Every rank sends its pointer and digest (the keeper
    /// checks that the replicas agree and that the pointer is where the ledger says); rank 0 also sends the keys, which
    /// become the canonical copy. A local message: it may carry the keys as a plain array (never a tensor) and is not an
    /// <see cref="IMocoMessage"/>.
    /// </summary>
    /// <param name="Rank">The reporting rank.</param>
    /// <param name="Generation">Its generation.</param>
    /// <param name="GlobalStep">Steps completed.</param>
    /// <param name="Pointer">The replica's write pointer.</param>
    /// <param name="Digest">SHA-256 of the replica's keys and pointer, lower-case hex.</param>
    /// <param name="Keys">The keys (dim × K, row-major), from rank 0 only; null from the others.</param>
    /// <param name="Dim">The key dimension.</param>
    public sealed record Report(int Rank, int Generation, long GlobalStep, long Pointer, string Digest, float[]? Keys, int Dim);

    /// <summary>A new generation with <paramref name="WorldSize"/> replicas; reports of older generations are dropped.</summary>
    /// <param name="Generation">The new generation.</param>
    /// <param name="WorldSize">Its number of replicas.</param>
    public sealed record StartGeneration(int Generation, int WorldSize) : IMocoMessage;

    /// <summary>Ask for the canonical queue; answered by <see cref="Snapshot"/> (or <see cref="Empty"/> before the first report).</summary>
    public sealed record GetQueue : IMocoMessage
    {
        /// <summary>The instance.</summary>
        public static readonly GetQueue Instance = new();
    }

    /// <summary>The canonical queue: a local reply (it carries the keys as an array).</summary>
    /// <param name="GlobalStep">The step it belongs to.</param>
    /// <param name="Pointer">The write pointer.</param>
    /// <param name="Keys">dim × K keys, row-major.</param>
    /// <param name="Dim">The key dimension.</param>
    /// <param name="WrittenAt">The step that wrote each slot (-1: the random initial key).</param>
    public sealed record Snapshot(long GlobalStep, long Pointer, float[] Keys, int Dim, long[] WrittenAt);

    /// <summary>The keeper has not received rank 0's keys yet.</summary>
    public sealed record Empty : IMocoMessage
    {
        /// <summary>The instance.</summary>
        public static readonly Empty Instance = new();
    }

    /// <summary>Published after every chunk (to the keeper's subscriber): how stale the negatives are.</summary>
    /// <param name="GlobalStep">Steps completed.</param>
    /// <param name="Filled">Slots holding keys of some step.</param>
    /// <param name="Capacity">K.</param>
    /// <param name="OldestKeyAgeSteps">Age in steps of the oldest key; null while random initial keys remain.</param>
    public sealed record Age(long GlobalStep, int Filled, int Capacity, long? OldestKeyAgeSteps) : IMocoMessage;

    /// <summary>The replicas disagree, or a pointer is not where the ledger says: the data plane or a step is broken.</summary>
    /// <param name="GlobalStep">The step of the reports.</param>
    /// <param name="Problem">What disagrees, naming the ranks.</param>
    public sealed record Inconsistent(long GlobalStep, string Problem) : IMocoMessage;
}
