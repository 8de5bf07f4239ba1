using System.Buffers.Binary;
using MoCo.Model.Data;

namespace MoCo.Model.Tests;

/// <summary>The decoder's bounds (image size, encoded size) and the paths it refuses to open; the corpus test runs the crafted files.</summary>
public sealed class ImageDecoderLimitsTests
{
    [Theory]
    [InlineData(16384, 4096, null)]
    [InlineData(8192, 8192, null)]
    [InlineData(1, 16384, null)]
    [InlineData(16385, 1, "image size 16385x1 exceeds the 16384-pixel limit on a side")]
    [InlineData(1, 16385, "image size 1x16385 exceeds the 16384-pixel limit on a side")]
    [InlineData(8193, 8192, "image size 8193x8192 (67117056 pixels) exceeds the 67108864-pixel limit")]
    [InlineData(0, 10, "invalid image size 0x10")]
    [InlineData(10, -1, "invalid image size 10x-1")]
    public void Sizes_up_to_the_limits_pass_and_one_pixel_beyond_is_refused_naming_the_size(int width, int height, string? problem)
    {
        Assert.Equal(problem, ImageDecoder.SizeProblem(width, height));
    }

    [Fact]
    public void Header_sizes_beyond_the_limits_read_as_unreadable_so_loaders_skip_them_at_load()
    {
        // a data set decoded on demand checks only headers when it loads: an oversized header must fail there
        Assert.True(ImageDecoder.TryReadSize(CraftedPng(16384, 4096), out int width, out int height));
        Assert.Equal((16384, 4096), (width, height));
        Assert.False(ImageDecoder.TryReadSize(CraftedPng(16385, 4096), out _, out _));
        Assert.False(ImageDecoder.TryReadSize(CraftedPng(8193, 8192), out _, out _));
        Assert.False(ImageDecoder.TryReadSize(CraftedPng(32768, 32769), out _, out _));
    }

    [Fact]
    public void A_file_larger_than_the_encoded_limit_is_refused_before_it_is_read()
    {
        // a sparse file: reading it whole would take 256 MiB of memory and time; the size alone refuses it
        using var temp = new TempDirectory();
        string path = Path.Combine(temp.Path, "huge.png");
        using (var file = File.Create(path))
        {
            file.SetLength(ImageDecoder.MaxEncodedBytes + 1L);
        }
        long before = GC.GetAllocatedBytesForCurrentThread();

        var e = Assert.Throws<InvalidDataException>(() => ImageDecoder.Decode(path));

        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 1 << 20, "the file's bytes were read");
        Assert.Contains(path, e.Message, StringComparison.Ordinal);
        Assert.Contains("268435457 bytes, more than the 268435456-byte limit", e.Message, StringComparison.Ordinal);
        Assert.False(ImageDecoder.TryReadSize(path, out _, out _));
    }

    [Fact]
    public void A_named_pipe_is_refused_at_once_instead_of_blocking_the_loader()
    {
        // opening a pipe for reading blocks until a writer comes: a loader thread would wait forever
        using var temp = new TempDirectory();
        string pipe = Path.Combine(temp.Path, "x.jpg");
        HostileCorpus.MakeFifo(pipe);

        var e = HostileCorpus.Within(TimeSpan.FromSeconds(30), "decoding a named pipe",
            () => Assert.Throws<InvalidDataException>(() => ImageDecoder.Decode(pipe)), pipe);

        Assert.Contains("not a regular file (a named pipe", e.Message, StringComparison.Ordinal);
        Assert.False(HostileCorpus.Within(TimeSpan.FromSeconds(30), "reading a named pipe's size", () => ImageDecoder.TryReadSize(pipe, out _, out _), pipe));
    }

    [Fact]
    public void Folder_links_that_loop_inside_a_class_folder_do_not_multiply_or_hang_the_walk()
    {
        // two links to folders above: followed, they list every file 2^40 times before the path length stops them
        using var temp = new TempDirectory();
        DatasetTestImages.WriteTree(temp.Path, [("cat", 2), ("dog", 1)]);
        Directory.CreateSymbolicLink(Path.Combine(temp.Path, "cat", "again"), ".");
        Directory.CreateSymbolicLink(Path.Combine(temp.Path, "cat", "up"), "..");

        var data = HostileCorpus.Within(TimeSpan.FromSeconds(60), "walking a folder with link loops", () => ImageFolderDataset.FromDirectory(temp.Path));

        Assert.Equal(3, data.Report.Found);
        Assert.Equal(0, data.Report.Skipped);
        Assert.Equal([0, 0, 1], Enumerable.Range(0, data.Count).Select(data.Label));
    }

    [Fact]
    public void A_class_folder_that_is_a_link_is_followed()
    {
        // data sets are often trees of links into a shared store: a linked class folder still counts
        using var temp = new TempDirectory();
        string store = Path.Combine(temp.Path, "store");
        DatasetTestImages.WriteTree(store, [("cat", 2)]);
        string root = Path.Combine(temp.Path, "root");
        Directory.CreateDirectory(root);
        Directory.CreateSymbolicLink(Path.Combine(root, "cat"), Path.Combine(store, "cat"));

        var data = ImageFolderDataset.FromDirectory(root);

        Assert.Equal(["cat"], data.Classes);
        Assert.Equal(2, data.Count);
    }

    /// <summary>A PNG with only a header of the given size and a token of image data (a few dozen bytes).</summary>
    private static byte[] CraftedPng(int width, int height)
    {
        var stream = new MemoryStream();
        stream.Write([0x89, (byte)'P', (byte)'N', (byte)'G', 13, 10, 26, 10]);
        var ihdr = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(ihdr, width);
        BinaryPrimitives.WriteInt32BigEndian(ihdr.AsSpan(4), height);
        ihdr[8] = 8; // bit depth
        ihdr[9] = 2; // RGB
        Chunk(stream, "IHDR", ihdr);
        Chunk(stream, "IDAT", [0x78, 0x9c, 0x63, 0, 0, 0, 1, 0, 1]);
        Chunk(stream, "IEND", []);
        return stream.ToArray();
    }

    private static void Chunk(Stream stream, string type, byte[] data)
    {
        Span<byte> word = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(word, data.Length);
        stream.Write(word);
        byte[] typed = [.. System.Text.Encoding.ASCII.GetBytes(type), .. data];
        stream.Write(typed);
        BinaryPrimitives.WriteUInt32BigEndian(word, Crc32(typed));
        stream.Write(word);
    }

    /// <summary>PNG's CRC-32 (ISO-HDLC: reflected, polynomial 0xEDB88320).</summary>
    private static uint Crc32(ReadOnlySpan<byte> data)
    {
        uint crc = 0xFFFFFFFF;
        foreach (byte b in data)
        {
            crc ^= b;
            for (int k = 0; k < 8; k++)
            {
                crc = (crc & 1) != 0 ? 0xEDB88320 ^ (crc >> 1) : crc >> 1;
            }
        }
        return ~crc;
    }
}
