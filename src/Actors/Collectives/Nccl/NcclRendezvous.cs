namespace MoCo.Actors.Collectives.Nccl;

/// <summary>
/// The NCCL unique id of one generation with its generation number, as a standalone message. The workers do not use
/// it: their id travels as bytes in <c>Worker.Prepared</c> (rank 0 to the director) and <c>Worker.JoinGeneration</c>
/// (the director to every rank), whose generation the director already checks. Not persisted either way: an id names
/// sockets of one process's lifetime, so a replayed one would be stale.
/// </summary>
public sealed record NcclRendezvous : IWireMessage
{
    private readonly byte[] _uniqueId;

    /// <summary>The rendezvous of <paramref name="generation"/>.</summary>
    /// <param name="generation">The generation whose communicator the id names.</param>
    /// <param name="uniqueId">The id.</param>
    public NcclRendezvous(int generation, NcclUniqueId uniqueId)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(generation);
        Generation = generation;
        _uniqueId = uniqueId.ToArray();
    }

    /// <summary>The generation whose communicator the id names (the first is 1).</summary>
    public int Generation { get; }

    /// <summary>The id, as <c>ncclCommInitRankConfig</c> takes it.</summary>
    public NcclUniqueId UniqueId => NcclUniqueId.FromBytes(_uniqueId);

    /// <summary>Value equality, comparing the id byte by byte.</summary>
    /// <param name="other">The other rendezvous.</param>
    public bool Equals(NcclRendezvous? other)
    {
        return other is not null && Generation == other.Generation && _uniqueId.AsSpan().SequenceEqual(other._uniqueId);
    }

    /// <inheritdoc />
    public override int GetHashCode()
    {
        return HashCode.Combine(Generation, UniqueId);
    }
}
