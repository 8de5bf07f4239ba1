using System.Text;
using MoCo.Model.Files;

namespace MoCo.Model.Data.Shards;

/// <summary>One sample of a shard: where its encoded image lies in which shard, and its label.</summary>
/// <param name="Shard">Index of the shard file in <see cref="ShardDataset.Shards"/>.</param>
/// <param name="Offset">Byte offset of the image's data in the shard.</param>
/// <param name="Length">Bytes of encoded image.</param>
/// <param name="Label">The class index read from the sample's <c>.cls</c> entry.</param>
public readonly record struct ShardRecord(int Shard, long Offset, int Length, int Label);

/// <summary>What scanning the shards found: the usable samples and the skipped ones (the first few named).</summary>
internal sealed record ShardScan(List<ShardRecord> Records, int Skipped, List<string> FirstSkipped);

/// <summary>
/// Reads the headers of WebDataset shards (plain POSIX tar files) without reading the images: a sample is the run of
/// consecutive entries sharing a key (the path up to the first dot of the file name), holding one image
/// (<c>KEY.jpg</c>, <c>.jpeg</c>, <c>.png</c>, <c>.bmp</c> or <c>.webp</c>) and one label (<c>KEY.cls</c>, a decimal
/// class index); other entries of a sample (<c>.json</c>, <c>.txt</c>…) are ignored. Every header is hostile until
/// checked: its checksum must match, its size must lie inside the file, metadata entries (PAX <c>x</c>, GNU long name
/// <c>L</c>) are bounded by <see cref="TarGzReader.MaxMetadataBytes"/> before they are read, an image by
/// <see cref="ImageDecoder.MaxEncodedBytes"/> and a label by <see cref="MaxLabelBytes"/>. A sample without an image or a
/// label, or with a label out of range, is skipped and counted; a header that is not a tar header, or a shard that ends
/// inside an entry, is an error naming the shard and the byte.
/// </summary>
internal static class ShardScanner
{
    /// <summary>The longest <c>.cls</c> entry read: a decimal number with some white space.</summary>
    public const int MaxLabelBytes = 32;

    private const int NameOffset = 0;
    private const int NameBytes = 100;
    private const int SizeOffset = 124;
    private const int SizeBytes = 12;
    private const int TypeFlagOffset = 156;
    private const int MagicOffset = 257;
    private const int PrefixOffset = 345;
    private const int PrefixBytes = 155;

    /// <summary>Scans every shard in turn; labels must be below <paramref name="maxClasses"/>.</summary>
    /// <exception cref="InvalidDataException">A shard is not a sound tar file (the message names it and the byte).</exception>
    public static ShardScan Scan(IReadOnlyList<string> shards, int maxClasses)
    {
        var scan = new ShardScan([], 0, []);
        var skipped = 0;
        for (int shard = 0; shard < shards.Count; shard++)
        {
            skipped += ScanOne(shards[shard], shard, maxClasses, scan.Records, scan.FirstSkipped);
        }
        return scan with { Skipped = skipped };
    }

