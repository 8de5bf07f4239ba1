namespace MoCo.Actors.Collectives.Nccl;

/// <summary><c>ncclDataType_t</c> of nccl.h (NCCL 2.21.5), the element types a collective moves.</summary>
internal enum NcclDataType
{
    /// <summary><c>ncclInt8</c> (also <c>ncclChar</c>).</summary>
    Int8 = 0,

    /// <summary><c>ncclUint8</c>.</summary>
    Uint8 = 1,

    /// <summary><c>ncclInt32</c> (also <c>ncclInt</c>).</summary>
    Int32 = 2,

    /// <summary><c>ncclUint32</c>.</summary>
    Uint32 = 3,

    /// <summary><c>ncclInt64</c>.</summary>
    Int64 = 4,

    /// <summary><c>ncclUint64</c>.</summary>
    Uint64 = 5,

    /// <summary><c>ncclFloat16</c> (also <c>ncclHalf</c>).</summary>
    Float16 = 6,

    /// <summary><c>ncclFloat32</c> (also <c>ncclFloat</c>).</summary>
    Float32 = 7,

    /// <summary><c>ncclFloat64</c> (also <c>ncclDouble</c>).</summary>
    Float64 = 8,

    /// <summary><c>ncclBfloat16</c> (NCCL built against CUDA 11 or later).</summary>
    Bfloat16 = 9,
}
