using System.Formats.Tar;
using System.Globalization;
using System.Text;
using MoCo.Model.Training;
using SkiaSharp;

namespace MoCo.Model.Data.Shards;

/// <summary>What <see cref="ShardWriter.Write"/> wrote: the shard files, the samples in them and the images it left out.</summary>
public sealed record ShardWriteReport(IReadOnlyList<string> Shards, int Samples, int Skipped, IReadOnlyList<string> FirstSkipped, long Bytes)
{
    /// <summary>The pattern naming the shards: <c>DIR/train-{000000..000011}.tar</c>.</summary>
    public string Pattern => Shards.Count == 1
        ? Shards[0]
        : Shards[0][..^(ShardWriter.NumberWidth + 4)] + "{" + Number(Shards[0]) + ".." + Number(Shards[^1]) + "}.tar";

    private static string Number(string shard) => shard[^(ShardWriter.NumberWidth + 4)..^4];
}

/// <summary>
/// Writes a data set as WebDataset shards: <c>PREFIX-000000.tar</c>, <c>PREFIX-000001.tar</c>… of about a given size
/// each, every sample a <c>KEY.jpg</c> (or the image's own format) and a <c>KEY.cls</c> holding its class index, in
/// plain ustar tar files. Images found encoded (image folders, shards) are copied byte for byte, so their pixels decode
/// exactly as from the source; decoded-only data (synthetic, CIFAR-10 binary) is written as lossless PNG. Every image
/// is decoded once on the way, and an unreadable one is left out and counted. The samples are shuffled with a seed
/// first (an image folder lists them class by class, and a shuffle buffer spans only a few shards), and each shard is
/// written to a temporary name and renamed, so a shard that exists is whole.
/// </summary>
public static class ShardWriter
{
    /// <summary>The digits of a shard's number.</summary>
    public const int NumberWidth = 6;

    private const int Chunk = 512;

