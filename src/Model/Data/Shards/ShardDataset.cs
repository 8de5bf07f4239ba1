using System.Diagnostics;
using Microsoft.Win32.SafeHandles;
using MoCo.Model.Training;

namespace MoCo.Model.Data.Shards;

/// <summary>How shards are read: the shuffle buffer (which defines the run's order) and the read-ahead (which does not).</summary>
/// <param name="ShuffleBytes">
/// The span of the shuffle: an epoch visits the shards in a random order, in groups of consecutive shards of at most this
/// many bytes of images (at least one shard), and each group's samples in a random order of their own. Part of what
/// defines a run (<c>shard-shuffle-mib</c>).
/// </param>
/// <param name="ReadAheadBytes">
/// Encoded bytes a worker reads ahead of its consumption (<c>shard-read-ahead-mib</c>): it holds at most this plus one
/// group's share of encoded images in memory.
/// </param>
public sealed record ShardOptions(long ShuffleBytes, long ReadAheadBytes)
{
    /// <summary>256 MiB each: about 2300 ImageNet images, or 8 of ImageNet's usual shards, per group.</summary>
    public static ShardOptions Default { get; } = new(256L << 20, 256L << 20);
}

/// <summary>The order of one epoch over shards: the sample order and where each group of shards begins in it.</summary>
/// <param name="Order">The epoch's order (global positions to sample indices).</param>
/// <param name="GroupStarts">The first position of each group, then the total: group g holds positions [GroupStarts[g], GroupStarts[g+1]).</param>
public sealed record ShardEpoch(EpochOrder Order, int[] GroupStarts)
{
    /// <summary>The group that global position <paramref name="position"/> falls in.</summary>
    public int GroupAt(int position)
    {
        int i = Array.BinarySearch(GroupStarts, position);
        return i >= 0 ? i : ~i - 1;
    }
}

/// <summary>
/// A data set of WebDataset shards (<see cref="ShardScanner"/> reads their layout): only the index of the samples is
/// held in memory (<see cref="BytesPerSample"/> bytes each), never the images. Training reads them sequentially through
/// <see cref="ShardReadAhead"/>, in the order <see cref="Epoch"/> gives; <see cref="Image"/> reads one sample at its
/// offset (the kNN monitor and the evaluations go through the samples in index order, which is the shards' order).
/// </summary>
public sealed class ShardDataset : IEncodedImageDataset
{
    /// <summary>The most classes a shard set may have without a classes.txt naming them (labels are checked against it).</summary>
    public const int MaxClasses = 65536;

    /// <summary>Bytes of index held per sample: its <see cref="ShardRecord"/>.</summary>
    public const int BytesPerSample = 24;

    /// <summary>The file beside the shards that names the classes, one per line (label = line number).</summary>
    public const string ClassesFile = "classes.txt";

    private readonly ShardRecord[] _records;
    private readonly int[] _shardStarts;
    private readonly long[] _shardImageBytes;
    private readonly string[] _classes;

    private ShardDataset(string source, IReadOnlyList<string> shards, ShardRecord[] records, string[] classes, ShardOptions options, DataLoadReport report)
    {
        Source = source;
        Shards = shards;
        _records = records;
        _classes = classes;
        Options = options;
        Report = report;
        _shardStarts = new int[shards.Count + 1];
        _shardImageBytes = new long[shards.Count];
        foreach (var record in records)
        {
            _shardStarts[record.Shard + 1]++;
            _shardImageBytes[record.Shard] += record.Length;
        }
        for (int s = 0; s < shards.Count; s++)
        {
            _shardStarts[s + 1] += _shardStarts[s];
        }
    }

    /// <summary>The pattern or path the shards came from.</summary>
    public string Source { get; }

    /// <summary>The shard files, in the pattern's order; a sample's <see cref="ShardRecord.Shard"/> indexes this list.</summary>
    public IReadOnlyList<string> Shards { get; }

    /// <summary>Shuffle and read-ahead sizes.</summary>
    public ShardOptions Options { get; }

    /// <summary>What the scan found and skipped.</summary>
    public DataLoadReport Report { get; }

    /// <inheritdoc />
    public int Count => _records.Length;

    /// <inheritdoc />
    public IReadOnlyList<string> Classes => _classes;

    /// <inheritdoc />
    public int Label(int index) => _records[index].Label;

    /// <summary>Where sample <paramref name="index"/> lies.</summary>
    public ShardRecord Record(int index) => _records[index];

    /// <summary>
    /// Opens shards: scans their headers (<see cref="ShardScanner"/>). Classes come from <paramref name="classes"/> when
    /// given (a test split labelled as its train split), else from <see cref="ClassesFile"/> beside the first shard, else
    /// they are the numbers 0..(largest label).
    /// </summary>
    /// <exception cref="InvalidDataException">A shard is malformed, the class list is, or no usable sample was found.</exception>
    public static ShardDataset Open(string source, IReadOnlyList<string> shards, ShardOptions options, IReadOnlyList<string>? classes = null)
    {
        if (shards.Count == 0)
        {
            throw new InvalidDataException($"No shards in '{source}'.");
        }
        var stopwatch = Stopwatch.StartNew();
        classes ??= ReadClassesFile(Path.Combine(Path.GetDirectoryName(shards[0]) is { Length: > 0 } d ? d : ".", ClassesFile));
        var scan = ShardScanner.Scan(shards, classes?.Count ?? MaxClasses);
        if (scan.Records.Count == 0)
        {
            string skipped = scan.Skipped > 0 ? $" ({scan.Skipped} skipped: {string.Join(", ", scan.FirstSkipped)})" : "";
            throw new InvalidDataException(
                $"No usable samples in the shards of '{source}'{skipped}: a sample is KEY.jpg (or .jpeg .png .bmp .webp) with KEY.cls holding its class index.");
        }
        var names = classes?.ToArray()
            ?? Enumerable.Range(0, scan.Records.Max(r => r.Label) + 1).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        var report = new DataLoadReport(scan.Records.Count + scan.Skipped, scan.Skipped, scan.FirstSkipped, 0, stopwatch.Elapsed);
        return new ShardDataset(source, shards, scan.Records.ToArray(), names, options, report);
    }

