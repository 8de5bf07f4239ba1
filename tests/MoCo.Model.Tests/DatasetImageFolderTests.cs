using MoCo.Model.Data;

namespace MoCo.Model.Tests;

public class DatasetImageFolderTests
{
    [Fact]
    public void Classes_are_sorted_folder_names_and_files_sorted_ordinally_within_a_class()
    {
        using var temp = new TempDirectory();
        DatasetTestImages.WriteTree(temp.Path, [("zebra", 2), ("Apple", 1), ("mango", 3)]);
        Directory.CreateDirectory(Path.Combine(temp.Path, "empty"));
        File.WriteAllText(Path.Combine(temp.Path, "mango", "notes.txt"), "not an image");
        File.Move(Path.Combine(temp.Path, "mango", "001.png"), Path.Combine(temp.Path, "mango", "a.png"));
        File.Move(Path.Combine(temp.Path, "mango", "002.png"), Path.Combine(temp.Path, "mango", "B.PNG"));

        var data = ImageFolderDataset.FromDirectory(temp.Path);

        // Ordinal order: upper case before lower case, as Python's sorted().
        Assert.Equal(["Apple", "empty", "mango", "zebra"], data.Classes);
        Assert.Equal(6, data.Count);
        Assert.Equal([0, 2, 2, 2, 3, 3], Enumerable.Range(0, data.Count).Select(data.Label));
        Assert.Equal(["000.png", "B.PNG", "a.png"], Enumerable.Range(1, 3).Select(i => Path.GetFileName(data.ImagePath(i))));
        Assert.Equal(6, data.Report.Found);
        Assert.Equal(0, data.Report.Skipped);
    }

    [Fact]
    public void Decoded_png_equals_the_encoded_rgb_exactly_with_alpha_dropped_and_gray_replicated()
    {
        using var temp = new TempDirectory();
        string dir = Path.Combine(temp.Path, "a");
        Directory.CreateDirectory(dir);
        var rgb = DatasetTestImages.Make(7, 5, 42);
        var rgba = DatasetTestImages.Make(4, 3, 43);
        var gray = new byte[] { 0, 10, 20, 30, 40, 50, 128, 200, 255 };
        File.WriteAllBytes(Path.Combine(dir, "1-rgb.png"), DatasetTestImages.EncodePng(rgb));
        File.WriteAllBytes(Path.Combine(dir, "2-rgba.png"), DatasetTestImages.EncodePng(rgba, withAlpha: true));
        File.WriteAllBytes(Path.Combine(dir, "3-gray.png"), DatasetTestImages.EncodeGrayPng(gray, 3, 3));

        foreach (long budget in new long[] { long.MaxValue, 0 })
        {
            var data = ImageFolderDataset.FromDirectory(temp.Path, new ImageFolderOptions { CacheBudgetBytes = budget });
            Assert.Equal(budget > 0, data.IsCached);

            var first = data.Image(0);
            Assert.Equal((5, 7), (first.Height, first.Width));
            Assert.Equal(rgb.Pixels, first.Pixels);
            Assert.Equal(rgba.Pixels, data.Image(1).Pixels);
            Assert.Equal(gray.SelectMany(g => new[] { g, g, g }).ToArray(), data.Image(2).Pixels);
        }
    }

    [Fact]
    public void Corrupt_image_is_skipped_counted_and_named()
    {
        using var temp = new TempDirectory();
        DatasetTestImages.WriteTree(temp.Path, [("cat", 2), ("dog", 2)]);
        string corrupt = Path.Combine(temp.Path, "dog", "0005.jpg");
        var junk = new byte[500];
        new Random(7).NextBytes(junk);
        File.WriteAllBytes(corrupt, junk);
        File.WriteAllBytes(Path.Combine(temp.Path, "cat", "empty.jpeg"), []);

        foreach (long budget in new long[] { long.MaxValue, 0 })
        {
            var data = ImageFolderDataset.FromDirectory(temp.Path, new ImageFolderOptions { CacheBudgetBytes = budget });

            Assert.Equal(4, data.Count);
            Assert.Equal(6, data.Report.Found);
            Assert.Equal(2, data.Report.Skipped);
            Assert.Contains(corrupt, data.Report.FirstSkipped);
            Assert.Contains(Path.Combine(temp.Path, "cat", "empty.jpeg"), data.Report.FirstSkipped);
            Assert.Equal([0, 0, 1, 1], Enumerable.Range(0, data.Count).Select(data.Label));
            Assert.All(Enumerable.Range(0, data.Count), i => Assert.Equal(8 * 6 * 3, data.Image(i).ByteCount));
        }
    }

