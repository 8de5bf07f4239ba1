using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;

namespace MoCo.Model.Checkpoints;

/// <summary>
/// The MoCo.Actors checkpoint container. Layout (all integers little-endian):
/// <code>
/// offset  size  field
///      0     8  magic "MOCOCKPT"
///      8     4  format version (uint32, currently 1)
///     12     4  header length H (uint32)
///     16     8  total file length L (int64)
///     24     8  prefix check: the first 8 bytes of SHA-256 over bytes 0..23
///     32     H  header: UTF-8 JSON, the <see cref="CheckpointHeader"/> fields plus the tensor index
///   32+H     D  data: each tensor's contiguous little-endian bytes, at the offsets of the index
///   L-32    32  SHA-256 over bytes 0..L-33
/// </code>
/// The prefix check lets a reader tell "truncated" (intact prefix, file shorter than L) from "corrupt"
/// (any flipped byte, the magic and version included) before it trusts any other field;
/// the SHA-256 trailer then covers everything. Files are written atomically (see <see cref="Write"/>).
/// </summary>
public static class CheckpointFile
{
    /// <summary>The format version this build writes and reads.</summary>
    public const int FormatVersion = 1;

    /// <summary>The reason given for a file whose bytes do not match their checksum.</summary>
    public const string ChecksumMismatch = "checksum mismatch (file is corrupt)";

    /// <summary>The reason given for a file that is not in this format at all.</summary>
    public const string NotACheckpoint = "not a MoCo.Actors checkpoint";

    private const int PrefixLength = 32;

    /// <summary>Bytes of the SHA-256 trailer that ends every file.</summary>
    internal const int TrailerLength = 32;
    private const int CopyBufferSize = 1 << 20;

    private static ReadOnlySpan<byte> Magic => "MOCOCKPT"u8;

    private static readonly JsonSerializerOptions s_json = new() { WriteIndented = false };

    /// <summary>
    /// Writes <paramref name="tensors"/> (CPU tensors; see <see cref="CheckpointTensorInfo.DType"/> for the
    /// element types) under <paramref name="header"/> to <paramref name="path"/>: to a temporary file
    /// <c>path.tmp-&lt;guid&gt;</c> first, flushed to disk, renamed over <paramref name="path"/>, and the
    /// directory fsynced where the OS allows. If anything fails midway, <paramref name="path"/> keeps its
    /// previous content and the temporary file is removed. The list is enumerated twice (index, then data)
    /// and must not change in between. Inputs are not disposed.
    /// </summary>
    /// <returns>The SHA-256 of the file (its trailer), as lower-case hex.</returns>
    public static string Write(string path, CheckpointHeader header, IReadOnlyList<KeyValuePair<string, Tensor>> tensors)
    {
        ArgumentNullException.ThrowIfNull(path);
        return Encode(header, tensors).WriteTo(path);
    }

