using System.Buffers.Binary;
using System.Collections;
using System.IO.Compression;
using System.Text.Json;
using MoCo.Model.Nn;
using MoCo.Model.Training;
using TorchSharp;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace MoCo.Model.Checkpoints;

/// <summary>The layouts of encoder weights that <see cref="EncoderWeights.Read"/> recognises, by their content.</summary>
public enum WeightsLayout
{
    /// <summary>A checkpoint of ours (<c>.mocockpt</c>): the query encoder's tensors and the run's configuration.</summary>
    MocoActorsCheckpoint,

    /// <summary>
    /// facebookresearch/moco's <c>main_moco.py</c> checkpoint (<c>moco_v2_800ep_pretrain.pth.tar</c>):
    /// <c>{"epoch", "arch", "state_dict": {"module.encoder_q.*", "module.encoder_k.*", "module.queue", ...}, "optimizer"}</c>.
    /// </summary>
    OfficialMoco,

    /// <summary>A torchvision ResNet <c>state_dict</c> saved with <c>torch.save</c> (our <c>moco export</c> writes one).</summary>
    TorchvisionStateDict,

    /// <summary>safetensors with torchvision names (<c>moco export --format safetensors</c>).</summary>
    Safetensors,
}

/// <summary>The network a set of weights describes, read from the tensors' names and shapes.</summary>
/// <param name="Arch">resnet18, resnet34 or resnet50.</param>
/// <param name="Width">Channels of conv1 (64 for torchvision's).</param>
/// <param name="Stem">imagenet (7x7 stride 2 and max-pool) or cifar (3x3 stride 1).</param>
/// <param name="HeadDim">Outputs of the head, or null when the weights have none.</param>
/// <param name="Mlp">Whether the head is MoCo v2's MLP (<c>fc.0</c>, <c>fc.2</c>) rather than one linear layer.</param>
public sealed record EncoderShape(string Arch, int Width, Stem Stem, int? HeadDim, bool Mlp);

/// <summary>
/// An encoder's weights from a file of any layout in <see cref="WeightsLayout"/>, detected by content (not by the
/// file's name), as CPU tensors under torchvision's names; <see cref="Shape"/> is the network they fit. Every size read
/// from the file is checked against the file's length before anything is allocated for it. Dispose to free the tensors.
/// </summary>
public sealed class EncoderWeights : IDisposable
{
    /// <summary>The largest safetensors header read (its JSON): 100 MiB, as the safetensors library's own bound.</summary>
    public const long MaxSafetensorsHeader = 100L << 20;

    private const string OfficialPrefix = "module.encoder_q.";
    private const string OfficialPrefixSingleGpu = "encoder_q.";
    private const string OurPrefix = "model.encoder_q.";

    private readonly Dictionary<string, Tensor> _tensors;

    private EncoderWeights(string path, WeightsLayout layout, Dictionary<string, Tensor> tensors, RunConfig? config)
    {
        Path = path;
        Layout = layout;
        _tensors = tensors;
        Config = config;
        Shape = InferShape(path, tensors);
    }

    /// <summary>The file read.</summary>
    public string Path { get; }

    /// <summary>Its layout.</summary>
    public WeightsLayout Layout { get; }

    /// <summary>The run's configuration when the file is a checkpoint of ours; otherwise null.</summary>
    public RunConfig? Config { get; }

    /// <summary>The network the weights fit.</summary>
    public EncoderShape Shape { get; }

    /// <summary>The tensors, by torchvision name.</summary>
    public IReadOnlyDictionary<string, Tensor> Tensors => _tensors;

    /// <summary>A person's name for <see cref="Layout"/>.</summary>
    public string LayoutName => Describe(Layout);

