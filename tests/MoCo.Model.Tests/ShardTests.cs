using System.Formats.Tar;
using System.Text;
using MoCo.Model.Data;
using MoCo.Model.Data.Shards;
using MoCo.Model.Training;
using static TorchSharp.torch;

namespace MoCo.Model.Tests;

/// <summary>
/// WebDataset shards: written by <see cref="ShardWriter"/>, scanned and streamed by <see cref="ShardDataset"/> and
/// <see cref="ShardReadAhead"/>. The test images carry their own index in their pixels, so every read can be checked
/// for being the sample asked for.
/// </summary>
public sealed class ShardTests : IDisposable
{
    private const int Samples = 300;
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    /// <summary>Sample i: a 6x5 image whose first two bytes are i (little-endian), the rest seeded noise; label i % 3.</summary>
    private sealed class IndexedImages(int count) : IImageDataset
    {
        public int Count => count;

        public IReadOnlyList<string> Classes { get; } = ["a", "b", "c"];

        public int Label(int index) => index % 3;

        public ImageU8 Image(int index)
        {
            var image = DatasetTestImages.Make(6, 5, index + 1000);
            image.Pixels[0] = (byte)index;
            image.Pixels[1] = (byte)(index >> 8);
            return image;
        }

        public static int IndexOf(ImageU8 image) => image.Pixels[0] | (image.Pixels[1] << 8);
    }

    /// <summary>Writes the indexed images as train shards of about <paramref name="shardBytes"/> and one test shard.</summary>
    private string WriteShards(long shardBytes, ulong? shuffle = 7, int samples = Samples)
    {
        var train = ShardWriter.Write(new IndexedImages(samples), _dir.Path, "train", shardBytes, shuffle, threads: 2);
        ShardWriter.Write(new IndexedImages(30), _dir.Path, "test", 1 << 20, null, threads: 2);
        ShardWriter.WriteClasses(["a", "b", "c"], _dir.Path);
        return train.Pattern;
    }

    private static ShardDataset Open(string pattern, long shuffleBytes, long readAheadBytes) =>
        ShardDataset.Open(pattern, ShardPattern.Expand(pattern), new ShardOptions(shuffleBytes, readAheadBytes));

    [Fact]
    public void Written_shards_must_hold_every_sample_once_with_its_label_and_its_exact_pixels()
    {
        string pattern = WriteShards(shardBytes: 4000);
        var data = Open(pattern, 1 << 20, 1 << 20);

        Assert.True(data.Shards.Count > 5, $"expected several shards, got {data.Shards.Count}");
        Assert.Equal(Samples, data.Count);
        Assert.Equal(new[] { "a", "b", "c" }, data.Classes);
        var source = new IndexedImages(Samples);
        var seen = new HashSet<int>();
        for (int i = 0; i < data.Count; i++)
        {
            var image = data.Image(i);
            int index = IndexedImages.IndexOf(image);
            Assert.True(seen.Add(index), $"sample {index} twice");
            Assert.Equal(index % 3, data.Label(i));
            Assert.Equal(source.Image(index).Pixels, image.Pixels); // lossless PNG: the pixels as they were
        }
        // shuffled before sharding: the first shard is not the first samples in order
        Assert.NotEqual(Enumerable.Range(0, 10), Enumerable.Range(0, 10).Select(i => IndexedImages.IndexOf(data.Image(i))));
    }

