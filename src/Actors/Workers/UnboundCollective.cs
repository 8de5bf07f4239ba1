using MoCo.Model.Collectives;
using static TorchSharp.torch;

namespace MoCo.Actors.Workers;

/// <summary>
/// The collective of a worker that has built its model but not yet joined a generation: it knows its rank and the
/// world size (for the data layout), and any collective call is a programming error that names the cause.
/// </summary>
internal sealed class UnboundCollective(int rank, int worldSize) : ICollective
{
    public int Rank => rank;

    public int WorldSize => worldSize;

    public void AllReduceSum(Tensor tensor) => throw NotBound("all-reduce");

    public Tensor AllGather(Tensor local, IReadOnlyList<long> counts) => throw NotBound("all-gather");

    public void Broadcast(Tensor tensor, int root) => throw NotBound("broadcast");

    public void Dispose()
    {
    }

    private CollectiveException NotBound(string operation) =>
        new($"{operation} on rank {rank}: the worker has not joined a generation yet (the director must send JoinGeneration first)");
}
