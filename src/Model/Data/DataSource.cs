using System.Diagnostics;

namespace MoCo.Model.Data;

/// <summary>
/// Opens a data set from a spec: <c>synthetic</c> or <c>synthetic:N</c> (N train images); a directory holding
/// <c>train/</c> and <c>test/</c> (or <c>val/</c>) class folders; a .tar.gz/.tgz with the same layout (at its top level
/// or under one folder); a CIFAR-10 binary folder (<c>cifar-10-batches-bin</c> or its parent) or its .tar.gz archive;
/// WebDataset shards, <c>/data/train-{000000..001281}.tar</c> (<see cref="Shards.ShardPattern"/>), streamed.
/// </summary>
public static class DataSource
{
    /// <summary>The keyword of the built-in synthetic data set.</summary>
    public const string SyntheticSpec = "synthetic";

    private static readonly string[] TestSplitNames = ["test", "val"];

    /// <summary>Opens the train and test splits named by <paramref name="spec"/>.</summary>
    /// <exception cref="ArgumentException">The spec is empty or a malformed <c>synthetic:N</c>.</exception>
    /// <exception cref="FileNotFoundException">The path does not exist.</exception>
    /// <exception cref="InvalidDataException">
    /// Unknown format, no images found, or the test split has classes the train split lacks (the message names the problem).
    /// </exception>
    public static DatasetSplits Open(string spec, DataSourceOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(spec);
        options ??= new DataSourceOptions();
        var stopwatch = Stopwatch.StartNew();

        if (TryParseSynthetic(spec, out int? trainCount))
        {
            return OpenSynthetic(trainCount ?? options.SyntheticTrainCount, options);
        }
        if (Shards.ShardPattern.IsShardSpec(spec))
        {
            return OpenShards(spec, options, stopwatch);
        }
        if (Directory.Exists(spec))
        {
            return OpenDirectory(spec, options, stopwatch);
        }
        if (File.Exists(spec))
        {
            if (!TarGzReader.IsTarGz(spec))
            {
                throw new InvalidDataException(
                    $"Unknown data format '{spec}': expected '{SyntheticSpec}[:N]', a directory with train/ and test/ (or val/) class folders, " +
                    "a .tar.gz/.tgz of such a tree, CIFAR-10 binary batches (a folder or its .tar.gz), or WebDataset shards (train-{000000..000009}.tar).");
            }
            return OpenArchive(spec, options, stopwatch);
        }
        throw new FileNotFoundException($"Data path '{spec}' does not exist.", spec);
    }

    private static DatasetSplits OpenShards(string pattern, DataSourceOptions options, Stopwatch stopwatch)
    {
        var trainShards = Shards.ShardPattern.Expand(pattern);
        var testShards = Shards.ShardPattern.TestShards(pattern);
        var train = Shards.ShardDataset.Open(pattern, trainShards, options.Shards);
        var test = Shards.ShardDataset.Open($"{testShards[0]} and {testShards.Count - 1} more", testShards, options.Shards, train.Classes);
        var report = train.Report.Combine(test.Report) with { Elapsed = stopwatch.Elapsed };
        string skipped = report.Skipped > 0 ? $", {report.Skipped} samples skipped ({string.Join(", ", report.FirstSkipped)})" : "";
        string description =
            $"WebDataset shards '{pattern}': {train.Count} train samples in {trainShards.Count} shards, {test.Count} test samples in " +
            $"{testShards.Count} shards, {train.Classes.Count} classes{skipped}; streamed (shuffle buffer {options.Shards.ShuffleBytes >> 20} MiB, " +
            $"read-ahead {options.Shards.ReadAheadBytes >> 20} MiB)";
        return new DatasetSplits(train, test, report, description);
    }

