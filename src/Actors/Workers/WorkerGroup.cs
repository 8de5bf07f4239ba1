using MoCo.Model.Collectives;

namespace MoCo.Actors.Workers;

/// <summary>
/// The in-process data plane of a run's workers, shared by reference between the director that creates it and the
/// workers that use it (a local object, never a message). Each generation gets a fresh <see cref="InProcessGroup"/>:
/// after a failure the old one is aborted (no rank waits for a dead peer) and the next generation starts clean.
/// Remembers which rank failed first in the current generation, so that the failure a person sees is the cause and
/// not the peers it brought down.
/// </summary>
public sealed class WorkerGroup : IDisposable
{
    private readonly TimeSpan _timeout;
    private readonly object _gate = new();
    private InProcessGroup _group;
    private int _generation;
    private int _firstFailedRank = -1;

    /// <summary>Creates the group of generation <paramref name="generation"/> with <paramref name="worldSize"/> ranks.</summary>
    /// <param name="worldSize">The number of workers.</param>
    /// <param name="timeout">How long a collective waits for a peer before the group is declared broken.</param>
    /// <param name="generation">The generation the first group belongs to.</param>
    public WorkerGroup(int worldSize, TimeSpan timeout, int generation = 0)
    {
        _timeout = timeout;
        _group = new InProcessGroup(worldSize, timeout);
        _generation = generation;
    }

    /// <summary>The number of ranks of the current generation.</summary>
    public int WorldSize
    {
        get
        {
            lock (_gate)
            {
                return _group.WorldSize;
            }
        }
    }

    /// <summary>The current generation.</summary>
    public int Generation => Volatile.Read(ref _generation);

    /// <summary>The first rank that reported a failure in the current generation, or -1.</summary>
    public int FirstFailedRank => Volatile.Read(ref _firstFailedRank);

    /// <summary>Rank <paramref name="rank"/>'s collective in the current generation.</summary>
    /// <param name="rank">The rank.</param>
    public ICollective this[int rank]
    {
        get
        {
            lock (_gate)
            {
                return _group[rank];
            }
        }
    }

    /// <summary>Rank <paramref name="rank"/>'s collective in generation <paramref name="generation"/>, which must be the current one.</summary>
    /// <param name="rank">The rank.</param>
    /// <param name="generation">The generation the caller was told to join.</param>
    /// <exception cref="CollectiveException">The group has moved on to another generation: the message was stale.</exception>
    public ICollective Member(int rank, int generation)
    {
        lock (_gate)
        {
            if (generation != _generation)
            {
                throw new CollectiveException($"rank {rank} asked for generation {generation}, the group is at generation {_generation}");
            }

            return _group[rank];
        }
    }

    /// <summary>
    /// Aborts the current group and starts generation <paramref name="generation"/> with <paramref name="worldSize"/>
    /// ranks. Call only while no worker is inside a collective of the old one (they have all replied).
    /// </summary>
    /// <param name="generation">The new generation; greater than the current one.</param>
    /// <param name="worldSize">Its number of ranks.</param>
    public void StartGeneration(int generation, int worldSize)
    {
        lock (_gate)
        {
            if (generation <= _generation)
            {
                throw new ArgumentOutOfRangeException(nameof(generation), generation, $"generations only grow; the group is at {_generation}");
            }

            _group.Abort();
            _group.Dispose();
            _group = new InProcessGroup(worldSize, _timeout);
            Volatile.Write(ref _generation, generation);
            Volatile.Write(ref _firstFailedRank, -1);
        }
    }

    /// <summary>Records that <paramref name="rank"/> failed and aborts the group so that no peer waits for it.</summary>
    /// <param name="rank">The failing rank.</param>
    /// <returns>Whether this was the generation's first failure.</returns>
    public bool ReportFailure(int rank)
    {
        lock (_gate)
        {
            bool first = _firstFailedRank == -1;
            if (first)
            {
                _firstFailedRank = rank;
            }

            _group.Abort();
            return first;
        }
    }

    /// <summary>Fails every pending and future collective of the current generation.</summary>
    public void Abort()
    {
        lock (_gate)
        {
            _group.Abort();
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        lock (_gate)
        {
            _group.Dispose();
        }
    }
}