    [Fact]
    public void An_epoch_must_be_a_permutation_in_groups_of_shards_within_the_shuffle_buffer_and_depend_only_on_seed_and_epoch()
    {
        string pattern = WriteShards(shardBytes: 4000);
        long shuffle = 10_000;
        var data = Open(pattern, shuffle, 1 << 20);
        var epoch = data.Epoch(seed: 5, epoch: 2, globalBatch: 16);

        var order = Enumerable.Range(0, Samples).Select(p => epoch.Order.SampleAt(p / 16, p % 16)).ToArray();
        Assert.Equal(Enumerable.Range(0, Samples), order.Order());
        Assert.Equal(Samples / 16, epoch.Order.StepsPerEpoch);
        Assert.Equal(Samples, epoch.GroupStarts[^1]);
        Assert.True(epoch.GroupStarts.Length > 3, "several groups");
        for (int g = 0; g + 1 < epoch.GroupStarts.Length; g++)
        {
            var shards = order[epoch.GroupStarts[g]..epoch.GroupStarts[g + 1]].Select(i => data.Record(i).Shard).Distinct().ToList();
            long bytes = Enumerable.Range(0, Samples).Where(i => shards.Contains(data.Record(i).Shard)).Sum(i => (long)data.Record(i).Length);
            // a group holds whole shards: every sample of its shards, and at most the buffer unless it is one shard
            Assert.Equal(epoch.GroupStarts[g + 1] - epoch.GroupStarts[g], Enumerable.Range(0, Samples).Count(i => shards.Contains(data.Record(i).Shard)));
            Assert.True(shards.Count == 1 || bytes <= shuffle, $"group {g}: {shards.Count} shards, {bytes} bytes");
            Assert.Equal(g, epoch.GroupAt(epoch.GroupStarts[g]));
            Assert.Equal(g, epoch.GroupAt(epoch.GroupStarts[g + 1] - 1));
        }

        var again = Open(pattern, shuffle, 4096).Epoch(5, 2, 16); // the read-ahead does not change the order
        Assert.Equal(order, Enumerable.Range(0, Samples).Select(p => again.Order.SampleAt(p / 16, p % 16)));
        var next = data.Epoch(5, 3, 16);
        Assert.NotEqual(order, Enumerable.Range(0, Samples).Select(p => next.Order.SampleAt(p / 16, p % 16)));
        var otherSeed = data.Epoch(6, 2, 16);
        Assert.NotEqual(order, Enumerable.Range(0, Samples).Select(p => otherSeed.Order.SampleAt(p / 16, p % 16)));
    }

    [Fact]
    public void Every_sample_of_an_epoch_must_be_read_once_across_a_change_from_three_workers_to_two()
    {
        string pattern = WriteShards(shardBytes: 3000);
        var data = Open(pattern, shuffleBytes: 8000, readAheadBytes: 2000);
        const int batch = 24;
        var epoch = data.Epoch(seed: 1, epoch: 0, globalBatch: batch);
        int steps = epoch.Order.StepsPerEpoch; // 12: the last 12 samples are dropped, as drop_last
        const int change = 5;
        var taken = new List<int>();

        void Work(BatchLayout layout, int fromStep, int toStep)
        {
            for (int rank = 0; rank < layout.WorldSize; rank++)
            {
                var positions = layout.Positions(rank);
                using var reader = new ShardReadAhead(data, epoch, positions, fromStep);
                for (int step = fromStep; step < toStep; step++)
                {
                    foreach (int p in positions)
                    {
                        int index = epoch.Order.SampleAt(step, p);
                        var image = reader.Image(index);
                        Assert.Equal(IndexedImages.IndexOf(data.Image(index)), IndexedImages.IndexOf(image)); // the bytes of the sample asked for
                        taken.Add(index);
                    }
                }
            }
        }

        Work(new BatchLayout(batch, 6, 3), 0, change);       // generation 1: three workers, steps 0..4
        Work(new BatchLayout(batch, 6, 2), change, steps);    // generation 2: two workers from step 5 on
        var expected = Enumerable.Range(0, steps * batch).Select(p => epoch.Order.SampleAt(p / batch, p % batch)).Order();
        Assert.Equal(expected, taken.Order());
        Assert.Equal(taken.Count, taken.Distinct().Count());
        Assert.Equal(Samples - steps * batch, Samples - taken.Count);
    }

