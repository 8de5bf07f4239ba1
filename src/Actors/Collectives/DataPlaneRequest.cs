namespace MoCo.Actors.Collectives;

/// <summary>The data plane a person asked for: <c>moco.data-plane.backend = auto | tcp | nccl</c>.</summary>
public enum DataPlaneRequest
{
    /// <summary><c>auto</c>: NCCL where CUDA devices and libnccl are both present, the TCP ring otherwise.</summary>
    Auto,

    /// <summary><c>tcp</c>: the TCP ring, whatever the host has.</summary>
    Tcp,

    /// <summary><c>nccl</c>: NCCL, or a start-up error naming what is missing.</summary>
    Nccl,
}
