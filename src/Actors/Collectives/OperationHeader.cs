using System.Buffers.Binary;

namespace MoCo.Actors.Collectives;

/// <summary>
/// The 40 bytes every rank sends its successor at the start of each collective, so that two neighbours that
/// disagree (another call, another count of calls, another size, dtype or root) fail at once with a message
/// instead of reading each other's data as the wrong thing.
/// </summary>
/// <param name="Operation">Which collective.</param>
/// <param name="Sequence">How many collectives this communicator has begun, this one included.</param>
/// <param name="Bytes">The size of the operation's buffer in bytes (the whole result for an all-gather).</param>
/// <param name="DType">The tensor's dtype, as torch numbers it.</param>
/// <param name="Root">The root of a broadcast; 0 otherwise.</param>
/// <param name="Digest">A hash of the shape information every rank must agree on (an all-gather's counts and row size).</param>
internal readonly record struct OperationHeader(RingOperation Operation, long Sequence, long Bytes, int DType, int Root, ulong Digest)
{
    /// <summary>The encoded size.</summary>
    public const int Size = 40;

    private const uint Magic = 0x4D52_4F50; // "MROP"

    /// <summary>Writes the header into <paramref name="destination"/> (at least <see cref="Size"/> bytes).</summary>
    public void Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt32BigEndian(destination, Magic);
        destination[4] = (byte)Operation;
        destination[5] = 0;
        BinaryPrimitives.WriteUInt16BigEndian(destination[6..], 0);
        BinaryPrimitives.WriteInt32BigEndian(destination[8..], DType);
        BinaryPrimitives.WriteInt32BigEndian(destination[12..], Root);
        BinaryPrimitives.WriteInt64BigEndian(destination[16..], Sequence);
        BinaryPrimitives.WriteInt64BigEndian(destination[24..], Bytes);
        BinaryPrimitives.WriteUInt64BigEndian(destination[32..], Digest);
    }

    /// <summary>Reads a header, or null when the bytes do not start with the header's magic number.</summary>
    public static OperationHeader? Read(ReadOnlySpan<byte> source)
    {
        if (BinaryPrimitives.ReadUInt32BigEndian(source) != Magic)
        {
            return null;
        }
        return new OperationHeader(
            (RingOperation)source[4],
            BinaryPrimitives.ReadInt64BigEndian(source[16..]),
            BinaryPrimitives.ReadInt64BigEndian(source[24..]),
            BinaryPrimitives.ReadInt32BigEndian(source[8..]),
            BinaryPrimitives.ReadInt32BigEndian(source[12..]),
            BinaryPrimitives.ReadUInt64BigEndian(source[32..]));
    }

    /// <summary>A 64-bit FNV-1a hash of <paramref name="values"/>.</summary>
    public static ulong DigestOf(IEnumerable<long> values)
    {
        ulong hash = 14695981039346656037UL;
        foreach (long value in values)
        {
            for (int i = 0; i < 8; i++)
            {
                hash ^= (byte)(value >> (8 * i));
                hash *= 1099511628211UL;
            }
        }
        return hash;
    }

    /// <summary>"all-reduce", "all-gather", "broadcast".</summary>
    public string Name => Operation switch
    {
        RingOperation.AllReduce => "all-reduce",
        RingOperation.AllGather => "all-gather",
        RingOperation.Broadcast => "broadcast",
        _ => $"operation {(byte)Operation}",
    };

    /// <summary>"all-reduce #12 of 4096 bytes (Float32)", for messages.</summary>
    public override string ToString()
    {
        string root = Operation == RingOperation.Broadcast ? $" from rank {Root}" : "";
        return $"{Name}{root} #{Sequence} of {Bytes} bytes ({(TorchSharp.torch.ScalarType)DType})";
    }
}
