using System.Text.Json;
using System.Text.Json.Serialization;
using MoCo.Model.Nn;

namespace MoCo.Model.Training;

/// <summary>
/// Everything that defines a pretraining run, independently of the cluster that runs it
/// (docs/architecture.md, Invariants, I1): the network, MoCo's hyper-parameters, the global batch and its BN
/// groups, the schedule, the augmentation, the seed and the data. Stored in every checkpoint; a resumed run
/// keeps it.
/// </summary>
public sealed record RunConfig
{
    public string Arch { get; init; } = "resnet18";
    public int Width { get; init; } = 64;
    public string Stem { get; init; } = "cifar";
    public int MocoDim { get; init; } = 128;
    public int MocoK { get; init; } = 4096;
    public double MocoM { get; init; } = 0.99;
    public double MocoT { get; init; } = 0.1;
    public bool Mlp { get; init; }
    public bool Symmetric { get; init; }
    public int BnSplits { get; init; } = 8;
    public int Epochs { get; init; } = 200;
    public int BatchSize { get; init; } = 256;
    public double Lr { get; init; } = 0.06;
    public bool Cos { get; init; } = true;
    public IReadOnlyList<int> Schedule { get; init; } = [120, 160];
    public double WarmupEpochs { get; init; }
    public double Wd { get; init; } = 5e-4;
    public double SgdMomentum { get; init; } = 0.9;
    /// <summary>Augmentation preset: cifar (the official CIFAR demo), v1, v2 (aug+).</summary>
    public string Augmentation { get; init; } = "cifar";
    public int ImageSize { get; init; } = 32;
    public ulong Seed { get; init; }
    public string Data { get; init; } = "synthetic";
    /// <summary>
    /// Shards only: the epoch visits the shards in random groups of at most this many MiB of images, each group's samples
    /// shuffled (MoCo.Model.Data.Shards.ShardDataset.Epoch). It defines the order, so it defines the run.
    /// </summary>
    public int ShardShuffleMib { get; init; } = 256;
    /// <summary>Shards only: MiB of encoded images a worker reads ahead; memory holds at most this plus one group's share.</summary>
    public int ShardReadAheadMib { get; init; } = 256;
    public string Precision { get; init; } = "fp32";
    public int KnnK { get; init; } = 200;
    public double KnnT { get; init; } = 0.1;
    /// <summary>Run the kNN monitor every n epochs (0: never).</summary>
    public int KnnEvery { get; init; } = 1;
    /// <summary>Features for the kNN monitor: head (official demo) or backbone.</summary>
    public string KnnFeatures { get; init; } = "head";
    /// <summary>What the kNN monitor's forward computes in: auto (bf16 where the CPU has native bf16), fp32 or bf16.</summary>
    public string KnnPrecision { get; init; } = "auto";
    /// <summary>Also checkpoint every n steps inside an epoch (0: only at epoch ends).</summary>
    public int CheckpointEverySteps { get; init; }
    public int KeepCheckpoints { get; init; } = 3;
    /// <summary>
    /// Weights both encoders start from instead of the seeded initialisation (an official MoCo checkpoint, a
    /// torchvision state_dict, safetensors or a checkpoint of ours: MoCo.Model.Checkpoints.EncoderWeights); empty: none.
    /// </summary>
    public string Init { get; init; } = "";
    /// <summary>The SHA-256 of <see cref="Init"/>'s file, fixed when the run starts: every worker checks the file it reads against it.</summary>
    public string InitSha256 { get; init; } = "";

    [JsonIgnore]
    public EncoderSpec Encoder => new(Arch, Width, EncoderSpec.ParseStem(Stem), MocoDim, Mlp, BnSplits);

    [JsonIgnore]
    public MocoSettings Moco => new(MocoDim, MocoK, MocoM, MocoT, Symmetric);

    [JsonIgnore]
    public Precision ComputePrecision => PrecisionNames.Parse(Precision);

    [JsonIgnore]
    public LrSchedule LrSchedule => new(Lr, Epochs, Cos, Schedule, WarmupEpochs);

