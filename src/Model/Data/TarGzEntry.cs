namespace MoCo.Model.Data;

/// <summary>One kept entry of a tar archive: its normalised path ('/'-separated, no leading "./"), and its bytes (null for a directory).</summary>
internal sealed record TarGzEntry(string Path, byte[]? Data);
