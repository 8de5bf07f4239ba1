using System.Diagnostics;
using MoCo.Model.Files;

namespace MoCo.Model.Data;

/// <summary>
/// The official CIFAR-10 binary version: <c>cifar-10-batches-bin/</c> with data_batch_1..5.bin (train) and test_batch.bin
/// (test), each record one label byte and 3072 pixel bytes (the 32x32 R plane, then G, then B), class names in
/// batches.meta.txt. Read from the folder, its parent, or the <c>cifar-10-binary.tar.gz</c> archive; converted to HWC
/// and held in memory (about 150 MiB for the train split).
/// </summary>
public sealed class Cifar10BinaryDataset : IImageDataset
{
    /// <summary>Image side in pixels.</summary>
    public const int Side = 32;

    /// <summary>Bytes in one record: the label byte and three 32x32 planes.</summary>
    public const int RecordBytes = 1 + 3 * Side * Side;

    /// <summary>Records in one official batch file.</summary>
    public const int OfficialRecordsPerFile = 10000;

    /// <summary>The folder the official archive unpacks to.</summary>
    public const string FolderName = "cifar-10-batches-bin";

    /// <summary>The file holding the class names, one a line.</summary>
    public const string MetaFile = "batches.meta.txt";

    /// <summary>The test batch file.</summary>
    public const string TestFile = "test_batch.bin";

    private readonly string[] _classes;
    private readonly byte[] _labels;
    private readonly ImageU8[] _images;

    private Cifar10BinaryDataset(string source, string[] classes, byte[] labels, ImageU8[] images, DataLoadReport report)
    {
        Source = source;
        _classes = classes;
        _labels = labels;
        _images = images;
        Report = report;
    }

    /// <summary>The train batch files, in order.</summary>
    public static IReadOnlyList<string> TrainFiles { get; } =
        ["data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"];