    /// <summary>A person's name for a layout.</summary>
    public static string Describe(WeightsLayout layout) => layout switch
    {
        WeightsLayout.MocoActorsCheckpoint => "a MoCo.Actors checkpoint",
        WeightsLayout.OfficialMoco => "an official MoCo checkpoint (module.encoder_q.*)",
        WeightsLayout.TorchvisionStateDict => "a torchvision ResNet state_dict",
        WeightsLayout.Safetensors => "safetensors with torchvision names",
        _ => layout.ToString(),
    };

    /// <summary>What a file must be; the message of every refusal ends with it.</summary>
    public const string ExpectedLayouts =
        "expected a MoCo.Actors checkpoint (.mocockpt), an official MoCo checkpoint (torch.save of {\"state_dict\": {\"module.encoder_q.conv1.weight\", ...}}), "
        + "a torchvision ResNet state_dict (torch.save of {\"conv1.weight\", \"bn1.weight\", \"layer1.0.conv1.weight\", ...}), "
        + "or safetensors with the same names (moco export --format safetensors)";

    /// <summary>Reads <paramref name="path"/>, whichever layout it has.</summary>
    /// <exception cref="InvalidDataException">The file is none of the layouts, or is damaged; the message names what was found and what is expected.</exception>
    /// <exception cref="CheckpointRejectedException">A checkpoint of ours that fails its checks.</exception>
    public static EncoderWeights Read(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"no such weights file: {path}", path);
        }
        Span<byte> head = stackalloc byte[8];
        long length;
        using (var file = File.OpenRead(path))
        {
            length = file.Length;
            head = head[..file.ReadAtLeast(head, head.Length, throwOnEndOfStream: false)];
        }
        if (head.SequenceEqual("MOCOCKPT"u8))
        {
            using var checkpoint = CheckpointFile.Read(path);
            var config = RunConfig.FromJson(checkpoint.Header.ConfigJson);
            var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
            foreach (var (name, tensor) in checkpoint.Tensors)
            {
                if (name.StartsWith(OurPrefix, StringComparison.Ordinal))
                {
                    tensors[name[OurPrefix.Length..]] = tensor.detach().clone();
                }
            }
            return new EncoderWeights(path, WeightsLayout.MocoActorsCheckpoint, tensors, config);
        }
        if (head.Length >= 4 && head[..4].SequenceEqual("PK\u0003\u0004"u8))
        {
            return ReadTorchSave(path, length);
        }
        if (head.Length == 8 && BinaryPrimitives.ReadUInt64LittleEndian(head) is var n && n > 1 && n <= (ulong)Math.Min(MaxSafetensorsHeader, length - 8))
        {
            return ReadSafetensors(path, length, (long)n);
        }
        throw new InvalidDataException($"'{path}' is none of the weights layouts this reads (it starts with bytes {Convert.ToHexString(head)}): {ExpectedLayouts}");
    }

    /// <summary>
    /// Copies the weights into <paramref name="encoder"/>: every backbone tensor must be present with the encoder's shape;
    /// the head (<c>fc.*</c>) too when <paramref name="withHead"/>, else it is left as it is.
    /// </summary>
    /// <exception cref="InvalidDataException">A tensor is missing or has another shape; the message names it.</exception>
    public void LoadInto(ResNet encoder, bool withHead)
    {
        ArgumentNullException.ThrowIfNull(encoder);
        using var _ = no_grad();
        foreach (var (name, target) in encoder.state_dict())
        {
            bool isHead = name.StartsWith("fc.", StringComparison.Ordinal);
            if (isHead && !withHead)
            {
                continue;
            }
            if (!_tensors.TryGetValue(name, out var source))
            {
                throw new InvalidDataException($"'{Path}' ({LayoutName}) lacks {name}, which the encoder ({Shape.Arch} width {Shape.Width}) needs"
                    + (isHead ? "; without a head, use the backbone's features (--knn-features backbone)" : ""));
            }
            if (!source.shape.SequenceEqual(target.shape))
            {
                throw new InvalidDataException($"'{Path}': {name} is [{string.Join(",", source.shape)}], the encoder expects [{string.Join(",", target.shape)}]");
            }
            target.copy_(source);
        }
    }

    /// <summary>Throws unless <paramref name="shape"/> is the network <paramref name="spec"/> builds (the head aside).</summary>
    /// <exception cref="InvalidDataException">Another architecture, width or stem; the message names both.</exception>
    public static void EnsureFits(EncoderShape shape, EncoderSpec spec, string path)
    {
        if (shape.Arch != spec.Arch || shape.Width != spec.Width || shape.Stem != spec.Stem)
        {
            throw new InvalidDataException($"'{path}' holds a {shape.Arch} of width {shape.Width} with a {shape.Stem} stem; "
                + $"this run builds a {spec.Arch} of width {spec.Width} with a {spec.Stem} stem (set --arch, --width and --stem to match)");
        }
    }

    /// <summary>The network <paramref name="tensors"/> fit, from conv1, the blocks of each stage and the head.</summary>
    /// <exception cref="InvalidDataException">They are not a ResNet of ours (resnet18, resnet34, resnet50).</exception>
    public static EncoderShape InferShape(string path, IReadOnlyDictionary<string, Tensor> tensors)
    {
        if (!tensors.TryGetValue("conv1.weight", out var conv1) || conv1.ndim != 4 || conv1.shape[1] != 3)
        {
            throw new InvalidDataException($"'{path}' has no ResNet stem (conv1.weight of [width, 3, k, k]); found {Sample(tensors.Keys)}: {ExpectedLayouts}");
        }
        int width = checked((int)conv1.shape[0]);
        var stem = conv1.shape[2] switch
        {
            7 => Stem.ImageNet,
            3 => Stem.Cifar,
            _ => throw new InvalidDataException($"'{path}': conv1 is {conv1.shape[2]}x{conv1.shape[3]}; a ResNet stem is 7x7 (imagenet) or 3x3 (cifar)"),
        };
        bool bottleneck = tensors.ContainsKey("layer1.0.conv3.weight");
        var blocks = new int[4];
        for (int stage = 0; stage < 4; stage++)
        {
            while (tensors.ContainsKey($"layer{stage + 1}.{blocks[stage]}.conv1.weight"))
            {
                blocks[stage]++;
            }
        }
        string? arch = (bottleneck, string.Join(",", blocks)) switch
        {
            (false, "2,2,2,2") => "resnet18",
            (false, "3,4,6,3") => "resnet34",
            (true, "3,4,6,3") => "resnet50",
            _ => null,
        };
        if (arch is null)
        {
            throw new InvalidDataException($"'{path}' is a ResNet with {(bottleneck ? "bottleneck" : "basic")} blocks [{string.Join(", ", blocks)}] per stage; "
                + $"this trainer builds {string.Join(", ", EncoderSpec.Architectures)}");
        }
        int? headDim = null;
        bool mlp = false;
        if (tensors.TryGetValue("fc.2.weight", out var fc2) && tensors.ContainsKey("fc.0.weight"))
        {
            (headDim, mlp) = (checked((int)fc2.shape[0]), true);
        }
        else if (tensors.TryGetValue("fc.weight", out var fc))
        {
            headDim = checked((int)fc.shape[0]);
        }
        return new EncoderShape(arch, width, stem, headDim, mlp);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var tensor in _tensors.Values)
        {
            tensor.Dispose();
        }
        _tensors.Clear();
    }

    private static EncoderWeights ReadTorchSave(string path, long length)
    {
        // torch.save writes a zip of stored (uncompressed) entries: every entry must lie within the file before
        // PyBridge reads any of them, so that a crafted size never becomes an allocation
        using (var zip = ZipFile.OpenRead(path))
        {
            foreach (var entry in zip.Entries)
            {
                if (entry.Length > length || entry.CompressedLength > length)
                {
                    throw new InvalidDataException($"'{path}': zip entry {entry.FullName} claims {entry.Length} bytes in a file of {length}");
                }
            }
        }
        Hashtable root;
        try
        {
            using var stream = File.OpenRead(path);
            root = PyTorchUnpickler.UnpickleStateDict(stream, leaveOpen: false, skipTensorRead: false);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new InvalidDataException($"'{path}' is a zip but not a torch.save file this reads ({e.GetType().Name}: {e.Message}): {ExpectedLayouts}", e);
        }

        try
        {
            if (root["state_dict"] is IDictionary official)
            {
                var tensors = Pick(official, OfficialPrefix);
                if (tensors.Count == 0)
                {
                    tensors = Pick(official, OfficialPrefixSingleGpu);
                }
                if (tensors.Count == 0)
                {
                    throw new InvalidDataException($"'{path}' has a state_dict without module.encoder_q.* (found {Sample(official.Keys.Cast<object>().Select(k => k.ToString() ?? ""))}): {ExpectedLayouts}");
                }
                return new EncoderWeights(path, WeightsLayout.OfficialMoco, tensors, null);
            }
            if (root.ContainsKey("conv1.weight"))
            {
                return new EncoderWeights(path, WeightsLayout.TorchvisionStateDict, Pick(root, ""), null);
            }
            throw new InvalidDataException($"'{path}' holds {Sample(root.Keys.Cast<object>().Select(k => k.ToString() ?? ""))}: {ExpectedLayouts}");
        }
        finally
        {
            PyTorchExport.DisposeTensors(root);
        }
    }

    private static EncoderWeights ReadSafetensors(string path, long length, long headerLength)
    {
        // the header's offsets are checked against the file before PyBridge allocates anything for them
        using (var file = File.OpenRead(path))
        {
            file.Position = 8;
            var header = new byte[headerLength];
            file.ReadExactly(header);
            long body = length - 8 - headerLength;
            try
            {
                using var json = JsonDocument.Parse(header);
                foreach (var entry in json.RootElement.EnumerateObject())
                {
                    if (entry.Name == "__metadata__")
                    {
                        continue;
                    }
                    var offsets = entry.Value.GetProperty("data_offsets");
                    long begin = offsets[0].GetInt64(), end = offsets[1].GetInt64();
                    if (begin < 0 || end < begin || end > body)
                    {
                        throw new InvalidDataException($"'{path}': tensor {entry.Name} lies at [{begin}, {end}) beyond the {body} bytes of data");
                    }
                }
            }
            catch (Exception e) when (e is JsonException or InvalidOperationException or KeyNotFoundException or FormatException)
            {
                throw new InvalidDataException($"'{path}' does not have a safetensors header ({e.Message}): {ExpectedLayouts}", e);
            }
        }
        Dictionary<string, Tensor> tensors;
        try
        {
            tensors = Safetensors.LoadStateDict(path);
        }
        catch (Exception e) when (e is not OutOfMemoryException and not InvalidDataException)
        {
            throw new InvalidDataException($"'{path}' is not a safetensors file this reads ({e.Message}): {ExpectedLayouts}", e);
        }
        return new EncoderWeights(path, WeightsLayout.Safetensors, new Dictionary<string, Tensor>(tensors, StringComparer.Ordinal), null);
    }

    /// <summary>Clones the tensors of <paramref name="dictionary"/> whose keys start with <paramref name="prefix"/>, without it.</summary>
    private static Dictionary<string, Tensor> Pick(IDictionary dictionary, string prefix)
    {
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (DictionaryEntry entry in dictionary)
        {
            if (entry.Key is string name && name.StartsWith(prefix, StringComparison.Ordinal) && entry.Value is Tensor tensor)
            {
                result[name[prefix.Length..]] = tensor.detach().clone();
            }
        }
        return result;
    }

    private static string Sample(IEnumerable<string> keys)
    {
        var first = keys.Take(6).ToList();
        return first.Count == 0 ? "no keys" : "keys " + string.Join(", ", first) + (keys.Skip(6).Any() ? ", ..." : "");
    }
}
