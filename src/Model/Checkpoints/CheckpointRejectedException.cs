namespace MoCo.Model.Checkpoints;

/// <summary>
/// A checkpoint file was refused: it is truncated or corrupt, belongs to another run, is not a checkpoint,
/// or was written in a format version this build cannot read. The message names the file and the reason.
/// </summary>
public sealed class CheckpointRejectedException : Exception
{
    /// <summary>Creates the exception for <paramref name="path"/> refused because of <paramref name="reason"/>.</summary>
    public CheckpointRejectedException(string path, string reason)
        : base($"Checkpoint '{path}' rejected: {reason}")
    {
        Path = path;
        Reason = reason;
    }

    /// <summary>The refused file.</summary>
    public string Path { get; }

    /// <summary>Why it was refused, e.g. "truncated (...)" or "checksum mismatch (file is corrupt)".</summary>
    public string Reason { get; }
}
