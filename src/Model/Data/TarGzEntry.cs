namespace MoCo.Model.Data;

/// <summary>
/// One kept entry of a tar archive: its normalised path ('/'-separated, no leading "./"), its bytes (null for a
/// directory, and for a file refused unread), and why a file was refused (null when its bytes were kept).
/// </summary>
internal sealed record TarGzEntry(string Path, byte[]? Data, string? Refusal = null)
{
    /// <summary>True for a directory entry; false for a file, kept or refused.</summary>
    public bool IsDirectory => Data is null && Refusal is null;
}
