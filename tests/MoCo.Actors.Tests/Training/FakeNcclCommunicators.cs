using System.Security.Cryptography;
using MoCo.Actors.Collectives;
using MoCo.Actors.Collectives.Nccl;
using MoCo.Model.Collectives;
using static TorchSharp.torch;

namespace MoCo.Actors.Tests.Training;

/// <summary>
/// NCCL's rendezvous without libnccl: <see cref="CreateUniqueId"/> draws 128 random bytes, and the ranks that join with
/// the same id share one in-process group (a rank that got another id would wait alone and time out, as with NCCL).
/// Records every id made and every join, for the specs of the worker and director protocol.
/// </summary>
internal sealed class FakeNcclCommunicators(TimeSpan timeout) : INcclCommunicators, IDisposable
{
    private readonly object _gate = new();
    private readonly Dictionary<NcclUniqueId, InProcessGroup> _groups = [];
    private readonly List<NcclUniqueId> _created = [];
    private readonly List<Joining> _joins = [];

    /// <summary>One call of <see cref="Join"/>.</summary>
    public sealed record Joining(int Rank, int WorldSize, NcclUniqueId UniqueId, int CudaDevice);

    /// <summary>The ids made, in order.</summary>
    public IReadOnlyList<NcclUniqueId> Created
    {
        get
        {
            lock (_gate)
            {
                return _created.ToList();
            }
        }
    }

    /// <summary>The joins, in order.</summary>
    public IReadOnlyList<Joining> Joins
    {
        get
        {
            lock (_gate)
            {
                return _joins.ToList();
            }
        }
    }

    public NcclUniqueId CreateUniqueId()
    {
        var id = NcclUniqueId.FromBytes(RandomNumberGenerator.GetBytes(NcclUniqueId.Bytes));
        lock (_gate)
        {
            _created.Add(id);
        }

        return id;
    }

    public IAbortableCollective Join(int rank, int worldSize, NcclUniqueId uniqueId, int cudaDevice, TimeSpan _)
    {
        lock (_gate)
        {
            _joins.Add(new Joining(rank, worldSize, uniqueId, cudaDevice));
            if (!_groups.TryGetValue(uniqueId, out var group))
            {
                group = new InProcessGroup(worldSize, timeout);
                _groups[uniqueId] = group;
            }

            return new Member(group, group[rank]);
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            foreach (var group in _groups.Values)
            {
                group.Dispose();
            }
        }
    }

    private sealed class Member(InProcessGroup group, ICollective inner) : IAbortableCollective
    {
        public int Rank => inner.Rank;

        public int WorldSize => inner.WorldSize;

        public void AllReduceSum(Tensor tensor) => inner.AllReduceSum(tensor);

        public Tensor AllGather(Tensor local, IReadOnlyList<long> counts) => inner.AllGather(local, counts);

        public void Broadcast(Tensor tensor, int root) => inner.Broadcast(tensor, root);

        public void Abort() => group.Abort();

        public void Dispose()
        {
        }
    }
}
