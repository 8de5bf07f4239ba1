using MoCo.Model.Checkpoints;
using MoCo.Model.Data;
using Xunit.Abstractions;

namespace MoCo.Model.Tests;

/// <summary>
/// Every crafted file of tests/corpus, and the hostile paths made at run time (named pipes, links), through the real
/// entry points: each gives a clear error naming its problem, or is skipped and counted, and none crashes the process
/// (no native overflow, OutOfMemoryException, NullReferenceException or OverflowException) or blocks it.
/// </summary>
public sealed class HostileInputCorpusTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(60);

    /// <summary>Each crafted image and a fragment of the message its decoding must fail with.</summary>
    private static readonly Dictionary<string, string> s_images = new()
    {
        ["empty.png"] = "empty (0 bytes)",
        ["jpeg-65500x1024-side-too-long.jpg"] = "image size 65500x1024 exceeds the 16384-pixel limit on a side",
        ["jpeg-65500x65500-side-too-long.jpg"] = "image size 65500x65500 exceeds the 16384-pixel limit on a side",
        ["jpeg-truncated.jpg"] = "truncated",
        ["png-100000x100000-side-too-long.png"] = "image size 100000x100000 exceeds the 16384-pixel limit on a side",
        ["png-16384x8192-too-many-pixels.png"] = "image size 16384x8192 (134217728 pixels) exceeds the 67108864-pixel limit",
        ["png-32768x32769-overflows-int.png"] = "image size 32768x32769 exceeds the 16384-pixel limit on a side",
        ["png-header-only.png"] = "not a recognised image format",
        ["png-truncated.png"] = "truncated",
        ["text-named.jpg"] = "not a recognised image format",
    };

    /// <summary>Each crafted archive and a fragment of the message opening it as a data set must fail with (null: it opens).</summary>
    private static readonly Dictionary<string, string?> s_archives = new()
    {
        ["entry-claims-2pow62-base256.tar.gz"] = "(last entry read: 'train/a/x.png', 4611686018427387904 bytes declared): the archive ends early (truncated)",
        ["entry-claims-3gib.tar.gz"] = "(last entry read: 'train/a/x.png', 3221225472 bytes declared): the archive ends early (truncated)",
        ["entry-negative-size.tar.gz"] = "negative",
        ["garbage-header.tar.gz"] = "as a gzip-compressed tar archive",
        ["gnu-long-name-claims-2gib.tar.gz"] = "the tar header at byte 0 declares a 2147483647-byte GNU long name, more than the 1048576 bytes accepted",
        ["hostile-images.tar.gz"] = null,
        ["not-gzip.tar.gz"] = "as a gzip-compressed tar archive",
        ["pax-header-claims-1536mib.tar.gz"] = "the tar header at byte 0 declares a 1610612736-byte PAX extended header, more than the 1048576 bytes accepted",
        ["pax-header-claims-3gib.tar.gz"] = "the tar header at byte 0 declares a 3221225472-byte PAX extended header, more than the 1048576 bytes accepted",
        ["truncated.tar.gz"] = "(last entry read: 'test/a/ok.png', 218 bytes declared): the archive ends early (truncated)",
    };

    /// <summary>Each crafted checkpoint and a fragment of the reason it must be refused for (null: it is valid).</summary>
    private static readonly Dictionary<string, string?> s_checkpoints = new()
    {
        ["deeply-nested-json.mocockpt"] = "malformed header: ",
        ["duplicate-names.mocockpt"] = "malformed header: tensor name 'w' appears twice",
        ["header-length-4gib.mocockpt"] = "malformed header: header length 4294967295 exceeds the 67108864-byte limit",
        ["length-overflows-long.mocockpt"] = "malformed header: tensor 'w' has a Shape [2305843009213693952] of float32 whose byte size overflows 64 bits",
        ["lengths-wrap-around.mocockpt"] = "malformed header: tensor 'huge0' (4611686018427387904 bytes at Offset 0) extends beyond the 16-byte data section",
        ["negative-dimension.mocockpt"] = "malformed header: tensor 'w' has a negative dimension in its Shape [-1, 4]",
        ["negative-epoch.mocockpt"] = "malformed header: Epoch -1 is negative",
        ["negative-offset.mocockpt"] = "malformed header: tensor 'w' is at Offset -16, expected 0",
        ["negative-step.mocockpt"] = "malformed header: Step -5 is negative",
        ["not-json.mocockpt"] = "malformed header: ",
        ["null-document.mocockpt"] = "malformed header: the header is null",
        ["null-dtype.mocockpt"] = "malformed header: tensor 'w' has unknown DType ''",
        ["null-extra-value.mocockpt"] = "malformed header: Extra['seed'] is null",
        ["null-run-id.mocockpt"] = "malformed header: RunId is missing or empty",
        ["null-shape.mocockpt"] = "malformed header: tensor 'w' has no Shape",
        ["null-tensor-entry.mocockpt"] = "malformed header: tensor #0 of the index is null",
        ["null-tensor-index.mocockpt"] = "malformed header: the tensor index (Tensors) is missing",
        ["null-tensor-name.mocockpt"] = "malformed header: tensor #0 has no Name",
        ["shape-overflows-long.mocockpt"] = "malformed header: tensor 'w' has a Shape [4294967296, 4294967296, 2] of float32 whose byte size overflows 64 bits",
        ["tensor-beyond-file.mocockpt"] = "malformed header: tensor 'w' (4096 bytes at Offset 0) extends beyond the 16-byte data section",
        ["too-many-dimensions.mocockpt"] = "malformed header: tensor 'w' has 201 dimensions, more than the 64 allowed",
        ["unknown-dtype.mocockpt"] = "malformed header: tensor 'w' has unknown DType 'complex128'",
        ["valid.mocockpt"] = null,
    };

    [Fact]
    public void Every_corpus_file_has_its_expected_outcome_here_and_a_line_in_the_readme()
    {
        // a file added to the corpus without an expectation would go untested; one listed but missing tests nothing
        string readme = File.ReadAllText(Path.Combine(HostileCorpus.Root, "README.md"));
        foreach (var (folder, expected) in new (string, IEnumerable<string>)[]
                 {
                     ("images", s_images.Keys), ("archives", s_archives.Keys), ("checkpoints", s_checkpoints.Keys),
                 })
        {
            Assert.Equal(expected.Order(StringComparer.Ordinal), HostileCorpus.Files(folder).Select(Path.GetFileName));
            Assert.All(expected, name => Assert.Contains($"`{folder}/{name}`", readme, StringComparison.Ordinal));
        }
    }

    [Fact]
    public void Every_crafted_file_gives_a_clear_error_or_a_counted_skip_and_never_a_crash()
    {
        using var temp = new TempDirectory();
        var pipes = new List<string>();

        // images, one at a time: from a path and from bytes
        foreach (var (name, problem) in s_images)
        {
            string path = HostileCorpus.PathOf("images", name);
            var e = Assert.Throws<InvalidDataException>(() => ImageDecoder.Decode(path));
            output.WriteLine($"{name}: {e.Message}");
            AssertNames(e.Message, path, problem);
            Assert.False(ImageDecoder.TryReadSize(path, out _, out _) && problem.Contains("exceeds", StringComparison.Ordinal), name);
            byte[] bytes = File.ReadAllBytes(path);
            var fromBytes = Assert.Throws<InvalidDataException>(() => ImageDecoder.Decode(bytes));
            AssertNames(fromBytes.Message, bytes.Length == 0 ? "empty file" : problem);
        }

        // the crafted images and a few good ones as an archive
        string plain = Path.Combine(temp.Path, "plain");
        Directory.CreateDirectory(Path.Combine(plain, "train", "a"));
        Directory.CreateDirectory(Path.Combine(plain, "test", "a"));
        byte[] good = DatasetTestImages.EncodePng(DatasetTestImages.Make(8, 6, 1));
        File.WriteAllBytes(Path.Combine(plain, "train", "a", "good-1.png"), good);
        File.WriteAllBytes(Path.Combine(plain, "train", "a", "good-2.png"), good);
        File.WriteAllBytes(Path.Combine(plain, "test", "a", "good.png"), good);
        foreach (string name in s_images.Keys)
        {
            File.Copy(HostileCorpus.PathOf("images", name), Path.Combine(plain, "train", "a", name));
        }
        string packed = Path.Combine(temp.Path, "packed.tar.gz");
        DatasetTestImages.WriteTarGz(plain, packed);
        var fromArchive = DataSource.Open(packed);
        Assert.Equal(3 + s_images.Count, fromArchive.Report.Found);
        Assert.Equal(s_images.Count, fromArchive.Report.Skipped);
        Assert.Equal(2, fromArchive.Train.Count);

        // the same as a folder, with hostile paths beside them: a named pipe, links dangling, looping, to a device,
        // to a folder, to a good image outside the tree, and two folder links that loop
        string root = Path.Combine(temp.Path, "data");
        string classDir = Path.Combine(root, "train", "a");
        Directory.CreateDirectory(classDir);
        Directory.CreateDirectory(Path.Combine(root, "test", "a"));
        File.WriteAllBytes(Path.Combine(classDir, "good-1.png"), good);
        File.WriteAllBytes(Path.Combine(classDir, "good-2.png"), good);
        File.WriteAllBytes(Path.Combine(root, "test", "a", "good.png"), good);
        foreach (string name in s_images.Keys)
        {
            File.Copy(HostileCorpus.PathOf("images", name), Path.Combine(classDir, name));
        }
        string outside = Path.Combine(temp.Path, "outside.png");
        File.WriteAllBytes(outside, good);
        var hostilePaths = new Dictionary<string, string>
        {
            ["fifo.jpg"] = "not a regular file (a named pipe",
            ["link-dangling.jpg"] = "a dangling symbolic link (its target 'nowhere.jpg' does not exist)",
            ["link-loop-1.jpg"] = "a symbolic link that cannot be followed",
            ["link-loop-2.jpg"] = "a symbolic link that cannot be followed",
            ["link-to-dev-zero.jpg"] = "not a regular file (a named pipe, socket or device",
        };
        HostileCorpus.MakeFifo(Path.Combine(classDir, "fifo.jpg"));
        pipes.Add(Path.Combine(classDir, "fifo.jpg"));
        File.CreateSymbolicLink(Path.Combine(classDir, "link-dangling.jpg"), "nowhere.jpg");
        File.CreateSymbolicLink(Path.Combine(classDir, "link-loop-1.jpg"), "link-loop-2.jpg");
        File.CreateSymbolicLink(Path.Combine(classDir, "link-loop-2.jpg"), "link-loop-1.jpg");
        File.CreateSymbolicLink(Path.Combine(classDir, "link-to-dev-zero.jpg"), "/dev/zero");
        File.CreateSymbolicLink(Path.Combine(classDir, "link-to-folder.jpg"), root);   // a folder: not an image file, not listed
        File.CreateSymbolicLink(Path.Combine(classDir, "link-outside.png"), outside);  // a link to a regular file: followed
        Directory.CreateSymbolicLink(Path.Combine(classDir, "loop-a"), ".");         // two folder loops: never descended into
        Directory.CreateSymbolicLink(Path.Combine(classDir, "loop-b"), "..");
        foreach (var (name, problem) in hostilePaths)
        {
            string path = Path.Combine(classDir, name);
            var e = HostileCorpus.Within(Limit, $"decoding {name}", () => Assert.Throws<InvalidDataException>(() => ImageDecoder.Decode(path)), [.. pipes]);
            AssertNames(e.Message, path, problem);
            Assert.False(HostileCorpus.Within(Limit, $"reading the size of {name}", () => ImageDecoder.TryReadSize(path, out _, out _), [.. pipes]));
        }
        Assert.Equal(8 * 6 * 3, ImageDecoder.Decode(Path.Combine(classDir, "link-outside.png")).ByteCount);

        int bad = s_images.Count + hostilePaths.Count;
        var expectedSkipped = s_images.Keys.Concat(hostilePaths.Keys).Select(n => Path.Combine(classDir, n)).ToHashSet();
        var splits = HostileCorpus.Within(Limit, "opening the folder", () => DataSource.Open(root, new DataSourceOptions { MaxDegreeOfParallelism = 2 }), [.. pipes]);
        output.WriteLine(splits.Description);
        output.WriteLine(splits.Report.ToString());
        Assert.Equal(3 + bad + 1, splits.Report.Found);          // good-1, good-2, link-outside, test/a/good, each bad file once
        Assert.Equal(bad, splits.Report.Skipped);
        Assert.Equal(DataLoadReport.MaxNamed, splits.Report.FirstSkipped.Count);
        Assert.All(splits.Report.FirstSkipped, name => Assert.Contains(name, expectedSkipped));
        Assert.Equal(3, splits.Train.Count);
        Assert.All(Enumerable.Range(0, splits.Train.Count), i => Assert.Equal(8 * 6 * 3, splits.Train.Image(i).ByteCount));

        // decoded on demand (no cache): the header check skips what it can; whatever remains fails by name when read
        var onDemand = HostileCorpus.Within(Limit, "opening the folder on demand",
            () => ImageFolderDataset.FromDirectory(Path.Combine(root, "train"), new ImageFolderOptions { CacheBudgetBytes = 0 }), [.. pipes]);
        Assert.False(onDemand.IsCached);
        for (int i = 0; i < onDemand.Count; i++)
        {
            string path = onDemand.ImagePath(i);
            if (Path.GetFileName(path).StartsWith("good", StringComparison.Ordinal) || path.EndsWith("link-outside.png", StringComparison.Ordinal))
            {
                Assert.Equal(8 * 6 * 3, onDemand.Image(i).ByteCount);
            }
            else
            {
                AssertNames(Assert.Throws<InvalidDataException>(() => onDemand.Image(i)).Message, path, s_images[Path.GetFileName(path)]);
            }
        }

        // crafted archives
        foreach (var (name, problem) in s_archives)
        {
            string path = HostileCorpus.PathOf("archives", name);
            if (problem is null)
            {
                var opened = DataSource.Open(path);
                output.WriteLine($"{name}: {opened.Report}");
                Assert.Equal((6, 4), (opened.Report.Found, opened.Report.Skipped));
                Assert.Equal(["train/a/empty.png", "train/a/overflows-int.png", "train/a/truncated.png", "test/a/too-many-pixels.png"],
                    opened.Report.FirstSkipped.Select(n => n[(n.IndexOf("!/", StringComparison.Ordinal) + 2)..]));
                continue;
            }
            var e = Assert.Throws<InvalidDataException>(() => DataSource.Open(path));
            output.WriteLine($"{name}: {e.Message}");
            AssertNames(e.Message, path, problem);
        }

        // crafted checkpoints: one by one, then together in a run's folder beside an older valid one
        foreach (var (name, reason) in s_checkpoints)
        {
            string path = HostileCorpus.PathOf("checkpoints", name);
            if (reason is null)
            {
                using var checkpoint = CheckpointFile.Read(path, "corpus-run");
                Assert.Equal([1f, 2f, 3f, 4f], checkpoint["w"].data<float>().ToArray());
                continue;
            }
            var verify = Assert.Throws<CheckpointRejectedException>(() => CheckpointFile.Verify(path));
            output.WriteLine($"{name}: {verify.Reason}");
            AssertNames(verify.Message, path, reason);
            AssertNames(Assert.Throws<CheckpointRejectedException>(() => CheckpointFile.Read(path, "corpus-run")).Reason, reason);
        }

        var run = new CheckpointDirectory(Path.Combine(temp.Path, "run"));
        Directory.CreateDirectory(run.Folder);
        string valid = run.PathFor(0, 0);
        File.Copy(HostileCorpus.PathOf("checkpoints", "valid.mocockpt"), valid);
        var crafted = s_checkpoints.Where(c => c.Value is not null).Select(c => (Name: c.Key, Reason: c.Value!)).ToList();
        var reasons = new Dictionary<string, string>();
        for (int i = 0; i < crafted.Count; i++)
        {
            string path = run.PathFor(0, i + 1);
            File.Copy(HostileCorpus.PathOf("checkpoints", crafted[i].Name), path);
            reasons[path] = crafted[i].Reason;
        }
        string fifo = run.PathFor(1, 0);
        HostileCorpus.MakeFifo(fifo);
        pipes.Add(fifo);
        reasons[fifo] = "truncated (the file is empty (0 bytes), or not a regular file";
        string dangling = run.PathFor(1, 1);
        File.CreateSymbolicLink(dangling, "gone.mocockpt");
        reasons[dangling] = "not a regular file: a dangling symbolic link";

        var latest = HostileCorpus.Within(Limit, "looking for the latest checkpoint", () => run.Latest("corpus-run"), [.. pipes]);
        Assert.Equal(valid, latest.Found?.Path);
        Assert.Equal(reasons.Keys.Order(StringComparer.Ordinal), latest.Skipped.Select(s => s.Path).Order(StringComparer.Ordinal));
        Assert.All(latest.Skipped, s => AssertNames(s.Reason, reasons[s.Path]));
    }

    private static void AssertNames(string message, params string[] expected)
    {
        foreach (string fragment in expected)
        {
            Assert.True(message.Contains(fragment, StringComparison.Ordinal), $"expected the message to name \"{fragment}\", but it says: {message}");
        }
    }
}
