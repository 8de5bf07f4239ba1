namespace MoCo.Actors.Collectives;

/// <summary>The data plane a run uses, once chosen by <see cref="DataPlaneSelector"/>.</summary>
public enum DataPlaneKind
{
    /// <summary>The CPU plane: a TCP ring (reduce-scatter + all-gather) between the workers.</summary>
    Tcp,

    /// <summary>The GPU plane: NCCL over CUDA devices (<see cref="Nccl.NcclCollective"/>).</summary>
    Nccl,
}