    [Fact]
    public void The_read_ahead_must_hold_at_most_its_budget_plus_one_group()
    {
        string pattern = WriteShards(shardBytes: 3000);
        long readAhead = 3000;
        var data = Open(pattern, shuffleBytes: 6000, readAheadBytes: readAhead);
        var epoch = data.Epoch(seed: 2, epoch: 1, globalBatch: 20);
        var positions = Enumerable.Range(0, 20).ToArray();
        long total = 0;
        long largestGroup = 0;
        for (int g = 0; g + 1 < epoch.GroupStarts.Length; g++)
        {
            long bytes = 0;
            for (int p = epoch.GroupStarts[g]; p < epoch.GroupStarts[g + 1]; p++)
            {
                bytes += data.Record(epoch.Order.SampleAt(p / 20, p % 20)).Length;
            }
            largestGroup = Math.Max(largestGroup, bytes);
            total += bytes;
        }
        using var reader = new ShardReadAhead(data, epoch, positions, fromStep: 0);
        for (int step = 0; step < epoch.Order.StepsPerEpoch; step++)
        {
            Thread.Sleep(10); // a consumer slower than the reader: the reader must wait for room
            foreach (int p in positions)
            {
                reader.Image(epoch.Order.SampleAt(step, p));
            }
        }
        Assert.True(reader.PeakHeldBytes <= readAhead + largestGroup,
            $"held {reader.PeakHeldBytes} bytes, more than the read-ahead {readAhead} plus the largest group {largestGroup}");
        Assert.True(reader.PeakHeldBytes < total / 2, $"held {reader.PeakHeldBytes} of {total} bytes: the reader did not wait");
        Assert.Throws<InvalidOperationException>(() => reader.Image(epoch.Order.SampleAt(0, 0))); // taken already
    }

    [Fact]
    public void Loader_batches_from_shards_must_be_the_same_for_one_worker_and_for_two()
    {
        string pattern = WriteShards(shardBytes: 3000);
        var data = Open(pattern, shuffleBytes: 8000, readAheadBytes: 4000);
        var transform = ViewTransforms.Random(new Augmenter(AugmentationSettings.MocoV2(8)));
        const int batch = 32;

        (Tensor View1, Tensor View2)[] Views(int world, int rank)
        {
            using var loader = new PretrainLoader(data, transform, new BatchLayout(batch, 4, world), rank, seed: 3, threads: 2);
            loader.Start(1, fromStep: 2);
            var views = new List<(Tensor, Tensor)>();
            for (int step = 2; step < 5; step++)
            {
                var b = loader.Next();
                Assert.Equal(step, b.Step);
                views.Add((b.View1, b.View2));
            }
            return views.ToArray();
        }

        var one = Views(1, 0);
        for (int rank = 0; rank < 2; rank++)
        {
            var mine = Views(2, rank);
            // a worker's local row k is global position Positions(rank)[k] of the one-worker batch
            using var rows = tensor(new BatchLayout(batch, 4, 2).Positions(rank).Select(p => (long)p).ToArray());
            for (int s = 0; s < one.Length; s++)
            {
                // bit for bit: the same image bytes and the same random streams, whichever worker builds the row
                Assert.Equal(one[s].View1.index_select(0, rows).data<float>().ToArray(), mine[s].View1.data<float>().ToArray());
                Assert.Equal(one[s].View2.index_select(0, rows).data<float>().ToArray(), mine[s].View2.data<float>().ToArray());
            }
        }
        Assert.NotEqual(one[0].View1.data<float>().ToArray(), one[0].View2.data<float>().ToArray());
    }

    [Fact]
    public void Data_source_must_open_a_shard_pattern_with_its_test_shards_and_class_list()
    {
        string pattern = WriteShards(shardBytes: 4000);
        var splits = DataSource.Open(pattern, new DataSourceOptions { Shards = new ShardOptions(1 << 20, 1 << 20) });

        Assert.Equal(Samples, splits.Train.Count);
        Assert.Equal(30, splits.Test.Count);
        Assert.Equal(new[] { "a", "b", "c" }, splits.Test.Classes);
        Assert.Contains("WebDataset shards", splits.Description, StringComparison.Ordinal);
        Assert.Contains("streamed", splits.Description, StringComparison.Ordinal);
    }

