using MoCo.Model.Checkpoints;

namespace MoCo.Actors.Checkpoints;

/// <summary>
/// The protocol of <see cref="CheckpointerActor"/>: writes checkpoint images off the training thread, keeps the
/// last n and the best by kNN top-1, and tells the run's director what it wrote.
/// </summary>
public static class Checkpointer
{
    /// <summary>
    /// Write <paramref name="Image"/> to <paramref name="Path"/>; the reply (<see cref="Written"/> or
    /// <see cref="WriteFailed"/>) goes to <paramref name="ReplyTo"/>. A local message only: it holds the image's bytes
    /// (never a tensor) and is deliberately not an <see cref="IMocoMessage"/>, so the serializer refuses to send it to
    /// another process.
    /// </summary>
    /// <param name="Path">The checkpoint file.</param>
    /// <param name="Image">The state, copied into memory by rank 0 between two steps.</param>
    /// <param name="KnnTop1Percent">The state's kNN top-1 when measured; the best is kept when pruning.</param>
    /// <param name="ReplyTo">Who hears the outcome (the director).</param>
    public sealed record Write(string Path, CheckpointImage Image, double? KnnTop1Percent, Akka.Actor.IActorRef ReplyTo);

    /// <summary>A checkpoint is on disk: flushed, renamed, its directory synced.</summary>
    /// <param name="Path">The file written.</param>
    /// <param name="Sha256">Its SHA-256, lower-case hex.</param>
    /// <param name="Seconds">How long hashing and writing took (beside training).</param>
    /// <param name="Bytes">The file's length.</param>
    /// <param name="Epoch">The epoch in its header (the epoch of the next step).</param>
    /// <param name="GlobalStep">The global step it holds.</param>
    /// <param name="Pruned">Older checkpoints removed after it was written.</param>
    public sealed record Written(string Path, string Sha256, double Seconds, long Bytes, int Epoch, long GlobalStep, IReadOnlyList<string> Pruned) : IMocoMessage;

    /// <summary>A checkpoint could not be written; the previous valid checkpoints are untouched.</summary>
    /// <param name="Path">The file that was to be written.</param>
    /// <param name="GlobalStep">The global step it would have held.</param>
    /// <param name="Error">What went wrong.</param>
    public sealed record WriteFailed(string Path, long GlobalStep, string Error) : IMocoMessage;
}
