using MoCo.Model.Data;

namespace MoCo.Model.Tests;

public class DatasetCifarBinaryTests
{
    private const int Plane = 32 * 32;

    /// <summary>The byte a test record holds at (record seed, channel, pixel): distinct enough that a plane or axis mix-up shows.</summary>
    private static byte Value(int seed, int channel, int pixel) => (byte)(seed * 31 + channel * 85 + pixel * 7);

    private static byte[] Records(params (int Label, int Seed)[] records)
    {
        var bytes = new byte[records.Length * Cifar10BinaryDataset.RecordBytes];
        for (int r = 0; r < records.Length; r++)
        {
            int offset = r * Cifar10BinaryDataset.RecordBytes;
            bytes[offset] = (byte)records[r].Label;
            for (int c = 0; c < 3; c++)
            {
                for (int p = 0; p < Plane; p++)
                {
                    bytes[offset + 1 + c * Plane + p] = Value(records[r].Seed, c, p);
                }
            }
        }
        return bytes;
    }

    /// <summary>Writes cifar-10-batches-bin under <paramref name="parent"/>: two records per train batch, three in the test batch.</summary>
    private static string WriteBatches(string parent, bool withMeta = true)
    {
        string folder = Path.Combine(parent, Cifar10BinaryDataset.FolderName);
        Directory.CreateDirectory(folder);
        for (int b = 0; b < 5; b++)
        {
            File.WriteAllBytes(Path.Combine(folder, Cifar10BinaryDataset.TrainFiles[b]), Records((2 * b, 10 * b), (2 * b + 1, 10 * b + 1)));
        }
        File.WriteAllBytes(Path.Combine(folder, Cifar10BinaryDataset.TestFile), Records((9, 100), (0, 101), (5, 102)));
        if (withMeta)
        {
            File.WriteAllText(Path.Combine(folder, Cifar10BinaryDataset.MetaFile), "c0\nc1\nc2\nc3\nc4\nc5\nc6\nc7\nc8\nc9\n\n");
        }
        return folder;
    }

    private static void AssertHwc(ImageU8 image, int seed)
    {
        Assert.Equal((32, 32), (image.Height, image.Width));
        foreach (var (y, x) in new[] { (0, 0), (0, 1), (1, 0), (17, 5), (31, 31) })
        {
            for (int c = 0; c < 3; c++)
            {
                Assert.Equal(Value(seed, c, y * 32 + x), image.Pixels[(y * 32 + x) * 3 + c]);
            }
        }
    }

    [Fact]
    public void Records_become_hwc_images_with_their_labels_and_meta_class_names()
    {
        using var temp = new TempDirectory();
        string folder = WriteBatches(temp.Path);

        // The folder itself and its parent both work.
        var train = Cifar10BinaryDataset.Load(temp.Path, train: true);
        var test = Cifar10BinaryDataset.Load(folder, train: false);

        Assert.Equal(10, train.Count);
        Assert.Equal(Enumerable.Range(0, 10), Enumerable.Range(0, 10).Select(train.Label));
        Assert.Equal(["c0", "c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8", "c9"], train.Classes);
        for (int i = 0; i < 10; i++)
        {
            AssertHwc(train.Image(i), 10 * (i / 2) + i % 2);
        }
        Assert.Equal(3, test.Count);
        Assert.Equal([9, 0, 5], Enumerable.Range(0, 3).Select(test.Label));
        AssertHwc(test.Image(2), 102);
    }

    [Fact]
    public void Archive_gives_the_same_records_as_the_folder_and_default_class_names_without_meta()
    {
        using var temp = new TempDirectory();
        string tree = Path.Combine(temp.Path, "tree");
        WriteBatches(tree, withMeta: false);
        string archive = Path.Combine(temp.Path, "cifar-10-binary.tar.gz");
        DatasetTestImages.WriteTarGz(tree, archive);

        var (train, test) = Cifar10BinaryDataset.LoadTarGz(archive);
        var folderTrain = Cifar10BinaryDataset.Load(tree, train: true);

        Assert.Equal(Cifar10BinaryDataset.DefaultClasses, train.Classes);
        Assert.Equal(10, train.Count);
        Assert.Equal(3, test.Count);
        for (int i = 0; i < train.Count; i++)
        {
            Assert.Equal(folderTrain.Label(i), train.Label(i));
            Assert.Equal(folderTrain.Image(i).Pixels, train.Image(i).Pixels);
        }
        AssertHwc(test.Image(0), 100);

        var splits = DataSource.Open(archive);
        Assert.Equal((10, 3), (splits.Train.Count, splits.Test.Count));
        Assert.Contains($"{archive}!/{Cifar10BinaryDataset.FolderName}", splits.Description);
    }

    [Fact]
    public void Truncated_batch_is_an_error_naming_the_file_and_expected_length()
    {
        using var temp = new TempDirectory();
        string folder = WriteBatches(temp.Path);
        string testBatch = Path.Combine(folder, Cifar10BinaryDataset.TestFile);
        File.WriteAllBytes(testBatch, File.ReadAllBytes(testBatch)[..(2 * Cifar10BinaryDataset.RecordBytes + 100)]);

        var error = Assert.Throws<InvalidDataException>(() => Cifar10BinaryDataset.Load(folder, train: false));

        Assert.Contains(testBatch, error.Message);
        Assert.Contains("truncated", error.Message);
        Assert.Contains($"{2 * Cifar10BinaryDataset.RecordBytes + 100} bytes", error.Message);
        Assert.Contains($"{3 * Cifar10BinaryDataset.RecordBytes}", error.Message);
        Assert.Contains("30730000", error.Message);
    }

    [Fact]
    public void A_batch_file_that_is_a_link_is_followed_and_one_that_is_a_named_pipe_is_refused_by_name()
    {
        // the length was the link's own (a few bytes: "truncated"), and reading a pipe blocked until someone wrote to it
        using var temp = new TempDirectory();
        string folder = WriteBatches(temp.Path);
        string testBatch = Path.Combine(folder, Cifar10BinaryDataset.TestFile);
        string stored = Path.Combine(temp.Path, "stored.bin");
        File.Move(testBatch, stored);
        File.CreateSymbolicLink(testBatch, stored);

        Assert.Equal(3, Cifar10BinaryDataset.Load(folder, train: false).Count);

        File.Delete(testBatch);
        HostileCorpus.MakeFifo(testBatch);
        var error = HostileCorpus.Within(TimeSpan.FromSeconds(30), "loading a named pipe as a batch",
            () => Assert.Throws<InvalidDataException>(() => Cifar10BinaryDataset.Load(folder, train: false)), testBatch);
        Assert.Contains($"CIFAR-10 file '{testBatch}' cannot be read: empty (0 bytes), or not a regular file", error.Message);
    }

    [Fact]
    public void Label_outside_the_classes_is_an_error()
    {
        using var temp = new TempDirectory();
        string folder = WriteBatches(temp.Path);
        File.WriteAllBytes(Path.Combine(folder, Cifar10BinaryDataset.TestFile), Records((10, 1)));

        var error = Assert.Throws<InvalidDataException>(() => Cifar10BinaryDataset.Load(folder, train: false));

        Assert.Contains("label 10", error.Message);
    }
}
