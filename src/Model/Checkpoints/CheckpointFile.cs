using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using MoCo.Model.Files;
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
/// A reader trusts nothing it has not checked: anyone can write a file with valid checksums, so the header length is
/// bounded before the header is read (<see cref="MaxHeaderBytes"/>), and every field of the header is validated before
/// anything is allocated from it: no null, no negative epoch or step, known dtypes, unique names, shapes of at most
/// <see cref="MaxDimensions"/> non-negative dimensions whose byte sizes are computed with overflow checks, and tensors
/// that tile the data section exactly. Any failure is a <see cref="CheckpointRejectedException"/> naming the field.
/// </summary>
public static class CheckpointFile
{
    /// <summary>The format version this build writes and reads.</summary>
    public const int FormatVersion = 1;

    /// <summary>The reason given for a file whose bytes do not match their checksum.</summary>
    public const string ChecksumMismatch = "checksum mismatch (file is corrupt)";

    /// <summary>The reason given for a file that is not in this format at all.</summary>
    public const string NotACheckpoint = "not a MoCo.Actors checkpoint";

    /// <summary>
    /// The longest header accepted, in bytes: 64 MiB. The header is the run's configuration, a few facts and one index
    /// line of about 100 bytes per tensor (a ResNet-50 MoCo checkpoint holds on the order of a thousand tensors), so
    /// real headers stay far below 1 MiB; the bound is checked before the header is read.
    /// </summary>
    public const int MaxHeaderBytes = 64 * 1024 * 1024;

    /// <summary>The most dimensions a tensor may have: 64 (ours have at most 4; libtorch's own limit is far above any use).</summary>
    public const int MaxDimensions = 64;

    private const int PrefixLength = 32;

    /// <summary>Bytes of the SHA-256 trailer that ends every file.</summary>
    internal const int TrailerLength = 32;
    private const int CopyBufferSize = 1 << 20;

    private static ReadOnlySpan<byte> Magic => "MOCOCKPT"u8;

