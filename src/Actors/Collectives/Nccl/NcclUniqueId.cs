using System.Runtime.InteropServices;
using MoCo.Model.Collectives;

namespace MoCo.Actors.Collectives.Nccl;

/// <summary>
/// <c>ncclUniqueId</c>: the 128 opaque bytes (<c>NCCL_UNIQUE_ID_BYTES</c>) that name one communicator. Rank 0 creates it
/// with <see cref="Create"/>; it then travels to every rank of the generation (<c>Worker.Prepared</c>, then
/// <c>Worker.JoinGeneration</c>), and each
/// rank passes it to <see cref="NcclCollective"/>. It holds rank 0's bootstrap address, so it is not printed.
/// </summary>
/// <remarks>A blittable struct of exactly 128 bytes: <c>ncclCommInitRankConfig</c> takes it by value.</remarks>
[StructLayout(LayoutKind.Sequential, Size = Bytes)]
public unsafe struct NcclUniqueId : IEquatable<NcclUniqueId>
{
    /// <summary><c>NCCL_UNIQUE_ID_BYTES</c>.</summary>
    public const int Bytes = 128;

    private fixed byte _internal[Bytes];

    /// <summary>A new id from <c>ncclGetUniqueId</c> (on the rank that will be rank 0; it opens that rank's bootstrap socket).</summary>
    /// <exception cref="CollectiveException">libnccl is absent, or <c>ncclGetUniqueId</c> failed.</exception>
    public static NcclUniqueId Create()
    {
        var library = NativeLibraries.Nccl;
        if (!library.IsLoaded)
        {
            throw new CollectiveException($"cannot create an NCCL unique id: {library.Describe("libnccl")}");
        }

        var result = NcclNative.ncclGetUniqueId(out var id);
        if (result != NcclResult.Success)
        {
            throw new CollectiveException($"ncclGetUniqueId failed: {NcclNative.Describe(result, IntPtr.Zero)}");
        }

        return id;
    }

    /// <summary>The id held by <paramref name="bytes"/>, as <see cref="ToArray"/> wrote it.</summary>
    /// <param name="bytes">Exactly <see cref="Bytes"/> bytes.</param>
    /// <exception cref="ArgumentException"><paramref name="bytes"/> is not 128 bytes long.</exception>
    public static NcclUniqueId FromBytes(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length != Bytes)
        {
            throw new ArgumentException($"an NCCL unique id is {Bytes} bytes; got {bytes.Length}", nameof(bytes));
        }

        var id = default(NcclUniqueId);
        bytes.CopyTo(new Span<byte>(id._internal, Bytes));
        return id;
    }

    /// <summary>A copy of the 128 bytes.</summary>
    public readonly byte[] ToArray()
    {
        fixed (byte* bytes = _internal)
        {
            return new ReadOnlySpan<byte>(bytes, Bytes).ToArray();
        }
    }

    /// <inheritdoc />
    public readonly bool Equals(NcclUniqueId other)
    {
        fixed (byte* mine = _internal)
        {
            return new ReadOnlySpan<byte>(mine, Bytes).SequenceEqual(new ReadOnlySpan<byte>(other._internal, Bytes));
        }
    }

    /// <inheritdoc />
    public override readonly bool Equals(object? obj)
    {
        return obj is NcclUniqueId other && Equals(other);
    }

    /// <inheritdoc />
    public override readonly int GetHashCode()
    {
        var hash = new HashCode();
        fixed (byte* bytes = _internal)
        {
            hash.AddBytes(new ReadOnlySpan<byte>(bytes, Bytes));
        }

        return hash.ToHashCode();
    }

    /// <summary>The size only: the bytes name rank 0's bootstrap endpoint and stay out of logs.</summary>
    public override readonly string ToString()
    {
        return $"NcclUniqueId({Bytes} bytes)";
    }
}
