using System.Security.Cryptography;

namespace MoCo.Model.Checkpoints;

/// <summary>
/// A checkpoint taken into memory by <see cref="CheckpointFile.Encode"/>: every byte of the file except its
/// SHA-256 trailer, detached from the tensors it was copied from. Hashing and writing it
/// (<see cref="WriteTo"/>) needs no tensor and no torch thread, so it can run beside training.
/// </summary>
public sealed class CheckpointImage
{
    private readonly byte[] _body;

    internal CheckpointImage(CheckpointHeader header, byte[] body)
    {
        Header = header;
        _body = body;
    }

    /// <summary>The header the image was encoded with.</summary>
    public CheckpointHeader Header { get; }

    /// <summary>The length of the file it becomes, trailer included.</summary>
    public long FileLength => _body.LongLength + CheckpointFile.TrailerLength;

    /// <summary>
    /// Writes the image to <paramref name="path"/> atomically: a temporary file flushed to disk, renamed over
    /// <paramref name="path"/>, the directory fsynced where the OS allows. On failure <paramref name="path"/> keeps
    /// its previous content. Safe to call from any thread; the image can be written more than once.
    /// </summary>
    /// <param name="path">The checkpoint file.</param>
    /// <returns>The SHA-256 of the file (its trailer), lower-case hex.</returns>
    public string WriteTo(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        byte[] digest = SHA256.HashData(_body);
        AtomicFile.Write(path, file =>
        {
            file.Write(_body);
            file.Write(digest);
            if (file.Position != FileLength)
            {
                throw new InvalidOperationException($"Checkpoint '{path}': wrote {file.Position} bytes, expected {FileLength}.");
            }
        });
        return Convert.ToHexStringLower(digest);
    }
}