    /// <summary>The CIFAR-10 class names, used when batches.meta.txt is absent.</summary>
    public static IReadOnlyList<string> DefaultClasses { get; } =
        ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];

    /// <summary>Where the records came from: the folder, or <c>archive!/folder</c>.</summary>
    public string Source { get; }

    /// <summary>Records found, time taken and bytes held.</summary>
    public DataLoadReport Report { get; }

    /// <inheritdoc />
    public int Count => _labels.Length;

    /// <inheritdoc />
    public IReadOnlyList<string> Classes => _classes;

    /// <inheritdoc />
    public int Label(int index) => _labels[index];

    /// <summary>The image, held in memory and shared: callers must not modify its pixels. Thread-safe.</summary>
    public ImageU8 Image(int index) => _images[index];

    /// <summary>The folder holding the batch files: <paramref name="path"/> itself or its <c>cifar-10-batches-bin</c> child; null when neither holds them.</summary>
    public static string? FindFolder(string path)
    {
        foreach (string candidate in new[] { path, Path.Combine(path, FolderName) })
        {
            if (File.Exists(Path.Combine(candidate, TestFile)) || File.Exists(Path.Combine(candidate, TrainFiles[0])))
            {
                return candidate;
            }
        }
        return null;
    }

    /// <summary>Loads the train or test split from the batch folder or its parent.</summary>
    /// <exception cref="DirectoryNotFoundException">No batch folder at <paramref name="path"/>.</exception>
    /// <exception cref="FileNotFoundException">A batch file of the split is missing.</exception>
    /// <exception cref="InvalidDataException">
    /// A batch file is truncated, larger than <see cref="TarGzReader.MaxEntryBytes"/>, not a regular file, or holds a label
    /// outside the classes.
    /// </exception>
    public static Cifar10BinaryDataset Load(string path, bool train)
    {
        var stopwatch = Stopwatch.StartNew();
        string folder = FindFolder(path)
            ?? throw new DirectoryNotFoundException($"'{path}' holds no CIFAR-10 binary batches ({TestFile}, {TrainFiles[0]}, ... or a {FolderName} folder).");
        string metaPath = Path.Combine(folder, MetaFile);
        string[] classes = File.Exists(metaPath) ? ParseClasses(System.Text.Encoding.UTF8.GetString(ReadFile(metaPath))) : DefaultClasses.ToArray();
        var batches = new List<(string Name, byte[] Data)>();
        foreach (string file in train ? TrainFiles : [TestFile])
        {
            string filePath = Path.Combine(folder, file);
            if (!File.Exists(filePath))
            {
                throw new FileNotFoundException($"CIFAR-10 batch file '{filePath}' is missing.", filePath);
            }
            batches.Add((filePath, ReadFile(filePath)));
        }
        return FromBatches(folder, classes, batches, stopwatch);
    }

    /// <summary>Loads both splits from the official <c>cifar-10-binary.tar.gz</c>, streamed once.</summary>
    /// <exception cref="FileNotFoundException">The archive does not exist.</exception>
    /// <exception cref="InvalidDataException">The archive cannot be read, lacks a batch file, or a batch is truncated.</exception>
    public static (Cifar10BinaryDataset Train, Cifar10BinaryDataset Test) LoadTarGz(string archivePath)
    {
        if (!File.Exists(archivePath))
        {
            throw new FileNotFoundException($"Archive '{archivePath}' does not exist.", archivePath);
        }
        var stopwatch = Stopwatch.StartNew();
        var entries = TarGzReader.Read(archivePath, IsBatchEntry);
        return FromTarEntries(archivePath, entries, stopwatch);
    }

    /// <summary>True when an archive path names a batch file or the class-name file.</summary>
    internal static bool IsBatchEntry(string path)
    {
        string name = FileName(path);
        return name == TestFile || name == MetaFile || TrainFiles.Contains(name);
    }

    /// <summary>True when the entries read from an archive hold CIFAR-10 batches.</summary>
    internal static bool HasBatches(IReadOnlyList<TarGzEntry> entries) =>
        entries.Any(e => !e.IsDirectory && (FileName(e.Path) == TestFile || FileName(e.Path) == TrainFiles[0]));

    /// <summary>Both splits from entries already read from an archive.</summary>
    internal static (Cifar10BinaryDataset Train, Cifar10BinaryDataset Test) FromTarEntries(string archivePath, IReadOnlyList<TarGzEntry> entries, Stopwatch stopwatch)
    {
        TarGzEntry? Find(string name)
        {
            var entry = entries.FirstOrDefault(e => !e.IsDirectory && FileName(e.Path) == name);
            return entry?.Refusal is { } refusal
                ? throw new InvalidDataException($"Archive '{archivePath}': the CIFAR-10 file {entry.Path} was refused: {refusal}.")
                : entry;
        }

        var meta = Find(MetaFile);
        string[] classes = meta is null ? DefaultClasses.ToArray() : ParseClasses(System.Text.Encoding.UTF8.GetString(meta.Data!));
        var split = new Cifar10BinaryDataset[2];
        for (int s = 0; s < 2; s++)
        {
            var batches = new List<(string Name, byte[] Data)>();
            foreach (string file in s == 0 ? TrainFiles : [TestFile])
            {
                var entry = Find(file) ?? throw new InvalidDataException($"Archive '{archivePath}' lacks the CIFAR-10 batch file {file}.");
                string name = $"{archivePath}!/{entry.Path}";
                CheckLength(name, entry.Data!.Length);
                batches.Add((name, entry.Data));
            }
            string first = batches[0].Name;
            string folder = first[..Math.Max(0, first.LastIndexOf('/'))];
            split[s] = FromBatches(folder, classes, batches, stopwatch);
        }
        return (split[0], split[1]);
    }

    private static string FileName(string path) => path[(path.LastIndexOf('/') + 1)..];

    /// <summary>A batch or class-name file, whole: a regular file (links followed) of at most <see cref="TarGzReader.MaxEntryBytes"/>; a batch's length is checked.</summary>
    private static byte[] ReadFile(string path)
    {
        byte[] bytes;
        try
        {
            bytes = RegularFile.ReadAllBytes(path, TarGzReader.MaxEntryBytes);
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"CIFAR-10 file '{path}' cannot be read: {e.Message}", e);
        }
        if (!path.EndsWith(MetaFile, StringComparison.Ordinal))
        {
            CheckLength(path, bytes.Length);
        }
        return bytes;
    }

    private static string[] ParseClasses(string text)
    {
        var classes = text.Split('\n').Select(line => line.Trim()).Where(line => line.Length > 0).ToArray();
        return classes.Length > 0 ? classes : DefaultClasses.ToArray();
    }

    private static void CheckLength(string name, long length)
    {
        if (length == 0 || length % RecordBytes != 0)
        {
            long expected = length == 0 ? RecordBytes : (length / RecordBytes + 1) * RecordBytes;
            throw new InvalidDataException(
                $"CIFAR-10 batch file '{name}' is truncated or not a batch: {length} bytes, expected a whole number of " +
                $"{RecordBytes}-byte records (next whole length {expected}; an official batch is " +
                $"{(long)OfficialRecordsPerFile * RecordBytes} bytes).");
        }
    }

    private static Cifar10BinaryDataset FromBatches(string source, string[] classes, List<(string Name, byte[] Data)> batches, Stopwatch stopwatch)
    {
        int total = batches.Sum(b => b.Data.Length / RecordBytes);
        var labels = new byte[total];
        var images = new ImageU8[total];
        const int plane = Side * Side;
        int index = 0;
        foreach (var (name, data) in batches)
        {
            int records = data.Length / RecordBytes;
            for (int r = 0; r < records; r++, index++)
            {
                int offset = r * RecordBytes;
                byte label = data[offset];
                if (label >= classes.Length)
                {
                    throw new InvalidDataException(
                        $"CIFAR-10 batch file '{name}', record {r}: label {label} is outside the {classes.Length} classes.");
                }
                labels[index] = label;
                var hwc = new byte[3 * plane];
                for (int p = 0; p < plane; p++)
                {
                    hwc[3 * p] = data[offset + 1 + p];
                    hwc[3 * p + 1] = data[offset + 1 + plane + p];
                    hwc[3 * p + 2] = data[offset + 1 + 2 * plane + p];
                }
                images[index] = new ImageU8(hwc, Side, Side);
            }
        }
        var report = new DataLoadReport(total, 0, Array.Empty<string>(), (long)total * 3 * plane, stopwatch.Elapsed);
        return new Cifar10BinaryDataset(source, classes, labels, images, report);
    }
}
