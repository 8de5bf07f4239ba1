using static TorchSharp.torch;

namespace MoCo.Model.Checkpoints;

/// <summary>
/// A verified checkpoint loaded into memory: its header and its tensors (CPU) by name.
/// It owns the tensors: disposing it disposes them, so copy what must outlive it.
/// </summary>
public sealed class Checkpoint : IDisposable
{
    private readonly List<KeyValuePair<string, Tensor>> _ordered;
    private readonly Dictionary<string, Tensor> _byName;
    private bool _disposed;

    internal Checkpoint(CheckpointInfo info, List<KeyValuePair<string, Tensor>> tensors)
    {
        Info = info;
        _ordered = tensors;
        _byName = tensors.ToDictionary(p => p.Key, p => p.Value, StringComparer.Ordinal);
    }

    /// <summary>The file, its header, its SHA-256 and its tensor index.</summary>
    public CheckpointInfo Info { get; }

    /// <summary>The header (run, epoch, step, configuration, extra facts).</summary>
    public CheckpointHeader Header => Info.Header;

    /// <summary>The SHA-256 of the file, lower-case hex.</summary>
    public string Sha256 => Info.Sha256;

    /// <summary>The tensors in file order.</summary>
    public IReadOnlyList<KeyValuePair<string, Tensor>> Tensors
    {
        get
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            return _ordered;
        }
    }

    /// <summary>The tensor names in file order.</summary>
    public IEnumerable<string> Names => _ordered.Select(p => p.Key);

    /// <summary>The tensor called <paramref name="name"/>; throws <see cref="KeyNotFoundException"/> naming it when absent.</summary>
    public Tensor this[string name]
    {
        get
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            return _byName.TryGetValue(name, out var tensor)
                ? tensor
                : throw new KeyNotFoundException($"Checkpoint '{Info.Path}' has no tensor '{name}'.");
        }
    }

    /// <summary>Whether the checkpoint holds a tensor called <paramref name="name"/>.</summary>
    public bool Contains(string name) => _byName.ContainsKey(name);

    /// <summary>The tensor called <paramref name="name"/>, if present.</summary>
    public bool TryGet(string name, out Tensor tensor)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return _byName.TryGetValue(name, out tensor!);
    }

    /// <summary>Disposes the loaded tensors.</summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        foreach (var (_, tensor) in _ordered)
        {
            tensor.Dispose();
        }
    }
}
