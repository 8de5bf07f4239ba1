using MoCo.Model.Collectives;
using static TorchSharp.torch;

namespace MoCo.Actors.Collectives;

/// <summary>
/// A CPU collective (the in-process group or the TCP ring) used by workers whose tensors live on a CUDA device: each
/// call copies its input to the host, runs the inner collective there, and copies the result back to the device. The
/// fallback when the data plane is not NCCL (libnccl missing, <c>moco.data-plane.backend = tcp</c>): correct, but every
/// step's gradients cross PCIe twice. Workers of a world of one never need it.
/// </summary>
internal sealed class HostStagedCollective(ICollective inner) : ICollective
{
    public int Rank => inner.Rank;

    public int WorldSize => inner.WorldSize;

    public void AllReduceSum(Tensor tensor)
    {
        using var host = tensor.cpu().contiguous();
        inner.AllReduceSum(host);
        tensor.copy_(host);
    }

    public Tensor AllGather(Tensor local, IReadOnlyList<long> counts)
    {
        using var host = local.cpu().contiguous();
        using var gathered = inner.AllGather(host, counts);
        return gathered.to(local.device);
    }

    public void Broadcast(Tensor tensor, int root)
    {
        using var host = tensor.cpu().contiguous();
        inner.Broadcast(host, root);
        tensor.copy_(host);
    }

    /// <summary>Disposes nothing: the worker owns the inner collective.</summary>
    public void Dispose()
    {
    }
}
