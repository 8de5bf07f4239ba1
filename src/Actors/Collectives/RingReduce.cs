using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using TorchSharp;

namespace MoCo.Actors.Collectives;

/// <summary>
/// The element-wise sums of the all-reduce, in the tensor's own dtype (as torch adds on the CPU: half and bfloat16
/// widened to float, added, rounded to nearest even), vectorised where <see cref="TensorPrimitives"/> can.
/// </summary>
internal static unsafe class RingReduce
{
    /// <summary>The dtypes <see cref="TcpRingCollective.AllReduceSum"/> can sum.</summary>
    public static readonly IReadOnlyList<torch.ScalarType> Supported =
    [
        torch.ScalarType.Float32, torch.ScalarType.Float64, torch.ScalarType.BFloat16, torch.ScalarType.Float16,
        torch.ScalarType.Int32, torch.ScalarType.Int64,
    ];

    /// <summary>Throws unless <paramref name="dtype"/> can be summed.</summary>
    /// <exception cref="NotSupportedException">Names the dtype and the supported ones.</exception>
    public static void EnsureSupported(torch.ScalarType dtype)
    {
        if (!Supported.Contains(dtype))
        {
            throw new NotSupportedException(
                $"the TCP ring cannot all-reduce {dtype} tensors; it sums {string.Join(", ", Supported)}");
        }
    }

    /// <summary>Adds the <paramref name="bytes"/> bytes at <paramref name="source"/> into those at <paramref name="destination"/>.</summary>
    public static void Add(torch.ScalarType dtype, byte* destination, byte* source, int bytes)
    {
        switch (dtype)
        {
            case torch.ScalarType.Float32:
                AddVectorised<float>(destination, source, bytes);
                break;
            case torch.ScalarType.Float64:
                AddVectorised<double>(destination, source, bytes);
                break;
            case torch.ScalarType.Float16:
                AddVectorised<Half>(destination, source, bytes);
                break;
            case torch.ScalarType.Int32:
                AddVectorised<int>(destination, source, bytes);
                break;
            case torch.ScalarType.Int64:
                AddVectorised<long>(destination, source, bytes);
                break;
            case torch.ScalarType.BFloat16:
                AddBFloat16((ushort*)destination, (ushort*)source, bytes / sizeof(ushort));
                break;
            default:
                EnsureSupported(dtype);
                break;
        }
    }

    private static void AddVectorised<T>(byte* destination, byte* source, int bytes)
        where T : unmanaged, System.Numerics.IAdditionOperators<T, T, T>, System.Numerics.IAdditiveIdentity<T, T>
    {
        int count = bytes / sizeof(T);
        var target = new Span<T>(destination, count);
        TensorPrimitives.Add(target, new ReadOnlySpan<T>(source, count), target);
    }

    private static void AddBFloat16(ushort* destination, ushort* source, int count)
    {
        for (int i = 0; i < count; i++)
        {
            float sum = Widen(destination[i]) + Widen(source[i]);
            destination[i] = RoundToBFloat16(sum);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Widen(ushort bits) => BitConverter.Int32BitsToSingle(bits << 16);

    /// <summary>Round to nearest even, as c10::BFloat16 does; any NaN becomes the canonical quiet NaN.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ushort RoundToBFloat16(float value)
    {
        if (float.IsNaN(value))
        {
            return 0x7FC0;
        }
        uint bits = BitConverter.SingleToUInt32Bits(value);
        bits += 0x7FFFu + ((bits >> 16) & 1u);
        return (ushort)(bits >> 16);
    }
}