    /// <summary>The class names of a <see cref="ClassesFile"/>, or null when there is none.</summary>
    /// <exception cref="InvalidDataException">The file is larger than 4 MiB, names more than <see cref="MaxClasses"/> classes, or an empty or repeated one.</exception>
    public static IReadOnlyList<string>? ReadClassesFile(string path)
    {
        if (!File.Exists(path))
        {
            return null;
        }
        const int maxBytes = 4 << 20;
        long length = new FileInfo(path).Length;
        if (length > maxBytes)
        {
            throw new InvalidDataException($"The class list '{path}' has {length} bytes, more than the {maxBytes} accepted.");
        }
        var lines = File.ReadAllText(path).Split('\n').Select(l => l.TrimEnd('\r')).ToList();
        if (lines.Count > 0 && lines[^1].Length == 0)
        {
            lines.RemoveAt(lines.Count - 1);
        }
        if (lines.Count == 0 || lines.Count > MaxClasses)
        {
            throw new InvalidDataException($"The class list '{path}' names {lines.Count} classes: expected 1 to {MaxClasses}, one per line.");
        }
        int empty = lines.FindIndex(l => l.Trim().Length == 0);
        if (empty >= 0)
        {
            throw new InvalidDataException($"The class list '{path}' has an empty name on line {empty + 1}.");
        }
        var repeated = lines.GroupBy(l => l, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1);
        if (repeated is not null)
        {
            throw new InvalidDataException($"The class list '{path}' names '{repeated.Key}' twice.");
        }
        return lines;
    }

    /// <summary>
    /// The order of <paramref name="epoch"/>, a function of (seed, epoch) and the shards alone: the shards in a random
    /// order, cut into groups of at most <see cref="ShardOptions.ShuffleBytes"/> bytes of images (at least one shard each),
    /// each group's samples in a random order. Step t takes positions [t·B, (t+1)·B) as for any data set, so a change of
    /// workers mid-epoch neither repeats nor skips a sample.
    /// </summary>
    public ShardEpoch Epoch(ulong seed, int epoch, int globalBatch)
    {
        var shardOrder = new CounterRng(seed, RngStream.ShardOrder, (ulong)epoch, 0).Permutation(Shards.Count);
        var order = new int[_records.Length];
        var groupStarts = new List<int> { 0 };
        int filled = 0;
        int groupFirst = 0;
        long groupBytes = 0;
        for (int i = 0; i <= shardOrder.Length; i++)
        {
            bool close = i == shardOrder.Length
                || (groupBytes > 0 && groupBytes + _shardImageBytes[shardOrder[i]] > Options.ShuffleBytes);
            if (close && filled > groupFirst)
            {
                var rng = new CounterRng(seed, RngStream.ShardOrder, (ulong)epoch, (ulong)groupStarts.Count);
                rng.Shuffle(order.AsSpan(groupFirst, filled - groupFirst));
                groupStarts.Add(filled);
                groupFirst = filled;
                groupBytes = 0;
            }
            if (i == shardOrder.Length)
            {
                break;
            }
            int shard = shardOrder[i];
            for (int r = _shardStarts[shard]; r < _shardStarts[shard + 1]; r++)
            {
                order[filled++] = r;
            }
            groupBytes += _shardImageBytes[shard];
        }
        return new ShardEpoch(new EpochOrder(epoch, globalBatch, order), groupStarts.ToArray());
    }

    /// <summary>Reads and decodes sample <paramref name="index"/> at its offset. Thread-safe.</summary>
    /// <exception cref="InvalidDataException">The image cannot be read or decoded (the message names the shard and the byte).</exception>
    public ImageU8 Image(int index)
    {
        return Decode(index, EncodedBytes(index));
    }

    /// <summary>The encoded image of sample <paramref name="index"/>, read at its offset.</summary>
    public byte[] EncodedBytes(int index)
    {
        var record = _records[index];
        var bytes = new byte[record.Length];
        using var handle = OpenShard(record.Shard);
        ReadAt(handle, record, bytes);
        return bytes;
    }

    /// <summary>Decodes the encoded bytes of sample <paramref name="index"/>; an error names the shard and the byte.</summary>
    internal ImageU8 Decode(int index, ReadOnlySpan<byte> encoded)
    {
        try
        {
            return ImageDecoder.Decode(encoded);
        }
        catch (InvalidDataException e)
        {
            var record = _records[index];
            throw new InvalidDataException($"Cannot decode the image at byte {record.Offset} of shard '{Shards[record.Shard]}': {e.Message}", e);
        }
    }

    internal SafeFileHandle OpenShard(int shard) =>
        File.OpenHandle(Shards[shard], FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.None);

    /// <summary>Reads a record's bytes at its offset; a short read (the shard shrank since the scan) is an error naming it.</summary>
    internal void ReadAt(SafeFileHandle handle, ShardRecord record, Span<byte> destination)
    {
        int done = 0;
        while (done < record.Length)
        {
            int n = RandomAccess.Read(handle, destination[done..record.Length], record.Offset + done);
            if (n == 0)
            {
                throw new InvalidDataException(
                    $"Shard '{Shards[record.Shard]}' ends at byte {record.Offset + done}, inside an image its scan found: it changed since the data set was opened.");
            }
            done += n;
        }
    }
}