    [Fact]
    public void Tar_gz_gives_the_same_images_as_the_directory()
    {
        using var temp = new TempDirectory();
        string tree = Path.Combine(temp.Path, "tree");
        DatasetTestImages.WriteTree(Path.Combine(tree, "data"), [("b", 3), ("a", 2)]);
        File.WriteAllBytes(Path.Combine(tree, "data", "a", "x.JPG"), DatasetTestImages.EncodeJpeg(DatasetTestImages.Make(16, 16, 9)));
        string archive = Path.Combine(temp.Path, "tree.tar.gz");
        DatasetTestImages.WriteTarGz(tree, archive);

        var fromDirectory = ImageFolderDataset.FromDirectory(Path.Combine(tree, "data"));
        var progress = new List<int>();
        var fromArchive = ImageFolderDataset.FromTarGz(archive, "data", new ImageFolderOptions { Progress = new SynchronousProgress(progress) });
        var onDemand = ImageFolderDataset.FromTarGz(archive, "data", new ImageFolderOptions { CacheBudgetBytes = 0 });

        Assert.Equal(fromDirectory.Classes, fromArchive.Classes);
        Assert.Equal(6, fromArchive.Count);
        Assert.False(onDemand.IsCached);
        for (int i = 0; i < fromDirectory.Count; i++)
        {
            Assert.Equal(fromDirectory.Label(i), fromArchive.Label(i));
            Assert.Equal(fromDirectory.Image(i).Pixels, fromArchive.Image(i).Pixels);
            Assert.Equal(fromDirectory.Image(i).Pixels, onDemand.Image(i).Pixels);
            Assert.EndsWith(Path.GetRelativePath(tree, fromDirectory.ImagePath(i)).Replace('\\', '/'), fromArchive.ImagePath(i));
        }
        Assert.Equal(6, progress.Max());
    }

    [Fact]
    public void Empty_data_set_is_an_error_naming_the_folder()
    {
        using var temp = new TempDirectory();
        Directory.CreateDirectory(Path.Combine(temp.Path, "cat"));
        File.WriteAllText(Path.Combine(temp.Path, "cat", "readme.txt"), "no images here");

        var error = Assert.Throws<InvalidDataException>(() => ImageFolderDataset.FromDirectory(temp.Path));

        Assert.Contains("No images found", error.Message);
        Assert.Contains(temp.Path, error.Message);
    }

    [Fact]
    public void All_images_unreadable_is_an_error_naming_them()
    {
        using var temp = new TempDirectory();
        Directory.CreateDirectory(Path.Combine(temp.Path, "cat"));
        File.WriteAllText(Path.Combine(temp.Path, "cat", "bad.png"), "not a png");

        var error = Assert.Throws<InvalidDataException>(() => ImageFolderDataset.FromDirectory(temp.Path));

        Assert.Contains("No readable images", error.Message);
        Assert.Contains("bad.png", error.Message);
    }

    [Fact]
    public void Given_classes_label_a_split_and_reject_unknown_class_folders()
    {
        using var temp = new TempDirectory();
        DatasetTestImages.WriteTree(temp.Path, [("dog", 1)]);

        var data = ImageFolderDataset.FromDirectory(temp.Path, new ImageFolderOptions { Classes = ["cat", "dog"] });
        Assert.Equal(1, data.Label(0));

        var error = Assert.Throws<InvalidDataException>(
            () => ImageFolderDataset.FromDirectory(temp.Path, new ImageFolderOptions { Classes = ["cat"] }));
        Assert.Contains("dog", error.Message);
    }

    /// <summary>Records reports at once on the calling thread (Progress&lt;T&gt; would post them later).</summary>
    private sealed class SynchronousProgress(List<int> values) : IProgress<int>
    {
        public void Report(int value)
        {
            lock (values)
            {
                values.Add(value);
            }
        }
    }
}
