using System.Formats.Tar;
using System.IO.Compression;
using MoCo.Model.Data;

namespace MoCo.Model.Tests;

/// <summary>The archive reader's bounds: per entry, all kept entries together, and the metadata blocks the tar reader would allocate whole.</summary>
public sealed class TarGzReaderLimitsTests
{
    [Fact]
    public void An_entry_beyond_the_per_entry_limit_is_skipped_unread_and_counted_by_the_data_set()
    {
        // a real 257 MiB entry (zeros compress to a few hundred KiB): refused by its header's size, never allocated
        using var temp = new TempDirectory();
        string archive = Path.Combine(temp.Path, "big.tar.gz");
        byte[] good = DatasetTestImages.EncodePng(DatasetTestImages.Make(8, 6, 3));
        WriteArchive(archive, writer =>
        {
            Add(writer, "train/a/good.png", good);
            writer.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, "train/a/big.png") { DataStream = new ZeroStream(TarGzReader.MaxEntryBytes + (1L << 20)) });
            Add(writer, "test/a/good.png", good);
        });
        long before = GC.GetAllocatedBytesForCurrentThread();

        var splits = DataSource.Open(archive, new DataSourceOptions { MaxDegreeOfParallelism = 1 });

        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 64L << 20, "the oversized entry was read into memory");
        Assert.Equal((3, 1), (splits.Report.Found, splits.Report.Skipped));
        Assert.Equal([$"{archive}!/train/a/big.png"], splits.Report.FirstSkipped);
        Assert.Equal(1, splits.Train.Count);
        var entry = Assert.Single(TarGzReader.Read(archive, p => p.EndsWith("big.png", StringComparison.Ordinal)), e => !e.IsDirectory);
        Assert.Null(entry.Data);
        Assert.Equal("269484032 bytes, more than the 268435456-byte limit for one archive entry", entry.Refusal);
    }

    [Fact]
    public void Kept_entries_beyond_the_memory_limit_refuse_the_archive_with_a_message_naming_the_entry()
    {
        using var temp = new TempDirectory();
        string archive = Path.Combine(temp.Path, "many.tar.gz");
        WriteArchive(archive, writer =>
        {
            for (int i = 0; i < 4; i++)
            {
                Add(writer, $"train/a/{i}.png", new byte[2000]);
            }
        });

        var kept = TarGzReader.Read(archive, _ => true, maxKeptBytes: 100_000);
        var e = Assert.Throws<InvalidDataException>(() => TarGzReader.Read(archive, _ => true, maxKeptBytes: 5000));

        Assert.Equal(4, kept.Count(entry => !entry.IsDirectory));
        Assert.Contains($"Archive '{archive}' holds more than the 5000 bytes that may be kept in memory", e.Message, StringComparison.Ordinal);
        Assert.Contains("(reached at entry 'train/a/2.png')", e.Message, StringComparison.Ordinal);
        Assert.Contains("unpack it into a directory", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData('x', 1536L << 20, "1610612736-byte PAX extended header")]
    [InlineData('x', 3L << 30, "3221225472-byte PAX extended header")]
    [InlineData('g', 2L << 20, "2097152-byte PAX global header")]
    [InlineData('L', int.MaxValue, "2147483647-byte GNU long name")]
    [InlineData('K', 5L << 20, "5242880-byte GNU long link")]
    public void A_metadata_header_beyond_the_limit_is_refused_before_the_tar_reader_allocates_it(char type, long size, string named)
    {
        // System.Formats.Tar allocates such a block whole (1.5 GiB for a 1.5 GiB claim in an 85-byte archive), or
        // throws InvalidOperationException beyond 2 GiB
        using var temp = new TempDirectory();
        string archive = Path.Combine(temp.Path, "metadata.tar.gz");
        using (var file = File.Create(archive))
        using (var gzip = new GZipStream(file, CompressionLevel.Fastest))
        {
            gzip.Write(TarHeader("PaxHeaders/x.png", type, size));
            gzip.Write(new byte[1024]);
        }
        long before = GC.GetAllocatedBytesForCurrentThread();

        var e = Assert.Throws<InvalidDataException>(() => TarGzReader.Read(archive, _ => true));

        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 16L << 20, "the metadata block was allocated");
        Assert.Contains($"the tar header at byte 0 declares a {named}, more than the 1048576 bytes accepted", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Long_names_and_attributes_of_real_archives_pass_the_guard()
    {
        // PAX and GNU headers below the limit are what real archives hold: long paths, attributes
        using var temp = new TempDirectory();
        string archive = Path.Combine(temp.Path, "long.tar.gz");
        string longPax = "train/" + new string('p', 300) + "/x.png";
        string longGnu = "train/" + new string('g', 300) + "/y.png";
        var attributes = new Dictionary<string, string> { ["comment"] = new string('c', 200_000) };
        WriteArchive(archive, writer =>
        {
            writer.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, longPax, attributes) { DataStream = new MemoryStream([1, 2, 3]) });
            writer.WriteEntry(new GnuTarEntry(TarEntryType.RegularFile, longGnu) { DataStream = new MemoryStream([4, 5]) });
        });

        var entries = TarGzReader.Read(archive, _ => true);

        Assert.Equal([1, 2, 3], Assert.Single(entries, e => e.Path == longPax).Data);
        Assert.Equal([4, 5], Assert.Single(entries, e => e.Path == longGnu).Data);
    }

    /// <summary>A ustar header block of <paramref name="type"/> declaring <paramref name="size"/> bytes (octal), with a valid checksum.</summary>
    private static byte[] TarHeader(string name, char type, long size)
    {
        var header = new byte[512];
        void Put(int offset, string text) => System.Text.Encoding.ASCII.GetBytes(text).CopyTo(header, offset);
        Put(0, name);
        Put(100, "0000644\0");
        Put(108, "0000000\0");
        Put(116, "0000000\0");
        Put(124, Convert.ToString(size, 8).PadLeft(11, '0') + "\0");
        Put(136, "00000000000\0");
        Put(148, "        ");
        header[156] = (byte)type;
        Put(257, "ustar\0");
        Put(263, "00");
        Put(148, Convert.ToString(header.Sum(b => b), 8).PadLeft(6, '0') + "\0 ");
        return header;
    }

    private static void WriteArchive(string path, Action<TarWriter> write)
    {
        using var file = File.Create(path);
        using var gzip = new GZipStream(file, CompressionLevel.Fastest);
        using var writer = new TarWriter(gzip, TarEntryFormat.Pax);
        write(writer);
    }

    private static void Add(TarWriter writer, string path, byte[] data) =>
        writer.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, path) { DataStream = new MemoryStream(data) });

    /// <summary>A seekable stream of <paramref name="length"/> zero bytes that holds none of them.</summary>
    private sealed class ZeroStream(long length) : Stream
    {
        public override bool CanRead => true;

        public override bool CanSeek => true;

        public override bool CanWrite => false;

        public override long Length => length;

        public override long Position { get; set; }

        public override int Read(byte[] buffer, int offset, int count)
        {
            int n = (int)Math.Min(count, length - Position);
            Array.Clear(buffer, offset, n);
            Position += n;
            return n;
        }

        public override long Seek(long offset, SeekOrigin origin) => Position = origin switch
        {
            SeekOrigin.Begin => offset,
            SeekOrigin.Current => Position + offset,
            _ => length + offset,
        };

        public override void Flush()
        {
        }

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
