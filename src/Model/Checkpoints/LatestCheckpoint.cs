namespace MoCo.Model.Checkpoints;

/// <summary>The result of looking for the newest valid checkpoint of a run.</summary>
/// <param name="Found">The newest checkpoint that passed verification, or null when there is none.</param>
/// <param name="Skipped">Newer checkpoints that failed verification, newest first, each with its reason.</param>
public sealed record LatestCheckpoint(CheckpointInfo? Found, IReadOnlyList<SkippedCheckpoint> Skipped);
