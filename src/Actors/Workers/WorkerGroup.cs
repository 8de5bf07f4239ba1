using MoCo.Model.Collectives;

namespace MoCo.Actors.Workers;

/// <summary>
/// The in-process collective of one generation of workers, shared by reference between the director that
/// creates it and the workers that use it (a local object, never a message). Remembers which rank failed
/// first, so that the failure a person sees is the cause and not the peers it brought down.
/// </summary>
public sealed class WorkerGroup : IDisposable
{
    private readonly InProcessGroup _group;
    private int _firstFailedRank = -1;

    /// <summary>Creates a group of <paramref name="worldSize"/> ranks.</summary>
    /// <param name="worldSize">The number of workers.</param>
    /// <param name="timeout">How long a collective waits for a peer before the group is declared broken.</param>
    public WorkerGroup(int worldSize, TimeSpan timeout)
    {
        _group = new InProcessGroup(worldSize, timeout);
    }

    /// <summary>The number of ranks.</summary>
    public int WorldSize => _group.WorldSize;

    /// <summary>The first rank that reported a failure, or -1.</summary>
    public int FirstFailedRank => Volatile.Read(ref _firstFailedRank);

    /// <summary>Rank <paramref name="rank"/>'s collective.</summary>
    /// <param name="rank">The rank.</param>
    public ICollective this[int rank] => _group[rank];

    /// <summary>Records that <paramref name="rank"/> failed and aborts the group so that no peer waits for it.</summary>
    /// <param name="rank">The failing rank.</param>
    /// <returns>Whether this was the group's first failure.</returns>
    public bool ReportFailure(int rank)
    {
        bool first = Interlocked.CompareExchange(ref _firstFailedRank, rank, -1) == -1;
        _group.Abort();
        return first;
    }

    /// <summary>Fails every pending and future collective of the group.</summary>
    public void Abort()
    {
        _group.Abort();
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _group.Dispose();
    }
}
