namespace MoCo.Actors.Collectives.Nccl;

/// <summary>
/// How workers make NCCL communicators: <see cref="NativeNcclCommunicators"/> (libnccl) in every process; a test double
/// in the tests of the worker and director protocol, which cannot load libnccl on a machine without a GPU.
/// </summary>
public interface INcclCommunicators
{
    /// <summary>A new unique id for one generation's communicator; called by the worker that is rank 0 of it.</summary>
    NcclUniqueId CreateUniqueId();

    /// <summary>Joins the communicator named by <paramref name="uniqueId"/> as <paramref name="rank"/> of <paramref name="worldSize"/>.</summary>
    /// <param name="rank">This worker's rank in the generation.</param>
    /// <param name="worldSize">The generation's number of workers.</param>
    /// <param name="uniqueId">Rank 0's id, as the director forwarded it.</param>
    /// <param name="cudaDevice">The CUDA device of this worker's slot.</param>
    /// <param name="timeout">How long init and each collective may take before the communicator is aborted.</param>
    IAbortableCollective Join(int rank, int worldSize, NcclUniqueId uniqueId, int cudaDevice, TimeSpan timeout);
}

/// <summary>The real communicators: <see cref="NcclUniqueId.Create"/> and <see cref="NcclCollective"/> over libnccl.</summary>
public sealed class NativeNcclCommunicators : INcclCommunicators
{
    /// <summary>The instance.</summary>
    public static readonly NativeNcclCommunicators Instance = new();

    private NativeNcclCommunicators()
    {
    }

    /// <inheritdoc />
    public NcclUniqueId CreateUniqueId() => NcclUniqueId.Create();

    /// <inheritdoc />
    public IAbortableCollective Join(int rank, int worldSize, NcclUniqueId uniqueId, int cudaDevice, TimeSpan timeout) =>
        new NcclCollective(rank, worldSize, uniqueId, cudaDevice, timeout);
}