    /// <summary>Writes <paramref name="data"/> as shards <c>OUT/PREFIX-NNNNNN.tar</c>.</summary>
    /// <param name="data">The images and labels.</param>
    /// <param name="folder">Where the shards go (created if needed).</param>
    /// <param name="prefix">The shards' name before the number: train, test.</param>
    /// <param name="shardBytes">A shard is closed once it holds at least this many bytes of images.</param>
    /// <param name="shuffleSeed">The seed of the samples' order; null keeps the data set's order.</param>
    /// <param name="threads">Threads that read and check the images.</param>
    /// <param name="progress">Samples done so far.</param>
    /// <exception cref="InvalidDataException">No image of the data set could be read.</exception>
    public static ShardWriteReport Write(IImageDataset data, string folder, string prefix, long shardBytes, ulong? shuffleSeed, int threads,
        IProgress<int>? progress = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(shardBytes, 1);
        Directory.CreateDirectory(folder);
        int[] order = shuffleSeed is { } seed
            ? new CounterRng(seed, RngStream.ShardOrder, ulong.MaxValue, 0).Permutation(data.Count)
            : Enumerable.Range(0, data.Count).ToArray();
        var shards = new List<string>();
        var firstSkipped = new List<string>();
        int samples = 0;
        int skipped = 0;
        long total = 0;
        ShardFile? current = null;
        try
        {
            for (int start = 0; start < order.Length; start += Chunk)
            {
                int n = Math.Min(Chunk, order.Length - start);
                var encoded = new (byte[]? Bytes, string Extension, string? Problem)[n];
                Parallel.For(0, n, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, threads) },
                    i => encoded[i] = Encode(data, order[start + i]));
                for (int i = 0; i < n; i++)
                {
                    int index = order[start + i];
                    var (bytes, extension, problem) = encoded[i];
                    if (bytes is null)
                    {
                        skipped++;
                        if (firstSkipped.Count < DataLoadReport.MaxNamed)
                        {
                            firstSkipped.Add($"image {index} ({problem})");
                        }
                        continue;
                    }
                    current ??= new ShardFile(Path.Combine(folder, $"{prefix}-{shards.Count.ToString(CultureInfo.InvariantCulture).PadLeft(NumberWidth, '0')}.tar"));
                    current.Add(samples.ToString(CultureInfo.InvariantCulture).PadLeft(9, '0'), bytes, extension, data.Label(index));
                    samples++;
                    total += bytes.Length;
                    if (current.ImageBytes >= shardBytes)
                    {
                        shards.Add(current.Commit());
                        current = null;
                    }
                }
                progress?.Report(start + n);
            }
            if (current is not null)
            {
                shards.Add(current.Commit());
                current = null;
            }
        }
        finally
        {
            current?.Abandon();
        }
        if (samples == 0)
        {
            throw new InvalidDataException($"None of the {data.Count} images could be read ({string.Join(", ", firstSkipped)}): no shard written.");
        }
        return new ShardWriteReport(shards, samples, skipped, firstSkipped, total);
    }

    /// <summary>Writes the class names, one per line, as <see cref="ShardDataset.ClassesFile"/> in <paramref name="folder"/>.</summary>
    public static void WriteClasses(IReadOnlyList<string> classes, string folder)
    {
        if (classes.Any(c => c.Contains('\n', StringComparison.Ordinal) || c.Contains('\r', StringComparison.Ordinal)))
        {
            throw new InvalidDataException("A class name holds a line break: it cannot be written one per line.");
        }
        string path = Path.Combine(folder, ShardDataset.ClassesFile);
        string temporary = path + $".{Guid.NewGuid():N}.tmp";
        File.WriteAllText(temporary, string.Join('\n', classes) + "\n", new UTF8Encoding(false));
        File.Move(temporary, path, overwrite: true);
    }

    /// <summary>The image's encoded bytes (as found, or as PNG), checked by decoding them; or the reason it is left out.</summary>
    private static (byte[]? Bytes, string Extension, string? Problem) Encode(IImageDataset data, int index)
    {
        try
        {
            byte[]? found = (data as IEncodedImageDataset)?.EncodedBytes(index);
            if (found is not null)
            {
                _ = ImageDecoder.Decode(found); // a shard holds only images that decode
                return (found, ExtensionOf(found), null);
            }
            return (Png(data.Image(index)), ".png", null);
        }
        catch (InvalidDataException e)
        {
            return (null, "", e.Message);
        }
    }

    /// <summary>The extension for the codec SkiaSharp recognises in the bytes (the shard's key names the format).</summary>
    private static string ExtensionOf(byte[] encoded)
    {
        using var stream = new SKMemoryStream(encoded);
        using var codec = SKCodec.Create(stream);
        return codec?.EncodedFormat switch
        {
            SKEncodedImageFormat.Png => ".png",
            SKEncodedImageFormat.Bmp => ".bmp",
            SKEncodedImageFormat.Webp => ".webp",
            _ => ".jpg",
        };
    }

    /// <summary>Lossless PNG of a decoded image.</summary>
    internal static byte[] Png(ImageU8 image)
    {
        using var bitmap = ToBitmap(image);
        using var data = bitmap.Encode(SKEncodedImageFormat.Png, 100);
        return data.ToArray();
    }

    /// <summary>An opaque RGBA bitmap of a decoded RGB image, for SkiaSharp's encoders and resamplers. The caller disposes it.</summary>
    public static SKBitmap ToBitmap(ImageU8 image)
    {
        var bitmap = new SKBitmap(new SKImageInfo(image.Width, image.Height, SKColorType.Rgba8888, SKAlphaType.Opaque));
        var pixels = new byte[image.Height * image.Width * 4];
        for (int i = 0, j = 0; i < image.ByteCount; i += 3, j += 4)
        {
            pixels[j] = image.Pixels[i];
            pixels[j + 1] = image.Pixels[i + 1];
            pixels[j + 2] = image.Pixels[i + 2];
            pixels[j + 3] = 255;
        }
        System.Runtime.InteropServices.Marshal.Copy(pixels, 0, bitmap.GetPixels(), pixels.Length);
        return bitmap;
    }

    /// <summary>A shard being written under a temporary name.</summary>
    private sealed class ShardFile
    {
        private readonly string _path;
        private readonly string _temporary;
        private readonly FileStream _stream;
        private readonly TarWriter _writer;

        public ShardFile(string path)
        {
            _path = path;
            _temporary = Path.Combine(Path.GetDirectoryName(path) ?? ".", $".{Path.GetFileName(path)}.{Guid.NewGuid():N}.tmp");
            _stream = new FileStream(_temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20);
            _writer = new TarWriter(_stream, TarEntryFormat.Ustar, leaveOpen: true);
        }

        public long ImageBytes { get; private set; }

        public void Add(string key, byte[] image, string extension, int label)
        {
            Entry(key + extension, image);
            Entry(key + ".cls", Encoding.ASCII.GetBytes(label.ToString(CultureInfo.InvariantCulture)));
            ImageBytes += image.Length;
        }

        public string Commit()
        {
            _writer.Dispose();
            _stream.Flush(flushToDisk: true);
            _stream.Dispose();
            File.Move(_temporary, _path, overwrite: true);
            return _path;
        }

        public void Abandon()
        {
            _writer.Dispose();
            _stream.Dispose();
            File.Delete(_temporary);
        }

        private void Entry(string name, byte[] content)
        {
            var entry = new UstarTarEntry(TarEntryType.RegularFile, name)
            {
                DataStream = new MemoryStream(content, writable: false),
                ModificationTime = DateTimeOffset.UnixEpoch,
                Mode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead,
            };
            _writer.WriteEntry(entry);
        }
    }
}
