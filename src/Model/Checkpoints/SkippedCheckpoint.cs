namespace MoCo.Model.Checkpoints;

/// <summary>A checkpoint that <see cref="CheckpointDirectory.Latest(string)"/> passed over, and why.</summary>
/// <param name="Path">The file.</param>
/// <param name="Reason">The reason it was refused (see <see cref="CheckpointRejectedException.Reason"/>).</param>
public sealed record SkippedCheckpoint(string Path, string Reason);
