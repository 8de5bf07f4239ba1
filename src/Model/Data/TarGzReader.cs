using System.Formats.Tar;
using System.IO.Compression;
using MoCo.Model.Files;

namespace MoCo.Model.Data;

/// <summary>
/// Streams a .tar.gz once, keeping the directories and only the files a filter asks for. Every header is hostile
/// until checked: a metadata block is bounded before the tar reader allocates it (<see cref="MaxMetadataBytes"/>,
/// see <see cref="TarHeaderGuardStream"/>), a kept file is bounded before its bytes are allocated
/// (<see cref="MaxEntryBytes"/>: a larger one is refused unread and reported, so a data set skips and counts it like a
/// corrupt image), and so are all kept bytes together (an archive that would not fit is refused with a message).
/// </summary>
internal static class TarGzReader
{
    /// <summary>
    /// The largest file kept from an archive: <see cref="ImageDecoder.MaxEncodedBytes"/> (256 MiB), since the files
    /// kept are images, CIFAR-10 batches (30 MB each) and a class list; a larger entry is refused unread.
    /// </summary>
    public const int MaxEntryBytes = ImageDecoder.MaxEncodedBytes;

    /// <summary>
    /// The largest PAX or GNU metadata block accepted: 1 MiB. They hold a long path, a link target and a few
    /// attributes (a few KiB at most in real archives); the tar reader allocates them whole.
    /// </summary>
    public const int MaxMetadataBytes = 1024 * 1024;

    /// <summary>Bytes charged to the kept total for each kept entry besides its data: its record and path.</summary>
    private const int EntryOverheadBytes = 256;

    /// <summary>
    /// The most bytes kept from one archive when the caller sets no limit: half the memory available to the process
    /// (as <see cref="ImageFolderOptions.DefaultCacheBudgetBytes"/>), so that an archive too large to hold is refused
    /// with a message that says so instead of ending in an <see cref="OutOfMemoryException"/>.
    /// </summary>
    public static long DefaultMaxKeptBytes => GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / 2;

    /// <summary>True when the path names a gzip-compressed tar archive (.tar.gz or .tgz).</summary>
    public static bool IsTarGz(string path) =>
        path.EndsWith(".tar.gz", StringComparison.OrdinalIgnoreCase) || path.EndsWith(".tgz", StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// Reads the archive in one pass; files whose normalised path <paramref name="keep"/> rejects are skipped unread,
    /// and so are links, devices and other entries that are neither files nor directories. A kept file of more than
    /// <see cref="MaxEntryBytes"/> is returned without data, with its <see cref="TarGzEntry.Refusal"/>.
    /// </summary>
    /// <param name="archivePath">The archive, a regular file (symbolic links are followed).</param>
    /// <param name="keep">Which files to keep, by normalised path.</param>
    /// <param name="maxKeptBytes">The most bytes the kept entries may take together; null: <see cref="DefaultMaxKeptBytes"/>.</param>
    /// <exception cref="FileNotFoundException">The archive does not exist.</exception>
    /// <exception cref="InvalidDataException">
    /// The file is not a regular file, not a gzip-compressed tar archive, is truncated or malformed, declares an
    /// oversized metadata block, or keeps more than <paramref name="maxKeptBytes"/>; the message names the archive,
    /// the last entry read and the problem.
    /// </exception>
    public static List<TarGzEntry> Read(string archivePath, Func<string, bool> keep, long? maxKeptBytes = null)
    {
        try
        {
            RegularFile.Length(archivePath);
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"Cannot read archive '{archivePath}': {e.Message}", e);
        }

        long budget = maxKeptBytes ?? DefaultMaxKeptBytes;
        var entries = new List<TarGzEntry>();
        long kept = 0;
        string? last = null;
        long lastLength = 0;
        string? overBudget = null;
        try
        {
            using var file = new FileStream(archivePath, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20);
            using var gzip = new GZipStream(file, CompressionMode.Decompress);
            using var guard = new TarHeaderGuardStream(gzip, MaxMetadataBytes);
            using var tar = new TarReader(guard);
            TarEntry? entry;
            while ((entry = tar.GetNextEntry()) is not null)
            {
                last = entry.Name;
                lastLength = entry.Length;
                string path = Normalise(entry.Name);
                if (path.Length == 0)
                {
                    continue;
                }
                if (entry.EntryType == TarEntryType.Directory)
                {
                    if (!TryCharge(ref kept, EntryOverheadBytes + 2L * path.Length, budget))
                    {
                        overBudget = path;
                        break;
                    }
                    entries.Add(new TarGzEntry(path, null));
                    continue;
                }
                bool isFile = entry.EntryType is TarEntryType.RegularFile or TarEntryType.V7RegularFile or TarEntryType.ContiguousFile;
                if (!isFile || !keep(path))
                {
                    continue;
                }
                long length = entry.Length;
                if (length < 0)
                {
                    throw new InvalidDataException($"entry '{path}' declares a negative size ({length} bytes)");
                }
                bool oversized = length > MaxEntryBytes;
                if (!TryCharge(ref kept, EntryOverheadBytes + 2L * path.Length + (oversized ? 0 : length), budget))
                {
                    overBudget = path;
                    break;
                }
                if (oversized)
                {
                    // left unread: the reader skips its data on the way to the next header
                    entries.Add(new TarGzEntry(path, null, $"{length} bytes, more than the {MaxEntryBytes}-byte limit for one archive entry"));
                    continue;
                }
                byte[] data = length == 0 ? [] : GC.AllocateUninitializedArray<byte>((int)length);
                if (length > 0)
                {
                    (entry.DataStream ?? throw new InvalidDataException($"entry '{path}' declares {length} bytes but has no data")).ReadExactly(data);
                }
                entries.Add(new TarGzEntry(path, data));
            }
        }
        catch (Exception e) when (e is InvalidDataException or EndOfStreamException or FormatException or InvalidOperationException
                                      or OverflowException or ArgumentException or NotSupportedException)
        {
            // System.Formats.Tar reports a malformed header with any of these; all mean "not a sound archive"
            string where = last is null ? "" : $" (last entry read: '{last}', {lastLength} bytes declared)";
            string problem = e is EndOfStreamException ? $"the archive ends early (truncated): {e.Message}" : e.Message;
            throw new InvalidDataException($"Cannot read '{archivePath}' as a gzip-compressed tar archive{where}: {problem}", e);
        }
        if (overBudget is not null)
        {
            throw new InvalidDataException(
                $"Archive '{archivePath}' holds more than the {budget} bytes that may be kept in memory from it " +
                $"(reached at entry '{overBudget}'): unpack it into a directory, whose images are read from disk on demand.");
        }
        return entries;
    }

    /// <summary>Adds <paramref name="bytes"/> to <paramref name="kept"/> unless that would exceed <paramref name="budget"/>.</summary>
    private static bool TryCharge(ref long kept, long bytes, long budget)
    {
        if (bytes > budget - kept)
        {
            return false;
        }
        kept += bytes;
        return true;
    }

    private static string Normalise(string name)
    {
        string path = name.Replace('\\', '/');
        while (path.StartsWith("./", StringComparison.Ordinal))
        {
            path = path[2..];
        }
        return path.Trim('/');
    }
}
