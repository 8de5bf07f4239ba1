using System.Formats.Tar;
using System.IO.Compression;

namespace MoCo.Model.Data;

/// <summary>Streams a .tar.gz once, keeping the directories and only the files a filter asks for.</summary>
internal static class TarGzReader
{
    /// <summary>True when the path names a gzip-compressed tar archive (.tar.gz or .tgz).</summary>
    public static bool IsTarGz(string path) =>
        path.EndsWith(".tar.gz", StringComparison.OrdinalIgnoreCase) || path.EndsWith(".tgz", StringComparison.OrdinalIgnoreCase);

    /// <summary>Reads the archive in one pass; files whose normalised path <paramref name="keep"/> rejects are skipped unread.</summary>
    /// <exception cref="InvalidDataException">The file is not a gzip-compressed tar archive, or is truncated.</exception>
    public static List<TarGzEntry> Read(string archivePath, Func<string, bool> keep)
    {
        var entries = new List<TarGzEntry>();
        try
        {
            using var file = new FileStream(archivePath, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20);
            using var gzip = new GZipStream(file, CompressionMode.Decompress);
            using var tar = new TarReader(gzip);
            TarEntry? entry;
            while ((entry = tar.GetNextEntry()) is not null)
            {
                string path = Normalise(entry.Name);
                if (path.Length == 0)
                {
                    continue;
                }
                if (entry.EntryType == TarEntryType.Directory)
                {
                    entries.Add(new TarGzEntry(path, null));
                    continue;
                }
                bool isFile = entry.EntryType is TarEntryType.RegularFile or TarEntryType.V7RegularFile or TarEntryType.ContiguousFile;
                if (!isFile || !keep(path))
                {
                    continue;
                }
                byte[] data = new byte[entry.Length];
                entry.DataStream?.ReadExactly(data);
                entries.Add(new TarGzEntry(path, data));
            }
        }
        catch (Exception e) when (e is InvalidDataException or EndOfStreamException or FormatException)
        {
            throw new InvalidDataException($"Cannot read '{archivePath}' as a gzip-compressed tar archive: {e.Message}", e);
        }
        return entries;
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
