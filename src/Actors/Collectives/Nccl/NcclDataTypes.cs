using static TorchSharp.torch;

namespace MoCo.Actors.Collectives.Nccl;

/// <summary>Which <c>ncclDataType_t</c> moves a tensor of a given TorchSharp dtype.</summary>
internal static class NcclDataTypes
{
    /// <summary>The dtypes the data plane moves: parameters and gradients (float32, bfloat16, float16, float64), indices and counters (int64), bytes (uint8).</summary>
    public static IReadOnlyList<ScalarType> Supported { get; } =
    [
        ScalarType.Float32, ScalarType.Float64, ScalarType.BFloat16, ScalarType.Float16, ScalarType.Int64, ScalarType.Byte,
    ];

    /// <summary>The NCCL type of <paramref name="dtype"/>.</summary>
    /// <param name="dtype">A tensor's dtype.</param>
    /// <exception cref="ArgumentException"><paramref name="dtype"/> is not one of <see cref="Supported"/>.</exception>
    public static NcclDataType For(ScalarType dtype)
    {
        return dtype switch
        {
            ScalarType.Float32 => NcclDataType.Float32,
            ScalarType.Float64 => NcclDataType.Float64,
            ScalarType.BFloat16 => NcclDataType.Bfloat16,
            ScalarType.Float16 => NcclDataType.Float16,
            ScalarType.Int64 => NcclDataType.Int64,
            ScalarType.Byte => NcclDataType.Uint8,
            _ => throw new ArgumentException(
                $"the NCCL data plane moves {string.Join(", ", Supported)} tensors; got {dtype}", nameof(dtype)),
        };
    }

    /// <summary>Bytes per element of <paramref name="type"/>, as NCCL counts them.</summary>
    /// <param name="type">An NCCL type.</param>
    public static int SizeOf(NcclDataType type)
    {
        return type switch
        {
            NcclDataType.Int8 or NcclDataType.Uint8 => 1,
            NcclDataType.Float16 or NcclDataType.Bfloat16 => 2,
            NcclDataType.Int32 or NcclDataType.Uint32 or NcclDataType.Float32 => 4,
            NcclDataType.Int64 or NcclDataType.Uint64 or NcclDataType.Float64 => 8,
            _ => throw new ArgumentOutOfRangeException(nameof(type), type, "not an ncclDataType_t"),
        };
    }
}
