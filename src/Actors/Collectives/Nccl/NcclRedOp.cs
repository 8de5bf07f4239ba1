namespace MoCo.Actors.Collectives.Nccl;

/// <summary><c>ncclRedOp_t</c> of nccl.h (NCCL 2.21.5): the built-in reductions.</summary>
internal enum NcclRedOp
{
    /// <summary><c>ncclSum</c>.</summary>
    Sum = 0,

    /// <summary><c>ncclProd</c>.</summary>
    Prod = 1,

    /// <summary><c>ncclMax</c>.</summary>
    Max = 2,

    /// <summary><c>ncclMin</c>.</summary>
    Min = 3,

    /// <summary><c>ncclAvg</c>.</summary>
    Avg = 4,
}
