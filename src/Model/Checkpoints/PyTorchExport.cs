using System.Collections;
using System.Collections.Specialized;
using System.Security.Cryptography;
using TorchSharp;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace MoCo.Model.Checkpoints;

/// <summary>
/// Exports a ResNet backbone's state dict (torchvision names, in module order) as a PyTorch file:
/// the zip-pickle format of <c>torch.save</c>, written with TorchSharp.PyBridge's pickler, that
/// <c>torch.load</c> (also with <c>weights_only=True</c>) and <c>load_state_dict(strict=True)</c> accept
/// in torchvision's <c>resnet18()</c>/<c>resnet50()</c>. Keys are written in input order.
/// </summary>
public static class PyTorchExport
{
    /// <summary>
    /// Writes <paramref name="stateDict"/> to <paramref name="path"/> (atomically: temporary file, fsync, rename) in
    /// <see cref="PyTorchExportOptions.Format"/>: a <c>torch.save</c> file (below), safetensors (same key names), or
    /// the detectron2 <c>.pkl</c> of the official converter (<see cref="Detectron2Pickle"/>). For a <c>torch.save</c> file: without <see cref="PyTorchExportOptions.Detectron2Names"/> the file holds a plain dict of tensors.
    /// With it, the file holds the detectron2 wrapper itself,
    /// <c>{"model": {renamed: tensor}, "__author__": "MOCO", "matching_heuristics": True}</c>: PyBridge's pickler
    /// writes nested dicts, strings and bools, so no plain-dict fallback is needed.
    /// Tensors are written detached and contiguous; the inputs are neither changed nor disposed.
    /// </summary>
    /// <returns>The SHA-256 of the written file, as lower-case hex.</returns>
    public static string Save(string path, IReadOnlyList<KeyValuePair<string, Tensor>> stateDict, PyTorchExportOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(stateDict);
        options ??= new PyTorchExportOptions();
        if (options.Format == ExportFormat.Detectron2Pkl)
        {
            options = options with { Detectron2Names = true };
        }
        var entries = Map(stateDict, options);

        switch (options.Format)
        {
            case ExportFormat.Detectron2Pkl:
                AtomicFile.Write(path, file => Detectron2Pickle.Write(file, entries));
                break;
            case ExportFormat.Safetensors:
                WriteSafetensors(path, entries);
                break;
            default:
                WritePth(path, entries, options.Detectron2Names);
                break;
        }

        using var written = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(written));
    }

    private static void WriteSafetensors(string path, IReadOnlyList<KeyValuePair<string, Tensor>> entries)
    {
        using var scope = torch.NewDisposeScope();
        // safetensors has no nesting: the detectron2 wrapper's strings cannot go in; the names alone can
        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (name, tensor) in entries)
        {
            // a copy that owns its storage: a parameter may be a view into a flat buffer (FlatParameters)
            tensors[name] = tensor.detach().cpu().contiguous().clone();
        }
        AtomicFile.Write(path, file => Safetensors.SaveStateDict(file, tensors, leaveOpen: true));
    }

    private static void WritePth(string path, IReadOnlyList<KeyValuePair<string, Tensor>> entries, bool detectron2Wrapper)
    {
        using var scope = torch.NewDisposeScope();
        var model = new OrderedDictionary(entries.Count, StringComparer.Ordinal);
        foreach (var (name, tensor) in entries)
        {
            // a copy that owns its storage: the pickler writes a tensor's whole storage with its offset, and a parameter may
            // be a view into a flat buffer (FlatParameters)
            model.Add(name, tensor.detach().contiguous().clone());
        }
        IDictionary root = detectron2Wrapper
            ? new OrderedDictionary(StringComparer.Ordinal)
            {
                ["model"] = model,
                ["__author__"] = "MOCO",
                ["matching_heuristics"] = true,
            }
            : model;
        AtomicFile.Write(path, file => PyTorchPickler.PickleStateDict(file, root, leaveOpen: true));
    }

    /// <summary>
    /// The entries <see cref="Save"/> writes, under their exported names: the head dropped unless
    /// <see cref="PyTorchExportOptions.IncludeHead"/>, renamed by <see cref="ToDetectron2Name"/> when
    /// <see cref="PyTorchExportOptions.Detectron2Names"/>. The tensors are the inputs themselves, not copies.
    /// </summary>
    public static IReadOnlyList<KeyValuePair<string, Tensor>> Map(IReadOnlyList<KeyValuePair<string, Tensor>> stateDict, PyTorchExportOptions options)
    {
        ArgumentNullException.ThrowIfNull(stateDict);
        ArgumentNullException.ThrowIfNull(options);
        var result = new List<KeyValuePair<string, Tensor>>(stateDict.Count);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (name, tensor) in stateDict)
        {
            if (!options.IncludeHead && IsHead(name))
            {
                continue;
            }
            string exported = options.Detectron2Names ? ToDetectron2Name(name) : name;
            if (!seen.Add(exported))
            {
                throw new ArgumentException($"Two entries export as '{exported}'.", nameof(stateDict));
            }
            result.Add(new KeyValuePair<string, Tensor>(exported, tensor));
        }
        return result;
    }

    /// <summary>Whether <paramref name="name"/> belongs to the classification/projection head (<c>fc.*</c>).</summary>
    public static bool IsHead(string name) => name.StartsWith("fc.", StringComparison.Ordinal);

    /// <summary>
    /// The detectron2 name of a torchvision ResNet key, by the rules of facebookresearch/moco's
    /// <c>detection/convert-pretrain-to-detectron2.py</c>, in its order: a key without "layer" gets the prefix
    /// "stem."; layerN becomes res{N+1} (N = 1..4); bnK becomes convK.norm (K = 1..3); downsample.0 becomes
    /// shortcut; downsample.1 becomes shortcut.norm. E.g. <c>bn1.weight</c> → <c>stem.conv1.norm.weight</c>,
    /// <c>layer2.0.downsample.1.bias</c> → <c>res3.0.shortcut.norm.bias</c>.
    /// </summary>
    public static string ToDetectron2Name(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        string k = name;
        if (!k.Contains("layer", StringComparison.Ordinal))
        {
            k = "stem." + k;
        }
        for (int t = 1; t <= 4; t++)
        {
            k = k.Replace($"layer{t}", $"res{t + 1}", StringComparison.Ordinal);
        }
        for (int t = 1; t <= 3; t++)
        {
            k = k.Replace($"bn{t}", $"conv{t}.norm", StringComparison.Ordinal);
        }
        k = k.Replace("downsample.0", "shortcut", StringComparison.Ordinal);
        k = k.Replace("downsample.1", "shortcut.norm", StringComparison.Ordinal);
        return k;
    }

    /// <summary>
    /// Reads a PyTorch zip-pickle file (written by <see cref="Save"/> or by <c>torch.save(model.state_dict())</c>)
    /// into CPU tensors by name, with PyBridge's unpickler. For a detectron2-style wrapper, the tensors of its
    /// <c>"model"</c> entry are returned. The caller owns (and disposes) the tensors.
    /// </summary>
    /// <exception cref="InvalidDataException">The file holds something other than tensors by name.</exception>
    public static Dictionary<string, Tensor> LoadStateDict(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        Hashtable root;
        using (var stream = File.OpenRead(path))
        {
            root = PyTorchUnpickler.UnpickleStateDict(stream);
        }
        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        IDictionary stateDict = root["model"] as IDictionary ?? root;
        string? problem = null;
        foreach (DictionaryEntry entry in stateDict)
        {
            if (entry.Key is string name && entry.Value is Tensor tensor)
            {
                tensors[name] = tensor;
            }
            else
            {
                problem ??= $"entry '{entry.Key}' is a {entry.Value?.GetType().Name ?? "null"}, not a tensor";
            }
        }
        if (problem is not null)
        {
            DisposeTensors(root);
            throw new InvalidDataException($"'{path}' is not a state dict: {problem}.");
        }
        return tensors;
    }

    /// <summary>Disposes every tensor in <paramref name="dictionary"/> and the dictionaries nested in it.</summary>
    internal static void DisposeTensors(IDictionary dictionary)
    {
        foreach (DictionaryEntry entry in dictionary)
        {
            if (entry.Value is Tensor tensor)
            {
                tensor.Dispose();
            }
            else if (entry.Value is IDictionary nested)
            {
                DisposeTensors(nested);
            }
        }
    }
}
