using System.Diagnostics;
using System.IO.Enumeration;

namespace MoCo.Model.Data;

/// <summary>
/// torchvision's ImageFolder: one folder per class, classes are the sorted folder names and a label is an index into
/// them; inside a class, files are walked recursively and ordered by (folder, file name), ordinally; only .jpg .jpeg
/// .png .bmp .webp files count (case-insensitive). The tree may be a directory or a folder inside a .tar.gz, which is
/// streamed once. Images are decoded in parallel and cached as uint8 when the estimated decoded size fits the budget;
/// otherwise paths (directory) or encoded bytes (archive) are kept and decoded on demand. Unreadable images are skipped
/// and counted in <see cref="Report"/>: corrupt, truncated or empty files, sizes beyond <see cref="ImageDecoder"/>'s
/// limits, archive entries beyond <see cref="TarGzReader.MaxEntryBytes"/>, and paths that are not regular files (named
/// pipes, devices, dangling links, loops of links). Symbolic links to files are followed; inside a class folder the walk
/// does not descend into linked folders (class folders themselves may be links), so a loop of links cannot make it
/// endless or list a file twice. Empty class folders are allowed, an empty data set is an error.
/// </summary>
public sealed class ImageFolderDataset : IEncodedImageDataset
{
    private const int EstimateSample = 256;

    private readonly string[] _classes;
    private readonly int[] _labels;
    private readonly string[] _names;
    private readonly ImageU8[]? _cache;
    private readonly byte[][]? _encoded;

    private ImageFolderDataset(string source, string[] classes, int[] labels, string[] names, ImageU8[]? cache, byte[][]? encoded, DataLoadReport report)
    {
        Source = source;
        _classes = classes;
        _labels = labels;
        _names = names;
        _cache = cache;
        _encoded = encoded;
        Report = report;
    }

    /// <summary>The file extensions that count as images (compared case-insensitively).</summary>
    public static IReadOnlyList<string> Extensions { get; } = [".jpg", ".jpeg", ".png", ".bmp", ".webp"];

    /// <summary>Where the images come from: the root directory, or <c>archive!/root</c>.</summary>
    public string Source { get; }

    /// <summary>What the load found, skipped, cached, and how long it took.</summary>
    public DataLoadReport Report { get; }

    /// <summary>True when every image is held decoded in memory.</summary>
    public bool IsCached => _cache is not null;

    /// <inheritdoc />
    public int Count => _labels.Length;

    /// <inheritdoc />
    public IReadOnlyList<string> Classes => _classes;

    /// <inheritdoc />
    public int Label(int index) => _labels[index];

    /// <summary>The path of image <paramref name="index"/> (archive entries as <c>archive!/entry</c>).</summary>
    public string ImagePath(int index) => _names[index];

