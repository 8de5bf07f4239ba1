namespace MoCo.Model.Checkpoints;

/// <summary>A checkpoint file that passed verification, described without loading its tensors.</summary>
/// <param name="Path">The file.</param>
/// <param name="Header">Its header.</param>
/// <param name="Sha256">The SHA-256 trailer of the file, as lower-case hex (the value recorded in the journal).</param>
/// <param name="Tensors">Its tensor index, in file order.</param>
public sealed record CheckpointInfo(
    string Path,
    CheckpointHeader Header,
    string Sha256,
    IReadOnlyList<CheckpointTensorInfo> Tensors);