    [Fact]
    public void Shard_patterns_must_expand_ranges_and_name_what_is_wrong()
    {
        Assert.Equal(new[] { "/d/train-008.tar", "/d/train-009.tar", "/d/train-010.tar" }, ShardPattern.Names("/d/train-{008..010}.tar"));
        Assert.Equal(new[] { "/d/one.tar" }, ShardPattern.Names("/d/one.tar"));
        Assert.Contains("ends in .tar", Assert.Throws<ArgumentException>(() => ShardPattern.Names("/d/train-{0..3}.tar.gz")).Message, StringComparison.Ordinal);
        Assert.Contains("one range", Assert.Throws<ArgumentException>(() => ShardPattern.Names("/d/{0..1}-{0..3}.tar")).Message, StringComparison.Ordinal);
        Assert.Contains("FIRST <= LAST", Assert.Throws<ArgumentException>(() => ShardPattern.Names("/d/train-{5..3}.tar")).Message, StringComparison.Ordinal);
        Assert.Contains("more than the", Assert.Throws<ArgumentException>(() => ShardPattern.Names("/d/train-{0..999999999}.tar")).Message, StringComparison.Ordinal);

        string pattern = WriteShards(shardBytes: 4000);
        string beyond = Path.Combine(_dir.Path, "train-{000000..000200}.tar");
        Assert.Contains("train-0000", Assert.Throws<FileNotFoundException>(() => ShardPattern.Expand(beyond)).Message, StringComparison.Ordinal);
        Assert.Contains("must contain 'train'", Assert.Throws<ArgumentException>(() => ShardPattern.TestShards(Path.Combine(_dir.Path, "x-{0..1}.tar"))).Message, StringComparison.Ordinal);
        foreach (var test in Directory.GetFiles(_dir.Path, "test-*.tar"))
        {
            File.Delete(test);
        }
        Assert.Contains("No test shards", Assert.Throws<FileNotFoundException>(() => ShardPattern.TestShards(pattern)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_truncated_or_corrupt_shard_must_be_refused_with_its_name_and_byte()
    {
        string pattern = WriteShards(shardBytes: 4000);
        var shards = ShardPattern.Expand(pattern);
        var options = new ShardOptions(1 << 20, 1 << 20);
        byte[] original = File.ReadAllBytes(shards[1]);

        File.WriteAllBytes(shards[1], original[..(original.Length / 2 + 100)]);
        var truncated = Assert.Throws<InvalidDataException>(() => ShardDataset.Open(pattern, shards, options));
        Assert.Contains(shards[1], truncated.Message, StringComparison.Ordinal);
        Assert.Contains("truncated", truncated.Message, StringComparison.Ordinal);

        var corrupt = (byte[])original.Clone();
        corrupt[1024 + 3] ^= 0x55; // the second entry's name: its checksum no longer matches
        File.WriteAllBytes(shards[1], corrupt);
        var bad = Assert.Throws<InvalidDataException>(() => ShardDataset.Open(pattern, shards, options));
        Assert.Contains("at byte 1024", bad.Message, StringComparison.Ordinal);
        Assert.Contains("checksum", bad.Message, StringComparison.Ordinal);

        // a PAX header that declares more metadata than accepted is refused before it is read
        using (var stream = File.Create(shards[1]))
        using (var writer = new TarWriter(stream, TarEntryFormat.Pax))
        {
            var entry = new PaxTarEntry(TarEntryType.RegularFile, "000.cls", new Dictionary<string, string> { ["comment"] = new string('x', 2 << 20) })
            {
                DataStream = new MemoryStream("1"u8.ToArray()),
            };
            writer.WriteEntry(entry);
        }
        Assert.Contains("metadata entry", Assert.Throws<InvalidDataException>(() => ShardDataset.Open(pattern, shards, options)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Samples_without_image_or_label_or_with_a_label_out_of_range_must_be_skipped_counted_and_named()
    {
        string path = Path.Combine(_dir.Path, "train-0.tar");
        var png = DatasetTestImages.EncodePng(DatasetTestImages.Make(4, 4, 1));
        using (var stream = File.Create(path))
        using (var writer = new TarWriter(stream, TarEntryFormat.Gnu))
        {
            void Add(string name, byte[] content) => writer.WriteEntry(new GnuTarEntry(TarEntryType.RegularFile, name) { DataStream = new MemoryStream(content) });
            // a key longer than 100 bytes: a GNU long-name entry carries it
            string longKey = "deep/" + new string('k', 120);
            Add(longKey + ".png", png);
            Add(longKey + ".cls", "2"u8.ToArray());
            Add("good.png", png);
            Add("good.json", "{}"u8.ToArray()); // another field of the sample: ignored
            Add("good.cls", " 1\n"u8.ToArray());
            Add("nolabel.png", png);
            Add("noimage.cls", "0"u8.ToArray());
            Add("far.png", png);
            Add("far.cls", "7"u8.ToArray());
            Add("word.png", png);
            Add("word.cls", "-1"u8.ToArray());
            Add("seg.seg.png", png); // KEY.seg.png is another field, not the image
            Add("seg.cls", "0"u8.ToArray());
        }
        ShardWriter.WriteClasses(["a", "b", "c"], _dir.Path);
        var data = ShardDataset.Open(path, [path], new ShardOptions(1 << 20, 1 << 20));

        Assert.Equal(2, data.Count);
        Assert.Equal([2, 1], new[] { data.Label(0), data.Label(1) });
        Assert.Equal(7, data.Report.Found);
        Assert.Equal(5, data.Report.Skipped);
        string named = string.Join("\n", data.Report.FirstSkipped);
        Assert.Contains("nolabel (no .cls label)", named, StringComparison.Ordinal);
        Assert.Contains("noimage (no image entry)", named, StringComparison.Ordinal);
        Assert.Contains("far (the .cls entry holds '7', not a class index in 0..2)", named, StringComparison.Ordinal);
        Assert.Contains("word (the .cls entry holds '-1'", named, StringComparison.Ordinal);
        Assert.Equal(DatasetTestImages.Make(4, 4, 1).Pixels, data.Image(0).Pixels);
    }

    [Fact]
    public void A_corrupt_image_in_a_shard_must_fail_the_read_naming_the_shard()
    {
        string path = Path.Combine(_dir.Path, "train-0.tar");
        using (var stream = File.Create(path))
        using (var writer = new TarWriter(stream, TarEntryFormat.Ustar))
        {
            writer.WriteEntry(new UstarTarEntry(TarEntryType.RegularFile, "0.jpg") { DataStream = new MemoryStream(Encoding.ASCII.GetBytes("not a jpeg at all")) });
            writer.WriteEntry(new UstarTarEntry(TarEntryType.RegularFile, "0.cls") { DataStream = new MemoryStream("0"u8.ToArray()) });
        }
        var data = ShardDataset.Open(path, [path], new ShardOptions(1 << 20, 1 << 20));
        var error = Assert.Throws<InvalidDataException>(() => data.Image(0));
        Assert.Contains(path, error.Message, StringComparison.Ordinal);
        Assert.Contains("at byte 512", error.Message, StringComparison.Ordinal);

        var epoch = data.Epoch(0, 0, 1);
        using var reader = new ShardReadAhead(data, epoch, [0], 0);
        Assert.Contains(path, Assert.Throws<InvalidDataException>(() => reader.Image(0)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Images_found_encoded_must_be_copied_into_shards_byte_for_byte()
    {
        string tree = Path.Combine(_dir.Path, "tree");
        DatasetTestImages.WriteTree(Path.Combine(tree, "train"), [("cat", 3), ("dog", 4)]);
        DatasetTestImages.WriteTree(Path.Combine(tree, "test"), [("cat", 1), ("dog", 1)], firstSeed: 50);
        var folder = DataSource.Open(tree, new DataSourceOptions { CacheBudgetBytes = 0 });
        string out1 = Path.Combine(_dir.Path, "shards");
        var report = ShardWriter.Write(folder.Train, out1, "train", 1 << 20, shuffleSeed: null, threads: 1);
        ShardWriter.Write(folder.Test, out1, "test", 1 << 20, shuffleSeed: null, threads: 1);
        ShardWriter.WriteClasses(folder.Train.Classes, out1);
        var shards = DataSource.Open(report.Pattern);

        Assert.Equal(new[] { "cat", "dog" }, shards.Train.Classes);
        var files = (ImageFolderDataset)folder.Train;
        var streamed = (ShardDataset)shards.Train;
        for (int i = 0; i < files.Count; i++)
        {
            Assert.Equal(File.ReadAllBytes(files.ImagePath(i)), streamed.EncodedBytes(i));
            Assert.Equal(files.Label(i), streamed.Label(i));
        }
    }

    [Fact]
    public void A_sample_index_must_cost_the_stated_bytes()
    {
        Assert.Equal(ShardDataset.BytesPerSample, System.Runtime.CompilerServices.Unsafe.SizeOf<ShardRecord>());
    }
}
