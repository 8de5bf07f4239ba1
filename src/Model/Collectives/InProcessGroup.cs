using static TorchSharp.torch;

namespace MoCo.Model.Collectives;

/// <summary>
/// A group of workers in one process, each on its own thread, exchanging tensors through shared memory.
/// <see cref="Member"/>(r) is rank r's <see cref="ICollective"/>. Reductions sum in rank order, so every rank
/// gets bit-identical results. A rank that does not arrive within the timeout, or <see cref="Abort"/>, turns
/// every pending and later call into a <see cref="CollectiveException"/> instead of a hang.
/// </summary>
public sealed class InProcessGroup : IDisposable
{
    private readonly Barrier _barrier;
    private readonly Tensor?[] _slots;
    private readonly TimeSpan _timeout;
    private readonly CancellationTokenSource _abort = new();
    private readonly Member[] _members;

    public InProcessGroup(int worldSize, TimeSpan timeout)
    {
        if (worldSize < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(worldSize), worldSize, "a group needs at least one rank");
        }
        WorldSize = worldSize;
        _timeout = timeout;
        _barrier = new Barrier(worldSize);
        _slots = new Tensor?[worldSize];
        _members = Enumerable.Range(0, worldSize).Select(r => new Member(this, r)).ToArray();
    }

    public int WorldSize { get; }

    public ICollective this[int rank] => _members[rank];

    /// <summary>Fails every pending and future collective of the group (a member died).</summary>
    public void Abort() => _abort.Cancel();

    public void Dispose()
    {
        _abort.Cancel();
        _barrier.Dispose();
        _abort.Dispose();
    }

    private void Sync(int rank, string operation)
    {
        bool arrived;
        try
        {
            arrived = _barrier.SignalAndWait(_timeout, _abort.Token);
        }
        catch (OperationCanceledException)
        {
            throw new CollectiveException($"{operation} on rank {rank}: the group was aborted");
        }
        catch (BarrierPostPhaseException e)
        {
            throw new CollectiveException($"{operation} on rank {rank} failed", e);
        }
        if (!arrived)
        {
            _abort.Cancel(); // the group is broken: release everyone
            throw new CollectiveException($"{operation} on rank {rank}: a peer did not arrive within {_timeout.TotalSeconds:F0} s");
        }
    }

    private sealed class Member(InProcessGroup group, int rank) : ICollective
    {
        public int Rank => rank;

        public int WorldSize => group.WorldSize;

        public void AllReduceSum(Tensor tensor)
        {
            group._slots[rank] = tensor;
            group.Sync(rank, "all-reduce");
            using (var scope = NewDisposeScope())
            {
                var sum = group._slots[0]!.clone();
                for (int r = 1; r < group.WorldSize; r++)
                {
                    sum.add_(group._slots[r]!, HeldScalar.One);
                }
                group.Sync(rank, "all-reduce");  // everyone has read every slot before anyone writes
                tensor.copy_(sum);
            }
        }

        public Tensor AllGather(Tensor local, IReadOnlyList<long> counts)
        {
            if (counts.Count != group.WorldSize || counts[rank] != local.shape[0])
            {
                throw new ArgumentException($"rank {rank} gathers {local.shape[0]} rows but counts say [{string.Join(", ", counts)}]");
            }
            group._slots[rank] = local;
            group.Sync(rank, "all-gather");
            var result = cat(group._slots.Select(t => t!).ToList(), 0);
            group.Sync(rank, "all-gather");
            return result;
        }

        public void Broadcast(Tensor tensor, int root)
        {
            if (rank == root)
            {
                group._slots[root] = tensor;
            }
            group.Sync(rank, "broadcast");
            if (rank != root)
            {
                tensor.copy_(group._slots[root]!);
            }
            group.Sync(rank, "broadcast");
        }

        public void Dispose()
        {
        }
    }
}