    /// <summary>
    /// Copies <paramref name="tensors"/> under <paramref name="header"/> into memory: the file's bytes up to its
    /// SHA-256 trailer. This is the only part of a checkpoint that reads the tensors, so a trainer can take it
    /// between two steps and leave hashing and writing (<see cref="CheckpointImage.WriteTo"/>) to another thread.
    /// </summary>
    /// <param name="header">The header.</param>
    /// <param name="tensors">CPU tensors by unique name; not disposed.</param>
    /// <returns>The image, detached from every tensor.</returns>
    public static CheckpointImage Encode(CheckpointHeader header, IReadOnlyList<KeyValuePair<string, Tensor>> tensors)
    {
        ArgumentNullException.ThrowIfNull(header);
        ArgumentNullException.ThrowIfNull(tensors);
        RequireLittleEndian();

        var index = new List<CheckpointTensorInfo>(tensors.Count);
        var names = new HashSet<string>(StringComparer.Ordinal);
        long dataLength = 0;
        foreach (var (name, tensor) in tensors)
        {
            if (!names.Add(name))
            {
                throw new ArgumentException($"Tensor name '{name}' appears twice.", nameof(tensors));
            }
            if (tensor.device_type != DeviceType.CPU)
            {
                throw new ArgumentException($"Tensor '{name}' is on {tensor.device}; checkpoints are written from CPU tensors.", nameof(tensors));
            }
            string dtype = CheckpointDTypes.Name(tensor.dtype);
            long length = tensor.NumberOfElements * tensor.ElementSize;
            index.Add(new CheckpointTensorInfo(name, dtype, tensor.shape, dataLength, length));
            dataLength += length;
        }

        byte[] json = JsonSerializer.SerializeToUtf8Bytes(HeaderDocument.From(header, index), s_json);
        long totalLength = PrefixLength + json.Length + dataLength + TrailerLength;
        long bodyLength = totalLength - TrailerLength;
        if (bodyLength > Array.MaxLength)
        {
            throw new NotSupportedException($"A checkpoint of {bodyLength} bytes exceeds the {Array.MaxLength} bytes one in-memory image can hold.");
        }

        var body = GC.AllocateUninitializedArray<byte>((int)bodyLength);
        using (var stream = new MemoryStream(body, writable: true))
        {
            stream.Write(BuildPrefix(FormatVersion, (uint)json.Length, totalLength));
            stream.Write(json);
            int i = 0;
            foreach (var (name, tensor) in tensors)
            {
                if (i >= index.Count || index[i].Name != name
                    || index[i].Length != tensor.NumberOfElements * tensor.ElementSize
                    || index[i].DType != CheckpointDTypes.Name(tensor.dtype))
                {
                    throw new InvalidOperationException("The tensor list changed while the checkpoint was being encoded.");
                }
                WriteTensorBytes(stream, tensor);
                i++;
            }
            if (i != index.Count || stream.Position != bodyLength)
            {
                throw new InvalidOperationException("The tensor list changed while the checkpoint was being encoded.");
            }
        }

        return new CheckpointImage(header, body);
    }

    /// <summary>
    /// Verifies <paramref name="path"/> (magic, version, length, SHA-256, and the run when
    /// <paramref name="expectedRunId"/> is given) and loads its tensors onto the CPU.
    /// </summary>
    /// <exception cref="CheckpointRejectedException">The file fails any check; the message says which.</exception>
    public static Checkpoint Read(string path, string? expectedRunId = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        using var file = OpenForRead(path);
        var (info, dataStart) = VerifyOpen(file, path, expectedRunId);
        var tensors = new List<KeyValuePair<string, Tensor>>(info.Tensors.Count);
        try
        {
            foreach (var entry in info.Tensors)
            {
                CheckpointDTypes.TryParse(entry.DType, out var type, out _);
                var tensor = torch.empty(entry.Shape, type, device: CPU);
                tensors.Add(new KeyValuePair<string, Tensor>(entry.Name, tensor));
                if (entry.Length > 0)
                {
                    file.Seek(dataStart + entry.Offset, SeekOrigin.Begin);
                    tensor.ReadBytesFromStream(file, CopyBufferSize);
                }
            }
        }
        catch
        {
            foreach (var (_, tensor) in tensors)
            {
                tensor.Dispose();
            }
            throw;
        }
        return new Checkpoint(info, tensors);
    }

    /// <summary>
    /// Verifies <paramref name="path"/> exactly as <see cref="Read"/> does (the whole file is hashed)
    /// without loading its tensors.
    /// </summary>
    /// <exception cref="CheckpointRejectedException">The file fails any check; the message says which.</exception>
    public static CheckpointInfo Verify(string path, string? expectedRunId = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        using var file = OpenForRead(path);
        return VerifyOpen(file, path, expectedRunId).Info;
    }