    /// <summary>
    /// The decoded image. A cached image is shared: callers must not modify its pixels.
    /// Thread-safe; on demand, each call decodes anew.
    /// </summary>
    /// <exception cref="InvalidDataException">On demand, the image cannot be decoded (the message names it).</exception>
    public ImageU8 Image(int index)
    {
        if (_cache is not null)
        {
            return _cache[index];
        }
        if (_encoded is null)
        {
            return ImageDecoder.Decode(_names[index]);
        }
        try
        {
            return ImageDecoder.Decode(_encoded[index]);
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"Cannot decode image '{_names[index]}': {e.Message}", e);
        }
    }

    /// <summary>
    /// The encoded file of image <paramref name="index"/> as it was found (read from disk, or held from the archive), or
    /// null when the data set holds decoded images only (open it with a cache budget of 0 to keep the encoded ones).
    /// </summary>
    /// <exception cref="InvalidDataException">The file cannot be read (the message names it).</exception>
    public byte[]? EncodedBytes(int index)
    {
        if (_encoded is not null)
        {
            return _encoded[index];
        }
        if (_cache is not null)
        {
            return null;
        }
        try
        {
            return Files.RegularFile.ReadAllBytes(_names[index], ImageDecoder.MaxEncodedBytes);
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"Cannot read image '{_names[index]}': {e.Message}", e);
        }
    }

    /// <summary>True when the file name has one of the <see cref="Extensions"/>.</summary>
    public static bool IsImageFile(string path)
    {
        foreach (string extension in Extensions)
        {
            if (path.EndsWith(extension, StringComparison.OrdinalIgnoreCase))
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>The class folder names under <paramref name="root"/>, sorted ordinally (torchvision's find_classes).</summary>
    /// <exception cref="DirectoryNotFoundException">The directory does not exist.</exception>
    public static IReadOnlyList<string> FindClasses(string root)
    {
        if (!Directory.Exists(root))
        {
            throw new DirectoryNotFoundException($"Image folder '{root}' does not exist.");
        }
        var names = Directory.GetDirectories(root).Select(d => Path.GetFileName(d)).ToList();
        names.Sort(StringComparer.Ordinal);
        return names;
    }

    /// <summary>Loads the class folders under a directory.</summary>
    /// <exception cref="DirectoryNotFoundException">The directory does not exist.</exception>
    /// <exception cref="InvalidDataException">No readable image was found, or a class folder is not in <see cref="ImageFolderOptions.Classes"/>.</exception>
    public static ImageFolderDataset FromDirectory(string root, ImageFolderOptions? options = null)
    {
        options ??= new ImageFolderOptions();
        var stopwatch = Stopwatch.StartNew();
        string[] classes = ResolveClasses(root, FindClasses(root), options.Classes);
        var candidates = new List<Candidate>();
        for (int label = 0; label < classes.Length; label++)
        {
            string classDir = Path.Combine(root, classes[label]);
            if (!Directory.Exists(classDir))
            {
                continue;
            }
            var files = WalkFiles(classDir)
                .Where(IsImageFile)
                .Select(f => (Dir: Path.GetDirectoryName(f) ?? "", File: Path.GetFileName(f), Full: f))
                .ToList();
            files.Sort((a, b) =>
            {
                int byDir = string.CompareOrdinal(a.Dir, b.Dir);
                return byDir != 0 ? byDir : string.CompareOrdinal(a.File, b.File);
            });
            candidates.AddRange(files.Select(f => new Candidate(f.Full, label, null, null)));
        }
        return Load(root, classes, candidates, options, stopwatch);
    }

    /// <summary>
    /// Loads the class folders under <paramref name="root"/> inside a .tar.gz ("" for the archive's top level),
    /// streaming the archive once and keeping only the image entries under that folder.
    /// </summary>
    /// <exception cref="FileNotFoundException">The archive does not exist.</exception>
    /// <exception cref="InvalidDataException">The archive cannot be read, no readable image was found, or a class folder is not in <see cref="ImageFolderOptions.Classes"/>.</exception>
    public static ImageFolderDataset FromTarGz(string archivePath, string root = "", ImageFolderOptions? options = null)
    {
        if (!File.Exists(archivePath))
        {
            throw new FileNotFoundException($"Archive '{archivePath}' does not exist.", archivePath);
        }
        var stopwatch = Stopwatch.StartNew();
        string prefix = PrefixOf(root);
        var entries = TarGzReader.Read(archivePath, path => path.StartsWith(prefix, StringComparison.Ordinal) && IsImageFile(path));
        return FromTarEntries(archivePath, entries, root, options, stopwatch);
    }

    /// <summary>
    /// The files under <paramref name="folder"/>, recursively, as <see cref="Directory.EnumerateFiles(string)"/> names them,
    /// without descending into linked folders (a link to a folder above would make the walk endless). Inaccessible
    /// folders are left out; a link to a file is listed like a file.
    /// </summary>
    private static IEnumerable<string> WalkFiles(string folder)
    {
        var walk = new EnumerationOptions
        {
            RecurseSubdirectories = true,
            AttributesToSkip = FileAttributes.None,
            IgnoreInaccessible = true,
            ReturnSpecialDirectories = false,
        };
        return new FileSystemEnumerable<string>(folder, (ref FileSystemEntry entry) => entry.ToSpecifiedFullPath(), walk)
        {
            ShouldIncludePredicate = (ref FileSystemEntry entry) => !entry.IsDirectory,
            ShouldRecursePredicate = (ref FileSystemEntry entry) => (entry.Attributes & FileAttributes.ReparsePoint) == 0,
        };
    }

    /// <summary>The sorted class folder names under <paramref name="root"/> among archive entries.</summary>
    internal static IReadOnlyList<string> FindClasses(IReadOnlyList<TarGzEntry> entries, string root)
    {
        string prefix = PrefixOf(root);
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var entry in entries)
        {
            if (!entry.Path.StartsWith(prefix, StringComparison.Ordinal) || entry.Path.Length == prefix.Length)
            {
                continue;
            }
            string relative = entry.Path[prefix.Length..];
            int slash = relative.IndexOf('/');
            if (slash >= 0)
            {
                names.Add(relative[..slash]);
            }
            else if (entry.IsDirectory)
            {
                names.Add(relative);
            }
        }
        var sorted = names.ToList();
        sorted.Sort(StringComparer.Ordinal);
        return sorted;
    }

    /// <summary>Builds the data set of the folder <paramref name="root"/> from entries already read from an archive.</summary>
    internal static ImageFolderDataset FromTarEntries(string archivePath, IReadOnlyList<TarGzEntry> entries, string root, ImageFolderOptions? options, Stopwatch stopwatch)
    {
        options ??= new ImageFolderOptions();
        string prefix = PrefixOf(root);
        string source = root.Length == 0 ? archivePath : $"{archivePath}!/{root}";
        string[] classes = ResolveClasses(source, FindClasses(entries, root), options.Classes);
        var labelOf = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < classes.Length; i++)
        {
            labelOf[classes[i]] = i;
        }

        var files = new List<(int Label, string Dir, string File, TarGzEntry Entry)>();
        foreach (var entry in entries)
        {
            if (entry.IsDirectory || !entry.Path.StartsWith(prefix, StringComparison.Ordinal) || !IsImageFile(entry.Path))
            {
                continue;
            }
            string relative = entry.Path[prefix.Length..];
            int first = relative.IndexOf('/');
            if (first < 0)
            {
                continue;
            }
            int last = relative.LastIndexOf('/');
            files.Add((labelOf[relative[..first]], relative[..last], relative[(last + 1)..], entry));
        }
        files.Sort((a, b) =>
        {
            int byLabel = a.Label.CompareTo(b.Label);
            if (byLabel != 0)
            {
                return byLabel;
            }
            int byDir = string.CompareOrdinal(a.Dir, b.Dir);
            return byDir != 0 ? byDir : string.CompareOrdinal(a.File, b.File);
        });
        var candidates = files.Select(f => new Candidate($"{archivePath}!/{f.Entry.Path}", f.Label, f.Entry.Data ?? [], f.Entry.Refusal)).ToList();
        return Load(source, classes, candidates, options, stopwatch);
    }

    private static string PrefixOf(string root)
    {
        string trimmed = root.Replace('\\', '/').Trim('/');
        return trimmed.Length == 0 ? "" : trimmed + "/";
    }

    private static string[] ResolveClasses(string source, IReadOnlyList<string> found, IReadOnlyList<string>? given)
    {
        if (given is null)
        {
            return found.ToArray();
        }
        var known = new HashSet<string>(given, StringComparer.Ordinal);
        var unknown = found.Where(c => !known.Contains(c)).ToList();
        if (unknown.Count > 0)
        {
            throw new InvalidDataException(
                $"'{source}' has class folders that are not in the given class list: {string.Join(", ", unknown)}.");
        }
        return given.ToArray();
    }

    private static ImageFolderDataset Load(string source, string[] classes, List<Candidate> candidates, ImageFolderOptions options, Stopwatch stopwatch)
    {
        int n = candidates.Count;
        if (n == 0)
        {
            throw new InvalidDataException(
                $"No images found in '{source}': expected class folders holding {string.Join(" ", Extensions)} files " +
                $"({classes.Length} class folder(s) found).");
        }

        long budget = options.CacheBudgetBytes ?? ImageFolderOptions.DefaultCacheBudgetBytes;
        bool cache = EstimateDecodedBytes(candidates) <= budget;
        var parallel = new ParallelOptions { MaxDegreeOfParallelism = options.MaxDegreeOfParallelism };
        var progress = new ProgressCounter(options.Progress, n);
        var decoded = cache ? new ImageU8[n] : null;
        var readable = new bool[n];

        Parallel.For(0, n, parallel, i =>
        {
            var candidate = candidates[i];
            if (candidate.Refusal is not null)
            {
                readable[i] = false;
            }
            else if (cache)
            {
                readable[i] = TryDecode(candidate, out decoded![i]);
            }
            else
            {
                readable[i] = candidate.Bytes is null
                    ? ImageDecoder.TryReadSize(candidate.Name, out _, out _)
                    : ImageDecoder.TryReadSize(candidate.Bytes, out _, out _);
            }
            progress.Increment();
        });

        var keep = Enumerable.Range(0, n).Where(i => readable[i]).ToArray();
        var skipped = Enumerable.Range(0, n).Where(i => !readable[i]).Select(i => candidates[i].Name).ToList();
        if (keep.Length == 0)
        {
            throw new InvalidDataException(
                $"No readable images in '{source}': all {n} image files found are unreadable (first: {string.Join(", ", skipped.Take(DataLoadReport.MaxNamed))}).");
        }

        int[] labels = keep.Select(i => candidates[i].Label).ToArray();
        string[] names = keep.Select(i => candidates[i].Name).ToArray();
        ImageU8[]? images = decoded is null ? null : keep.Select(i => decoded[i]).ToArray();
        bool fromArchive = candidates[0].Bytes is not null; // archive candidates all carry bytes (empty when refused)
        byte[][]? encoded = images is null && fromArchive ? keep.Select(i => candidates[i].Bytes!).ToArray() : null;
        long cachedBytes = images?.Sum(image => (long)image.ByteCount) ?? 0;

        var report = new DataLoadReport(n, skipped.Count, skipped.Take(DataLoadReport.MaxNamed).ToArray(), cachedBytes, stopwatch.Elapsed);
        return new ImageFolderDataset(source, classes, labels, names, images, encoded, report);
    }

    /// <summary>Decoded bytes of the whole set, estimated from the headers of an evenly spaced sample.</summary>
    private static long EstimateDecodedBytes(List<Candidate> candidates)
    {
        int n = candidates.Count;
        int samples = Math.Min(n, EstimateSample);
        long total = 0;
        int readable = 0;
        for (int s = 0; s < samples; s++)
        {
            var candidate = candidates[(int)((long)s * n / samples)];
            int width = 0;
            int height = 0;
            bool ok = candidate.Refusal is null && (candidate.Bytes is null
                ? ImageDecoder.TryReadSize(candidate.Name, out width, out height)
                : ImageDecoder.TryReadSize(candidate.Bytes, out width, out height));
            if (ok)
            {
                total += (long)width * height * 3;
                readable++;
            }
        }
        return readable == 0 ? 0 : (long)((double)total / readable * n);
    }

    private static bool TryDecode(Candidate candidate, out ImageU8 image)
    {
        try
        {
            image = candidate.Bytes is null ? ImageDecoder.Decode(candidate.Name) : ImageDecoder.Decode(candidate.Bytes);
            return true;
        }
        catch (Exception e) when (e is InvalidDataException or IOException or UnauthorizedAccessException)
        {
            image = default;
            return false;
        }
    }

    /// <summary>
    /// One image file found: its path (or archive!/entry), its label, its encoded bytes when it came from an archive
    /// (empty when the archive refused them), and why the archive refused them (null when it did not).
    /// </summary>
    private readonly record struct Candidate(string Name, int Label, byte[]? Bytes, string? Refusal);

    /// <summary>Counts finished images across threads and reports about every 1% and at the end.</summary>
    private sealed class ProgressCounter(IProgress<int>? progress, int total)
    {
        private readonly int _step = Math.Max(1, total / 100);
        private int _done;

        public void Increment()
        {
            int done = Interlocked.Increment(ref _done);
            if (progress is not null && (done % _step == 0 || done == total))
            {
                progress.Report(done);
            }
        }
    }
}