    /// <summary>Throws with a message naming the first inconsistent setting.</summary>
    public RunConfig Validate()
    {
        _ = Encoder.Layout;
        _ = ComputePrecision;
        if (Width < 1) throw new ArgumentException($"--width must be positive, not {Width}");
        if (BatchSize < 1 || BnSplits < 1 || BatchSize % BnSplits != 0)
            throw new ArgumentException($"--batch-size {BatchSize} must be a positive multiple of --bn-splits {BnSplits}");
        int keysPerStep = BatchSize * (Symmetric ? 2 : 1);
        if (MocoK < keysPerStep)
            throw new ArgumentException($"--moco-k {MocoK} must hold at least the {keysPerStep} keys enqueued per step");
        if (MocoM < 0 || MocoM >= 1) throw new ArgumentException($"--moco-m must be in [0, 1), not {MocoM}");
        if (MocoT <= 0) throw new ArgumentException($"--moco-t must be positive, not {MocoT}");
        if (Epochs < 1) throw new ArgumentException($"--epochs must be at least 1, not {Epochs}");
        if (Lr <= 0) throw new ArgumentException($"--lr must be positive, not {Lr}");
        if (Augmentation is not ("cifar" or "v1" or "v2"))
            throw new ArgumentException($"unknown augmentation '{Augmentation}': use cifar, v1 or v2");
        if (KnnFeatures is not ("head" or "backbone"))
            throw new ArgumentException($"unknown kNN features '{KnnFeatures}': use head or backbone");
        if (KnnPrecision is not ("auto" or "fp32" or "bf16"))
            throw new ArgumentException($"unknown kNN precision '{KnnPrecision}': use auto, fp32 or bf16");
        if (ShardShuffleMib < 1 || ShardShuffleMib > 1 << 20)
            throw new ArgumentException($"--shard-shuffle-mib must be 1 to {1 << 20}, not {ShardShuffleMib}");
        if (ShardReadAheadMib < 1 || ShardReadAheadMib > 1 << 20)
            throw new ArgumentException($"--shard-read-ahead-mib must be 1 to {1 << 20}, not {ShardReadAheadMib}");
        if (InitSha256.Length != 0 && (InitSha256.Length != 64 || !InitSha256.All(char.IsAsciiHexDigitLower)))
            throw new ArgumentException($"init-sha256 must be 64 lower-case hex digits, not '{InitSha256}'");
        return this;
    }

    /// <summary>
    /// The configuration as JSON without the settings that may change when a run is resumed or evaluated
    /// (<see cref="ChangeableOnResume"/>: epochs, data location, kNN monitor, checkpoint cadence), so that two
    /// configurations of the same run compare equal.
    /// </summary>
    public System.Text.Json.Nodes.JsonObject RunDefinition()
    {
        var node = System.Text.Json.Nodes.JsonNode.Parse(ToJson())!.AsObject();
        foreach (var key in ChangeableOnResume)
        {
            node.Remove(key);
        }
        return node;
    }

    /// <summary>The keys (kebab-case) a resumed run may change: everything else defines the run.</summary>
    public static readonly IReadOnlyList<string> ChangeableOnResume =
        ["epochs", "data", "knn-k", "knn-t", "knn-every", "knn-features", "knn-precision", "checkpoint-every-steps", "keep-checkpoints", "shard-read-ahead-mib"];

    /// <summary>True when both define the same run (see <see cref="RunDefinition"/>).</summary>
    public bool DefinesSameRunAs(RunConfig other) =>
        System.Text.Json.Nodes.JsonNode.DeepEquals(RunDefinition(), other.RunDefinition());

    private static readonly JsonSerializerOptions JsonOptions = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.KebabCaseLower,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
    };

    public string ToJson() => JsonSerializer.Serialize(this, JsonOptions);

    public static RunConfig FromJson(string json) =>
        JsonSerializer.Deserialize<RunConfig>(json, JsonOptions) ?? throw new ArgumentException("empty run configuration");
}
