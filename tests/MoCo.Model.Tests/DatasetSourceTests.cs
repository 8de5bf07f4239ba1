using System.Diagnostics;
using MoCo.Model.Data;
using Xunit.Abstractions;

namespace MoCo.Model.Tests;

public class DatasetSourceTests(ITestOutputHelper output)
{
    [Fact]
    public void Synthetic_spec_opens_the_built_in_set_with_default_or_given_train_count()
    {
        var plain = DataSource.Open("synthetic");
        var sized = DataSource.Open("synthetic:300", new DataSourceOptions { SyntheticTestCount = 50, SyntheticSeed = 5 });

        Assert.Equal((5000, 1000), (plain.Train.Count, plain.Test.Count));
        Assert.Equal((300, 50), (sized.Train.Count, sized.Test.Count));
        Assert.Equal(10, sized.Train.Classes.Count);
        Assert.Contains("synthetic", sized.Description);
        Assert.Throws<ArgumentException>(() => DataSource.Open("synthetic:lots"));
    }

    [Fact]
    public void Directory_and_archive_with_train_and_val_open_alike_and_test_uses_train_labels()
    {
        using var temp = new TempDirectory();
        string tree = Path.Combine(temp.Path, "tree");
        string root = Path.Combine(tree, "data");
        DatasetTestImages.WriteTree(Path.Combine(root, "train"), [("ant", 2), ("bee", 2), ("cow", 1)], firstSeed: 1);
        DatasetTestImages.WriteTree(Path.Combine(root, "val"), [("bee", 1), ("cow", 2)], firstSeed: 100);
        string archive = Path.Combine(temp.Path, "data.tgz");
        DatasetTestImages.WriteTarGz(tree, archive);

        var fromDirectory = DataSource.Open(root);
        var fromArchive = DataSource.Open(archive);

        foreach (var splits in new[] { fromDirectory, fromArchive })
        {
            Assert.Equal(["ant", "bee", "cow"], splits.Train.Classes);
            Assert.Equal(splits.Train.Classes, splits.Test.Classes);
            Assert.Equal(5, splits.Train.Count);
            Assert.Equal([1, 2, 2], Enumerable.Range(0, splits.Test.Count).Select(splits.Test.Label));
            Assert.Equal(8, splits.Report.Found);
            output.WriteLine(splits.Description);
        }
        for (int i = 0; i < 3; i++)
        {
            Assert.Equal(fromDirectory.Test.Image(i).Pixels, fromArchive.Test.Image(i).Pixels);
        }
    }

    [Fact]
    public void Test_classes_missing_from_train_are_an_error_naming_them()
    {
        using var temp = new TempDirectory();
        DatasetTestImages.WriteTree(Path.Combine(temp.Path, "train"), [("ant", 1), ("bee", 1)]);
        DatasetTestImages.WriteTree(Path.Combine(temp.Path, "test"), [("bee", 1), ("yak", 1), ("gnu", 1)]);

        var error = Assert.Throws<InvalidDataException>(() => DataSource.Open(temp.Path));

        Assert.Contains("has classes the train split", error.Message);
        Assert.Contains("gnu, yak", error.Message);
    }

    [Fact]
    public void Empty_train_split_is_an_error()
    {
        using var temp = new TempDirectory();
        Directory.CreateDirectory(Path.Combine(temp.Path, "train", "ant"));
        DatasetTestImages.WriteTree(Path.Combine(temp.Path, "test"), [("ant", 1)]);

        var error = Assert.Throws<InvalidDataException>(() => DataSource.Open(temp.Path));

        Assert.Contains("No images found", error.Message);
        Assert.Contains(Path.Combine(temp.Path, "train"), error.Message);
    }

    [Fact]
    public void Cifar_binary_folder_opens_both_splits()
    {
        using var temp = new TempDirectory();
        string folder = Path.Combine(temp.Path, Cifar10BinaryDataset.FolderName);
        Directory.CreateDirectory(folder);
        var record = new byte[Cifar10BinaryDataset.RecordBytes];
        record[0] = 3;
        foreach (string file in Cifar10BinaryDataset.TrainFiles.Append(Cifar10BinaryDataset.TestFile))
        {
            File.WriteAllBytes(Path.Combine(folder, file), record);
        }

        var splits = DataSource.Open(temp.Path);

        Assert.Equal((5, 1), (splits.Train.Count, splits.Test.Count));
        Assert.Equal(3, splits.Test.Label(0));
        Assert.Contains("CIFAR-10 binary", splits.Description);
    }

    [Fact]
    public void Bad_paths_and_formats_are_clear_errors()
    {
        using var temp = new TempDirectory();
        string missing = Path.Combine(temp.Path, "nowhere");
        string text = Path.Combine(temp.Path, "data.csv");
        File.WriteAllText(text, "a,b");
        DatasetTestImages.WriteTree(Path.Combine(temp.Path, "flat"), [("ant", 1)]);
        string noSplits = Path.Combine(temp.Path, "flat.tar.gz");
        DatasetTestImages.WriteTarGz(Path.Combine(temp.Path, "flat"), noSplits);
        string notGzip = Path.Combine(temp.Path, "fake.tar.gz");
        File.WriteAllText(notGzip, "not gzip");

        Assert.Contains("does not exist", Assert.Throws<FileNotFoundException>(() => DataSource.Open(missing)).Message);
        Assert.Contains("Unknown data format", Assert.Throws<InvalidDataException>(() => DataSource.Open(text)).Message);
        Assert.Contains("no train/ folder", Assert.Throws<InvalidDataException>(() => DataSource.Open(Path.Combine(temp.Path, "flat"))).Message);
        Assert.Contains("no train/ and test/", Assert.Throws<InvalidDataException>(() => DataSource.Open(noSplits)).Message);
        Assert.Contains("fake.tar.gz", Assert.Throws<InvalidDataException>(() => DataSource.Open(notGzip)).Message);
    }

    [SharedDataFact("cifar10-jpg.tar.gz")]
    public void Shared_cifar10_jpg_archive_loads_all_images_and_reports_time_and_memory()
    {
        string archive = SharedDataFactAttribute.SharedDataPath("cifar10-jpg.tar.gz")!;
        long managedBefore = GC.GetTotalMemory(forceFullCollection: true);
        var watch = Stopwatch.StartNew();

        var splits = DataSource.Open(archive);

        watch.Stop();
        long managedAfter = GC.GetTotalMemory(forceFullCollection: true);
        Assert.Equal(50000, splits.Train.Count);
        Assert.Equal(10000, splits.Test.Count);
        Assert.Equal(0, splits.Report.Skipped);
        Assert.Equal(["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"], splits.Train.Classes);
        foreach (var split in new[] { splits.Train, splits.Test })
        {
            Assert.All(Enumerable.Range(0, split.Count), i => Assert.Equal((32, 32), (split.Image(i).Height, split.Image(i).Width)));
            Assert.Equal(split.Count / 10, Enumerable.Range(0, split.Count).Count(i => split.Label(i) == 3));
        }
        output.WriteLine(splits.Description);
        output.WriteLine(splits.Report.ToString());
        output.WriteLine($"load time {watch.Elapsed.TotalSeconds:F2} s on {Environment.ProcessorCount} cores; " +
            $"managed heap grew {(managedAfter - managedBefore) / (1024.0 * 1024.0):F1} MiB " +
            $"(pixels {splits.Report.CachedBytes / (1024.0 * 1024.0):F1} MiB); working set {Environment.WorkingSet / (1024.0 * 1024.0):F0} MiB");
        GC.KeepAlive(splits);
    }
}
