using static TorchSharp.torch;

namespace MoCo.Model.Collectives;

/// <summary>
/// The data plane as the training step sees it: collectives over the workers of one generation. Tensors
/// never travel in actor messages; they travel here. Implementations: <see cref="SingleProcessCollective"/>
/// (world of one), an in-process group of threads, a TCP ring, NCCL. Every call is collective: all ranks
/// make the same calls in the same order. A failure (dead peer, timeout, abort) throws
/// <see cref="CollectiveException"/>, and the step that called it leaves no trace.
/// </summary>
public interface ICollective : IDisposable
{
    int Rank { get; }

    int WorldSize { get; }

    /// <summary>Sums <paramref name="tensor"/> over all ranks, in place. Contiguous CPU tensor.</summary>
    void AllReduceSum(Tensor tensor);

    /// <summary>
    /// Concatenates every rank's <paramref name="local"/> along dim 0, in rank order; rank r contributes
    /// <paramref name="counts"/>[r] rows (shares may differ by one BN group). Returns a new tensor.
    /// </summary>
    Tensor AllGather(Tensor local, IReadOnlyList<long> counts);

    /// <summary>Overwrites <paramref name="tensor"/> on every rank with rank <paramref name="root"/>'s.</summary>
    void Broadcast(Tensor tensor, int root);
}

/// <summary>A collective operation failed: a peer died, timed out, or the communicator was aborted.</summary>
public sealed class CollectiveException : Exception
{
    public CollectiveException(string message, Exception? inner = null)
        : base(message, inner)
    {
    }
}