    private static int ScanOne(string path, int shard, int maxClasses, List<ShardRecord> records, List<string> firstSkipped)
    {
        long fileLength;
        try
        {
            fileLength = RegularFile.Length(path);
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"Cannot read shard '{path}': {e.Message}", e);
        }
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
        var header = new byte[TarBlock.Bytes];
        var sample = new SampleBuilder(path, shard, maxClasses, records, firstSkipped);
        string? longName = null;
        long position = 0;
        while (true)
        {
            if (position + TarBlock.Bytes > fileLength)
            {
                // a tar ends with two zero blocks; tolerate their absence at the very end, not a torn header
                if (position == fileLength)
                {
                    break;
                }
                throw Malformed(path, position, "the file ends inside a header (truncated)");
            }
            file.Position = position;
            file.ReadExactly(header);
            if (header.AsSpan().IndexOfAnyExcept((byte)0) < 0)
            {
                break;
            }
            if (!TarBlock.ChecksumMatches(header))
            {
                throw Malformed(path, position, "not a tar header (its checksum does not match)");
            }
            if (!TarBlock.TryParseSize(header.AsSpan(SizeOffset, SizeBytes), out long size) || size < 0)
            {
                throw Malformed(path, position, "the header's size field is not a number");
            }
            long data = position + TarBlock.Bytes;
            if (size > fileLength - data)
            {
                throw Malformed(path, position, $"the entry declares {size} bytes, past the end of the {fileLength}-byte file (truncated)");
            }
            position = data + (size + TarBlock.Bytes - 1) / TarBlock.Bytes * TarBlock.Bytes;
            byte type = header[TypeFlagOffset];
            switch (type)
            {
                case (byte)'x' or (byte)'L':
                    if (size > TarGzReader.MaxMetadataBytes)
                    {
                        throw Malformed(path, data - TarBlock.Bytes,
                            $"a {size}-byte metadata entry, more than the {TarGzReader.MaxMetadataBytes} bytes accepted for one");
                    }
                    var meta = new byte[size];
                    file.Position = data;
                    file.ReadExactly(meta);
                    longName = type == 'L' ? Encoding.UTF8.GetString(meta).TrimEnd('\0') : PaxPath(meta) ?? longName;
                    continue;
                case (byte)'0' or 0 or (byte)'7':
                    string name = longName ?? HeaderName(header);
                    longName = null;
                    sample.Add(name, data, size, file);
                    continue;
                default:
                    longName = null; // directories, links, global PAX headers: nothing of a sample
                    continue;
            }
        }
        sample.Flush();
        return sample.Skipped;
    }

    private static InvalidDataException Malformed(string path, long offset, string problem) =>
        new($"Shard '{path}' is not a sound tar file: at byte {offset}, {problem}.");

    private static string HeaderName(byte[] header)
    {
        string name = Field(header.AsSpan(NameOffset, NameBytes));
        bool ustar = header.AsSpan(MagicOffset, 5).SequenceEqual("ustar"u8);
        string prefix = ustar ? Field(header.AsSpan(PrefixOffset, PrefixBytes)) : "";
        return prefix.Length > 0 ? prefix + "/" + name : name;
    }

    private static string Field(ReadOnlySpan<byte> field)
    {
        int end = field.IndexOf((byte)0);
        return Encoding.UTF8.GetString(end < 0 ? field : field[..end]);
    }

    /// <summary>The <c>path</c> record of a PAX extended header ("LEN path=VALUE\n" records), or null.</summary>
    private static string? PaxPath(byte[] meta)
    {
        string text = Encoding.UTF8.GetString(meta);
        string? path = null;
        foreach (string record in text.Split('\n'))
        {
            int space = record.IndexOf(' ');
            if (space > 0 && record.AsSpan(space + 1).StartsWith("path=", StringComparison.Ordinal))
            {
                path = record[(space + 1 + "path=".Length)..];
            }
        }
        return path;
    }

    /// <summary>Collects the entries of one key; a new key closes the sample before it.</summary>
    private sealed class SampleBuilder(string path, int shard, int maxClasses, List<ShardRecord> records, List<string> firstSkipped)
    {
        private string? _key;
        private long _imageOffset = -1;
        private long _imageLength;
        private int _label = -1;
        private string? _problem;

        public int Skipped { get; private set; }

        public void Add(string name, long offset, long size, FileStream file)
        {
            name = name.Replace('\\', '/');
            int slash = name.LastIndexOf('/');
            int dot = name.IndexOf('.', slash + 1);
            if (dot < 0)
            {
                return; // no extension: no part of a sample
            }
            string key = name[..dot];
            string extension = name[dot..].ToLowerInvariant();
            if (key != _key)
            {
                Flush();
                _key = key;
            }
            if (extension == ".cls")
            {
                _label = ReadLabel(file, offset, size, out string? problem);
                _problem ??= problem;
            }
            else if (ImageFolderDataset.Extensions.Contains(extension))
            {
                if (size > ImageDecoder.MaxEncodedBytes)
                {
                    _problem ??= $"{size} bytes of image, more than the {ImageDecoder.MaxEncodedBytes}-byte limit";
                }
                else if (size == 0)
                {
                    _problem ??= "an empty image";
                }
                else
                {
                    _imageOffset = offset;
                    _imageLength = size;
                }
            }
        }

        public void Flush()
        {
            if (_key is null)
            {
                return;
            }
            string? problem = _problem
                ?? (_imageOffset < 0 ? "no image entry" : _label < 0 ? "no .cls label" : null);
            if (problem is null)
            {
                records.Add(new ShardRecord(shard, _imageOffset, (int)_imageLength, _label));
            }
            else
            {
                Skipped++;
                if (firstSkipped.Count < DataLoadReport.MaxNamed)
                {
                    firstSkipped.Add($"{path}!/{_key} ({problem})");
                }
            }
            _key = null;
            _imageOffset = -1;
            _imageLength = 0;
            _label = -1;
            _problem = null;
        }

        private int ReadLabel(FileStream file, long offset, long size, out string? problem)
        {
            problem = null;
            if (size > MaxLabelBytes || size == 0)
            {
                problem = $"a {size}-byte .cls entry (a label is a decimal number of at most {MaxLabelBytes} bytes)";
                return -1;
            }
            var bytes = new byte[size];
            file.Position = offset;
            file.ReadExactly(bytes);
            string text = Encoding.ASCII.GetString(bytes).Trim();
            if (!int.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int label)
                || label >= maxClasses)
            {
                problem = $"the .cls entry holds '{Printable(text)}', not a class index in 0..{maxClasses - 1}";
                return -1;
            }
            return label;
        }

        private static string Printable(string text) =>
            new(text.Take(MaxLabelBytes).Select(c => char.IsControl(c) || c > '~' ? '?' : c).ToArray());
    }
}
