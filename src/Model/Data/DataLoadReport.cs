namespace MoCo.Model.Data;

/// <summary>
/// What loading a data set found: how many images, how many were skipped as unreadable (with the first few
/// named), how much was cached in memory and how long it took. The data sets never log; the caller prints this.
/// </summary>
/// <param name="Found">Image files (or records) found, readable or not.</param>
/// <param name="Skipped">
/// Images skipped as unreadable: not decodable (corrupt, truncated, empty), beyond the decoder's or the archive reader's size
/// limits, or not a regular file (a named pipe, a device, a dangling link or a loop of links).
/// </param>
/// <param name="FirstSkipped">The first <see cref="MaxNamed"/> skipped images, by path (archive entries as <c>archive!/entry</c>).</param>
/// <param name="CachedBytes">Bytes of decoded pixels held in memory (0 when images are decoded on demand).</param>
/// <param name="Elapsed">Wall-clock time of the load (reading, decoding, caching).</param>
public sealed record DataLoadReport(int Found, int Skipped, IReadOnlyList<string> FirstSkipped, long CachedBytes, TimeSpan Elapsed)
{
    /// <summary>How many skipped images a report names.</summary>
    public const int MaxNamed = 5;

    /// <summary>A report of nothing found, nothing skipped.</summary>
    public static DataLoadReport Empty { get; } = new(0, 0, Array.Empty<string>(), 0, TimeSpan.Zero);

    /// <summary>Images usable after skipping the unreadable ones.</summary>
    public int Loaded => Found - Skipped;

    /// <summary>The report of two loads together (train and test): counts and times add, the named skips concatenate up to <see cref="MaxNamed"/>.</summary>
    public DataLoadReport Combine(DataLoadReport other)
    {
        ArgumentNullException.ThrowIfNull(other);
        return new DataLoadReport(
            Found + other.Found,
            Skipped + other.Skipped,
            FirstSkipped.Concat(other.FirstSkipped).Take(MaxNamed).ToArray(),
            CachedBytes + other.CachedBytes,
            Elapsed + other.Elapsed);
    }

    /// <summary>One line for a log: found, skipped (with names), cache size and time.</summary>
    public override string ToString()
    {
        string skipped = Skipped == 0
            ? "none skipped"
            : $"{Skipped} skipped as unreadable ({string.Join(", ", FirstSkipped)}{(Skipped > FirstSkipped.Count ? ", ..." : "")})";
        string cache = CachedBytes > 0 ? $"{CachedBytes / (1024.0 * 1024.0):F1} MiB decoded in memory" : "decoded on demand";
        return $"{Found} images found, {skipped}; {cache}; loaded in {Elapsed.TotalSeconds:F2} s";
    }
}