    private static bool TryParseSynthetic(string spec, out int? trainCount)
    {
        trainCount = null;
        if (spec.Equals(SyntheticSpec, StringComparison.OrdinalIgnoreCase))
        {
            return true;
        }
        if (!spec.StartsWith(SyntheticSpec + ":", StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }
        string count = spec[(SyntheticSpec.Length + 1)..];
        if (!int.TryParse(count, out int n) || n <= 0)
        {
            throw new ArgumentException($"Bad data spec '{spec}': expected '{SyntheticSpec}:N' with N a positive number of train images.", nameof(spec));
        }
        trainCount = n;
        return true;
    }

    private static DatasetSplits OpenSynthetic(int trainCount, DataSourceOptions options)
    {
        var train = new SyntheticTexturesDataset(trainCount, train: true, options.SyntheticSeed);
        var test = new SyntheticTexturesDataset(options.SyntheticTestCount, train: false, options.SyntheticSeed);
        var report = new DataLoadReport(train.Count + test.Count, 0, Array.Empty<string>(), 0, TimeSpan.Zero);
        string description =
            $"synthetic textures (seed {options.SyntheticSeed}): {train.Count} train, {test.Count} test images, " +
            $"{train.Classes.Count} classes, {SyntheticTexturesDataset.DefaultSize}x{SyntheticTexturesDataset.DefaultSize}, rendered on first use";
        return new DatasetSplits(train, test, report, description);
    }

    private static DatasetSplits OpenDirectory(string path, DataSourceOptions options, Stopwatch stopwatch)
    {
        string? cifarFolder = Cifar10BinaryDataset.FindFolder(path);
        if (cifarFolder is not null)
        {
            var cifarTrain = Cifar10BinaryDataset.Load(cifarFolder, train: true);
            var cifarTest = Cifar10BinaryDataset.Load(cifarFolder, train: false);
            return CifarSplits(cifarTrain, cifarTest, stopwatch);
        }

        string trainRoot = Path.Combine(path, "train");
        string? testName = TestSplitNames.FirstOrDefault(name => Directory.Exists(Path.Combine(path, name)));
        if (!Directory.Exists(trainRoot) || testName is null)
        {
            string has = Directory.Exists(trainRoot) ? "it has train/ but neither test/ nor val/" : "it has no train/ folder";
            throw new InvalidDataException(
                $"Unknown data format in directory '{path}' ({has}): expected train/ and test/ (or val/) class folders, " +
                $"or CIFAR-10 binary batches ({Cifar10BinaryDataset.FolderName}).");
        }
        string testRoot = Path.Combine(path, testName);
        CheckTestClasses(testRoot, ImageFolderDataset.FindClasses(testRoot), trainRoot, ImageFolderDataset.FindClasses(trainRoot));

        var train = ImageFolderDataset.FromDirectory(trainRoot, FolderOptions(options, null, null, 0));
        var test = ImageFolderDataset.FromDirectory(testRoot, FolderOptions(options, train.Classes, train.Report.CachedBytes, train.Report.Found));
        return FolderSplits($"image folders in '{path}' (train/, {testName}/)", train, test, stopwatch);
    }

    private static DatasetSplits OpenArchive(string archivePath, DataSourceOptions options, Stopwatch stopwatch)
    {
        var entries = TarGzReader.Read(archivePath, p => ImageFolderDataset.IsImageFile(p) || Cifar10BinaryDataset.IsBatchEntry(p));
        if (Cifar10BinaryDataset.HasBatches(entries))
        {
            var (cifarTrain, cifarTest) = Cifar10BinaryDataset.FromTarEntries(archivePath, entries, stopwatch);
            return CifarSplits(cifarTrain, cifarTest, stopwatch);
        }
        if (!entries.Any(e => !e.IsDirectory && ImageFolderDataset.IsImageFile(e.Path)))
        {
            throw new InvalidDataException(
                $"No images found in archive '{archivePath}': expected train/ and test/ (or val/) folders of class folders holding " +
                $"{string.Join(" ", ImageFolderDataset.Extensions)} files, or CIFAR-10 binary batches.");
        }

        var (trainRoot, testRoot) = FindArchiveSplits(entries)
            ?? throw new InvalidDataException(
                $"Unknown data layout in archive '{archivePath}': it holds images but no train/ and test/ (or val/) folders side by side.");
        CheckTestClasses($"{archivePath}!/{testRoot}", ImageFolderDataset.FindClasses(entries, testRoot),
            $"{archivePath}!/{trainRoot}", ImageFolderDataset.FindClasses(entries, trainRoot));

        var train = ImageFolderDataset.FromTarEntries(archivePath, entries, trainRoot, FolderOptions(options, null, null, 0), stopwatch);
        var test = ImageFolderDataset.FromTarEntries(archivePath, entries, testRoot,
            FolderOptions(options, train.Classes, train.Report.CachedBytes, train.Report.Found), Stopwatch.StartNew());
        return FolderSplits($"image folders in archive '{archivePath}' ({trainRoot}/, {testRoot}/)", train, test, stopwatch);
    }

    /// <summary>The shallowest folder pair (…/train, …/test or …/val) that are siblings among the archive's paths.</summary>
    private static (string Train, string Test)? FindArchiveSplits(IReadOnlyList<TarGzEntry> entries)
    {
        var folders = new HashSet<string>(StringComparer.Ordinal);
        foreach (var entry in entries)
        {
            string path = entry.Path;
            if (entry.IsDirectory)
            {
                folders.Add(path);
            }
            for (int slash = path.LastIndexOf('/'); slash > 0; slash = path.LastIndexOf('/', slash - 1))
            {
                folders.Add(path[..slash]);
            }
        }
        var trains = folders
            .Where(f => f == "train" || f.EndsWith("/train", StringComparison.Ordinal))
            .OrderBy(f => f.Count(ch => ch == '/'))
            .ThenBy(f => f, StringComparer.Ordinal);
        foreach (string train in trains)
        {
            string parent = train[..^"train".Length];
            foreach (string name in TestSplitNames)
            {
                if (folders.Contains(parent + name))
                {
                    return (train, parent + name);
                }
            }
        }
        return null;
    }

    private static void CheckTestClasses(string testSource, IReadOnlyList<string> testClasses, string trainSource, IReadOnlyList<string> trainClasses)
    {
        var known = new HashSet<string>(trainClasses, StringComparer.Ordinal);
        var missing = testClasses.Where(c => !known.Contains(c)).ToList();
        if (missing.Count > 0)
        {
            throw new InvalidDataException(
                $"The test split '{testSource}' has classes the train split '{trainSource}' lacks: {string.Join(", ", missing)}.");
        }
    }

    private static ImageFolderOptions FolderOptions(DataSourceOptions options, IReadOnlyList<string>? classes, long? alreadyCached, int progressOffset)
    {
        long budget = options.CacheBudgetBytes ?? ImageFolderOptions.DefaultCacheBudgetBytes;
        return new ImageFolderOptions
        {
            CacheBudgetBytes = Math.Max(0, budget - (alreadyCached ?? 0)),
            MaxDegreeOfParallelism = options.MaxDegreeOfParallelism,
            Progress = options.Progress is null ? null : new OffsetProgress(options.Progress, progressOffset),
            Classes = classes,
        };
    }

    private static DatasetSplits FolderSplits(string source, ImageFolderDataset train, ImageFolderDataset test, Stopwatch stopwatch)
    {
        var report = train.Report.Combine(test.Report) with { Elapsed = stopwatch.Elapsed };
        string held = (train.IsCached, test.IsCached) switch
        {
            (true, true) => $"decoded and cached ({report.CachedBytes / (1024.0 * 1024.0):F1} MiB)",
            (false, false) => "decoded on demand",
            _ => $"train {(train.IsCached ? "cached" : "decoded on demand")}, test {(test.IsCached ? "cached" : "decoded on demand")}",
        };
        string skipped = report.Skipped > 0 ? $", {report.Skipped} unreadable skipped" : "";
        string description = $"{source}: {train.Count} train, {test.Count} test images, {train.Classes.Count} classes{skipped}; {held}";
        return new DatasetSplits(train, test, report, description);
    }

    private static DatasetSplits CifarSplits(Cifar10BinaryDataset train, Cifar10BinaryDataset test, Stopwatch stopwatch)
    {
        var report = train.Report.Combine(test.Report) with { Elapsed = stopwatch.Elapsed };
        string description =
            $"CIFAR-10 binary '{train.Source}': {train.Count} train, {test.Count} test images, {train.Classes.Count} classes, 32x32, " +
            $"held in memory ({report.CachedBytes / (1024.0 * 1024.0):F1} MiB)";
        return new DatasetSplits(train, test, report, description);
    }

    /// <summary>Adds the images of the splits already loaded, so that progress counts across both splits.</summary>
    private sealed class OffsetProgress(IProgress<int> inner, int offset) : IProgress<int>
    {
        public void Report(int value) => inner.Report(offset + value);
    }
}