    // a header with a property twice (two run ids) would read differently to different readers: refused
    private static readonly JsonSerializerOptions s_json = new() { WriteIndented = false, AllowDuplicateProperties = false };

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
        try
        {
            RegularFile.Length(path); // never open a named pipe: it would block until someone writes
        }
        catch (InvalidDataException e)
        {
            throw new CheckpointRejectedException(path, e.Message == RegularFile.EmptyOrSpecial
                ? $"truncated (the file is {RegularFile.EmptyOrSpecial})"
                : $"not a regular file: {e.Message}");
        }
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
        if (headerLength > MaxHeaderBytes)
        {
            throw new CheckpointRejectedException(path, $"malformed header: header length {headerLength} exceeds the {MaxHeaderBytes}-byte limit");
        }
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
        catch (Exception e) when (e is JsonException or NotSupportedException or ArgumentException)
        {
            throw new CheckpointRejectedException(path, $"malformed header: {e.Message}");
        }
        if (HeaderProblem(document) is { } headerProblem)
        {
            throw new CheckpointRejectedException(path, $"malformed header: {headerProblem}");
        }
        var header = document.ToHeader();
        if (expectedRunId is not null && header.RunId != expectedRunId)
        {
            throw new CheckpointRejectedException(path, $"belongs to run {header.RunId}, this run is {expectedRunId}");
        }
        var index = document.Tensors!;
        if (IndexProblem(index, declaredLength - TrailerLength - dataStart) is { } indexProblem)
        {
            throw new CheckpointRejectedException(path, $"malformed header: {indexProblem}");
        }
        return (new CheckpointInfo(path, header, sha256, index.ConvertAll(entry => entry!)), dataStart);
    }

    /// <summary>What is wrong with the header's own fields (not the index's entries), or null when nothing is.</summary>
    private static string? HeaderProblem(HeaderDocument document)
    {
        if (string.IsNullOrEmpty(document.RunId))
        {
            return "RunId is missing or empty";
        }
        if (document.Epoch < 0)
        {
            return $"Epoch {document.Epoch} is negative";
        }
        if (document.Step < 0)
        {
            return $"Step {document.Step} is negative";
        }
        if (document.Extra?.FirstOrDefault(pair => pair.Value is null) is { Key: { } key })
        {
            return $"Extra['{key}'] is null";
        }
        return document.Tensors is null ? "the tensor index (Tensors) is missing" : null;
    }

    /// <summary>
    /// What is wrong with the tensor index, or null when every entry is sound and the entries tile the
    /// <paramref name="dataLength"/>-byte data section in order. Sizes are computed in 64 bits with overflow checks,
    /// and each entry must fit the data section before the next is looked at.
    /// </summary>
    private static string? IndexProblem(List<CheckpointTensorInfo?> index, long dataLength)
    {
        long expectedOffset = 0;
        var names = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < index.Count; i++)
        {
            var entry = index[i];
            if (entry is null)
            {
                return $"tensor #{i} of the index is null";
            }
            if (string.IsNullOrEmpty(entry.Name))
            {
                return $"tensor #{i} has no Name";
            }
            if (!names.Add(entry.Name))
            {
                return $"tensor name '{entry.Name}' appears twice";
            }
            if (entry.DType is null || !CheckpointDTypes.TryParse(entry.DType, out _, out int elementSize))
            {
                return $"tensor '{entry.Name}' has unknown DType '{entry.DType}'";
            }
            if (entry.Shape is null)
            {
                return $"tensor '{entry.Name}' has no Shape";
            }
            if (entry.Shape.Length > MaxDimensions)
            {
                return $"tensor '{entry.Name}' has {entry.Shape.Length} dimensions, more than the {MaxDimensions} allowed";
            }
            string shape = $"[{string.Join(", ", entry.Shape)}]";
            if (entry.Shape.Any(d => d < 0))
            {
                return $"tensor '{entry.Name}' has a negative dimension in its Shape {shape}";
            }
            if (!TryByteSize(entry.Shape, elementSize, out long bytes))
            {
                return $"tensor '{entry.Name}' has a Shape {shape} of {entry.DType} whose byte size overflows 64 bits";
            }
            if (entry.Length != bytes)
            {
                return $"tensor '{entry.Name}' has Length {entry.Length}, but its Shape {shape} of {entry.DType} holds {bytes} bytes";
            }
            if (entry.Offset != expectedOffset)
            {
                return $"tensor '{entry.Name}' is at Offset {entry.Offset}, expected {expectedOffset}";
            }
            if (entry.Length > dataLength - entry.Offset)
            {
                return $"tensor '{entry.Name}' ({entry.Length} bytes at Offset {entry.Offset}) extends beyond the {dataLength}-byte data section";
            }
            expectedOffset = entry.Offset + entry.Length;
        }
        if (expectedOffset != dataLength)
        {
            return $"the index covers {expectedOffset} bytes of a {dataLength}-byte data section";
        }
        return null;
    }

    /// <summary>The bytes of a tensor of <paramref name="shape"/>, false when the count overflows a long.</summary>
    private static bool TryByteSize(long[] shape, int elementSize, out long bytes)
    {
        try
        {
            long elements = 1;
            foreach (long dimension in shape)
            {
                elements = checked(elements * dimension);
            }
            bytes = checked(elements * elementSize);
            return true;
        }
        catch (OverflowException)
        {
            bytes = 0;
            return false;
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
        List<CheckpointTensorInfo?>? Tensors)
    {
        public static HeaderDocument From(CheckpointHeader header, List<CheckpointTensorInfo> tensors) =>
            new(header.RunId, header.Epoch, header.Step, header.CreatedUtc, header.ConfigJson, header.Extra, tensors.Cast<CheckpointTensorInfo?>().ToList());

        public CheckpointHeader ToHeader() =>
            new(RunId, Epoch, Step, CreatedUtc, ConfigJson ?? "", Extra ?? new Dictionary<string, string>());
    }
}