    private static FileStream OpenForRead(string path)
    {
        RequireLittleEndian();
        return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, CopyBufferSize);
    }

    private static (CheckpointInfo Info, long DataStart) VerifyOpen(FileStream file, string path, string? expectedRunId)
    {
        long actualLength = file.Length;
        Span<byte> prefix = stackalloc byte[PrefixLength];
        int got = ReadUpTo(file, prefix);
        if (got < PrefixLength)
        {
            int n = Math.Min(got, Magic.Length);
            bool looksLikeOurs = got > 0 && prefix[..n].SequenceEqual(Magic[..n]);
            throw new CheckpointRejectedException(path, got == 0
                ? "truncated (the file is empty)"
                : looksLikeOurs ? $"truncated ({actualLength} bytes, shorter than the {PrefixLength}-byte prefix)" : NotACheckpoint);
        }

        bool magicOk = prefix[..Magic.Length].SequenceEqual(Magic);
        bool prefixOk = PrefixCheckMatches(prefix);
        if (!magicOk)
        {
            // A damaged magic on an otherwise intact prefix is corruption, not a foreign file.
            throw new CheckpointRejectedException(path, prefixOk ? ChecksumMismatch : NotACheckpoint);
        }
        if (!prefixOk)
        {
            throw new CheckpointRejectedException(path, ChecksumMismatch);
        }

        uint version = BinaryPrimitives.ReadUInt32LittleEndian(prefix[8..]);
        if (version != FormatVersion)
        {
            throw new CheckpointRejectedException(path, $"unsupported format version {version} (this build reads version {FormatVersion})");
        }
        uint headerLength = BinaryPrimitives.ReadUInt32LittleEndian(prefix[12..]);
        long declaredLength = BinaryPrimitives.ReadInt64LittleEndian(prefix[16..]);
        if (actualLength < declaredLength)
        {
            throw new CheckpointRejectedException(path, $"truncated ({actualLength} of {declaredLength} bytes)");
        }
        if (actualLength > declaredLength)
        {
            throw new CheckpointRejectedException(path, $"{ChecksumMismatch}: {actualLength - declaredLength} unexpected bytes after the end");
        }
        long dataStart = PrefixLength + (long)headerLength;
        if (dataStart + TrailerLength > declaredLength)
        {
            throw new CheckpointRejectedException(path, $"{ChecksumMismatch}: header length {headerLength} exceeds the file");
        }

        string sha256 = HashAndCompareTrailer(file, path, declaredLength - TrailerLength);

        // From here on the bytes are the ones the writer hashed.
        file.Seek(PrefixLength, SeekOrigin.Begin);
        var json = new byte[headerLength];
        file.ReadExactly(json);
        HeaderDocument document;
        try
        {
            document = JsonSerializer.Deserialize<HeaderDocument>(json, s_json)
                ?? throw new JsonException("the header is null");
        }
        catch (JsonException e)
        {
            throw new CheckpointRejectedException(path, $"malformed header: {e.Message}");
        }
        var header = document.ToHeader();
        if (expectedRunId is not null && header.RunId != expectedRunId)
        {
            throw new CheckpointRejectedException(path, $"belongs to run {header.RunId}, this run is {expectedRunId}");
        }
        ValidateIndex(path, document.Tensors ?? [], declaredLength - TrailerLength - dataStart);
        return (new CheckpointInfo(path, header, sha256, document.Tensors ?? []), dataStart);
    }

    private static void ValidateIndex(string path, IReadOnlyList<CheckpointTensorInfo> index, long dataLength)
    {
        long expectedOffset = 0;
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var entry in index)
        {
            string? problem = null;
            if (entry.Name is null || !names.Add(entry.Name))
            {
                problem = $"tensor name '{entry.Name}' is missing or repeated";
            }
            else if (entry.DType is null || !CheckpointDTypes.TryParse(entry.DType, out _, out int elementSize))
            {
                problem = $"tensor '{entry.Name}' has unknown dtype '{entry.DType}'";
            }
            else if (entry.Shape is null || entry.Shape.Any(d => d < 0)
                     || entry.Length != entry.Shape.Aggregate(1L, (a, d) => checked(a * d)) * elementSize)
            {
                problem = $"tensor '{entry.Name}' has a shape that does not match its length";
            }
            else if (entry.Offset != expectedOffset)
            {
                problem = $"tensor '{entry.Name}' is at offset {entry.Offset}, expected {expectedOffset}";
            }
            if (problem is not null)
            {
                throw new CheckpointRejectedException(path, $"malformed header: {problem}");
            }
            expectedOffset += entry.Length;
        }
        if (expectedOffset != dataLength)
        {
            throw new CheckpointRejectedException(path, $"malformed header: the index covers {expectedOffset} bytes of a {dataLength}-byte data section");
        }
    }

    private static string HashAndCompareTrailer(FileStream file, string path, long hashedLength)
    {
        file.Seek(0, SeekOrigin.Begin);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[CopyBufferSize];
        long remaining = hashedLength;
        while (remaining > 0)
        {
            int n = file.Read(buffer, 0, (int)Math.Min(buffer.Length, remaining));
            if (n == 0)
            {
                throw new CheckpointRejectedException(path, "truncated (the file shrank while being read)");
            }
            hash.AppendData(buffer, 0, n);
            remaining -= n;
        }
        Span<byte> trailer = stackalloc byte[TrailerLength];
        if (ReadUpTo(file, trailer) != TrailerLength)
        {
            throw new CheckpointRejectedException(path, "truncated (the file shrank while being read)");
        }
        byte[] digest = hash.GetHashAndReset();
        if (!trailer.SequenceEqual(digest))
        {
            throw new CheckpointRejectedException(path, ChecksumMismatch);
        }
        return Convert.ToHexStringLower(digest);
    }

    private static void WriteTensorBytes(Stream stream, Tensor tensor)
    {
        if (tensor.NumberOfElements == 0)
        {
            return;
        }
        // contiguous() returns a new handle even when it shares storage; dispose ours, never the input.
        using var contiguous = tensor.contiguous();
        // one copy of the tensor's memory (TorchSharp's WriteBytesToStream goes through a buffer and ran at ~170 MB/s)
        stream.Write(contiguous.bytes);
    }

    private static byte[] BuildPrefix(int version, uint headerLength, long totalLength)
    {
        var prefix = new byte[PrefixLength];
        Magic.CopyTo(prefix);
        BinaryPrimitives.WriteUInt32LittleEndian(prefix.AsSpan(8), (uint)version);
        BinaryPrimitives.WriteUInt32LittleEndian(prefix.AsSpan(12), headerLength);
        BinaryPrimitives.WriteInt64LittleEndian(prefix.AsSpan(16), totalLength);
        SHA256.HashData(prefix.AsSpan(0, 24)).AsSpan(0, 8).CopyTo(prefix.AsSpan(24));
        return prefix;
    }

    /// <summary>Whether bytes 24..31 are the check of bytes 8..23 under our magic (whatever bytes 0..7 hold).</summary>
    private static bool PrefixCheckMatches(ReadOnlySpan<byte> prefix)
    {
        Span<byte> covered = stackalloc byte[24];
        Magic.CopyTo(covered);
        prefix[8..24].CopyTo(covered[8..]);
        Span<byte> digest = stackalloc byte[32];
        SHA256.HashData(covered, digest);
        return digest[..8].SequenceEqual(prefix[24..32]);
    }

    private static int ReadUpTo(Stream stream, Span<byte> buffer)
    {
        int total = 0;
        while (total < buffer.Length)
        {
            int n = stream.Read(buffer[total..]);
            if (n == 0)
            {
                break;
            }
            total += n;
        }
        return total;
    }

    private static void RequireLittleEndian()
    {
        if (!BitConverter.IsLittleEndian)
        {
            throw new PlatformNotSupportedException("Checkpoints store little-endian tensor bytes; this machine is big-endian.");
        }
    }

    /// <summary>The JSON header as stored: the <see cref="CheckpointHeader"/> fields and the tensor index.</summary>
    private sealed record HeaderDocument(
        string RunId,
        int Epoch,
        long Step,
        DateTimeOffset CreatedUtc,
        string ConfigJson,
        Dictionary<string, string>? Extra,
        List<CheckpointTensorInfo>? Tensors)
    {
        public static HeaderDocument From(CheckpointHeader header, List<CheckpointTensorInfo> tensors) =>
            new(header.RunId, header.Epoch, header.Step, header.CreatedUtc, header.ConfigJson, header.Extra, tensors);

        public CheckpointHeader ToHeader() =>
            new(RunId, Epoch, Step, CreatedUtc, ConfigJson ?? "", Extra ?? new Dictionary<string, string>());
    }
}
