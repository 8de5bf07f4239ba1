using System.Globalization;
using MoCo.Model.Checkpoints;
using MoCo.Model.Collectives;
using MoCo.Model.Data;
using MoCo.Model.Evaluation;
using MoCo.Model.Nn;
using TorchSharp;
using static TorchSharp.torch;

namespace MoCo.Model.Training;

/// <summary>What an epoch reports (scalars only).</summary>
public sealed record EpochReport(int Epoch, int Steps, double Loss, double InstanceAcc, double Lr, Accuracy? Knn, double Seconds, double ImagesPerSecond, double LoaderWaitSeconds);

/// <summary>
/// One worker's pretraining state and cursor: the MoCo model, the optimizer, the data loader and the
/// position (epoch, step) in the run. Knows how to run the next step, evaluate, and turn its state into a
/// checkpoint and back. The loop around it (single process here, actors in src/Actors) decides when.
/// </summary>
public sealed class Pretrainer : IDisposable
{
    public const string StepInEpochKey = "step-in-epoch";

    private readonly MocoTrainStep _step;
    private readonly IViewTransform _evalTransform;
    private readonly IViewTransform _trainTransform;
    private readonly int _loaderThreads;
    private ICollective _collective;
    private BatchLayout _layout;
    private PretrainLoader _loader;
    private bool _loaderStarted;

    /// <summary>Builds the replica of rank <c>collective.Rank</c>: the seeded model, the optimizer and the loader of its share.</summary>
    /// <param name="config">The run.</param>
    /// <param name="runId">The run's identity (checkpoints of other runs are refused).</param>
    /// <param name="data">The data set.</param>
    /// <param name="collective">The data plane (may be rebound later, <see cref="Rebind"/>).</param>
    /// <param name="layout">The split of the global batch over the world.</param>
    /// <param name="loaderThreads">Threads that decode and augment images.</param>
    /// <param name="device">
    /// Where the model, the optimizer state, the queue and each batch live; null (or the CPU) leaves everything where
    /// it is built, on the CPU. The model is initialised on the CPU from the run's seed and then moved, so replicas on
    /// any device start equal. Checkpoints are written from CPU copies and loaded back onto the device.
    /// </param>
    public Pretrainer(RunConfig config, string runId, DatasetSplits data, ICollective collective, BatchLayout layout, int loaderThreads, Device? device = null)
    {
        Config = config.Validate();
        RunId = runId;
        Data = data;
        _collective = collective;
        _layout = layout;
        Device = device is null || device.type == DeviceType.CPU ? null : device;
        var spec = config.Encoder;
        var precision = config.ComputePrecision;
        Model = new MomentumContrast(() => new ResNet(spec, precision), config.Moco, config.Seed);
        if (Device is not null)
        {
            // before the optimizer takes the parameters: Module.to replaces them (and the queue buffers) by device copies
            Model.to(Device);
        }

        // after the move to the device, which replaces the parameters: from here on each encoder's parameters are views
        // of one buffer, and the momentum update, SGD and the flat all-reduce are one operation each
        Model.UseFlatParameters();
        Optimizer = new Sgd(Model.EncoderQ.named_parameters().Select(p => ("encoder_q." + p.name, p.parameter)), config.SgdMomentum, config.Wd);
        Optimizer.UseFlat(Model.FlatQ!);
        _step = new MocoTrainStep(Model, Optimizer, config.Seed);
        _trainTransform = ViewTransforms.Random(new Augmenter(RunTransforms.Pretrain(config)));
        _loaderThreads = loaderThreads;
        _loader = new PretrainLoader(data.Train, _trainTransform, layout, collective.Rank, config.Seed, loaderThreads);
        _evalTransform = RunTransforms.Eval(config);
        StepsPerEpoch = data.Train.Count / config.BatchSize;
        if (StepsPerEpoch < 1)
        {
            throw new ArgumentException($"the training set has {data.Train.Count} images, fewer than one global batch of {config.BatchSize}");
        }
    }

    public RunConfig Config { get; }

    /// <summary>The accelerator the replica computes on, or null for the CPU.</summary>
    public Device? Device { get; }

    public string RunId { get; }

    public DatasetSplits Data { get; }

    public MomentumContrast Model { get; }

    public Sgd Optimizer { get; }

    public int StepsPerEpoch { get; }

    /// <summary>How this worker's gradients travel (a worker setting; the run's math does not depend on it).</summary>
    public GradientBucketing Bucketing
    {
        get => _step.Bucketing;
        init => _step.Bucketing = value;
    }

    /// <summary>How long the last step waited after backward for its all-reduce (0 in a world of one).</summary>
    public double LastAllReduceWaitSeconds => _step.LastReduceWaitSeconds;

    /// <summary>The epoch of the next step.</summary>
    public int Epoch { get; private set; }

    /// <summary>The step within <see cref="Epoch"/> of the next step.</summary>
    public int StepInEpoch { get; private set; }

    /// <summary>Steps completed since the start of the run.</summary>
    public long GlobalStep { get; private set; }

    public bool Finished => Epoch >= Config.Epochs;

    public double LoaderWaitSeconds => _loader.WaitSeconds;

    /// <summary>This replica's rank in its current group.</summary>
    public int Rank => _collective.Rank;

    /// <summary>The layout of the current group (world size, BN groups per rank).</summary>
    public BatchLayout Layout => _layout;

    /// <summary>
    /// Moves this replica into a new generation's group: a new collective and layout (the world size may have
    /// changed, the global batch and the BN groups never do). The loader is rebuilt for the new share; the state and
    /// the cursor are untouched (call <see cref="SyncFrom"/> to make every replica equal).
    /// </summary>
    public void Rebind(ICollective collective, BatchLayout layout)
    {
        ArgumentNullException.ThrowIfNull(collective);
        ArgumentNullException.ThrowIfNull(layout);
        if (layout.GlobalBatch != _layout.GlobalBatch || layout.Groups != _layout.Groups)
        {
            throw new ArgumentException($"a new generation keeps the global batch {_layout.GlobalBatch} and {_layout.Groups} BN groups; got {layout.GlobalBatch} and {layout.Groups}");
        }
        if (collective.WorldSize != layout.WorldSize)
        {
            throw new ArgumentException($"the collective has {collective.WorldSize} ranks, the layout {layout.WorldSize}");
        }
        _loader.Dispose();
        _collective = collective;
        _layout = layout;
        _loader = new PretrainLoader(Data.Train, _trainTransform, layout, collective.Rank, Config.Seed, _loaderThreads);
        _loaderStarted = false;
    }

    /// <summary>
    /// Makes this replica equal to rank <paramref name="root"/>'s, a collective call on every rank of the group:
    /// the cursor (epoch, step), then every state tensor (model, key encoder, queue and pointer, BN buffers, optimizer
    /// momentum) by broadcast. How a re-created or newly joined worker takes the state of a surviving one.
    /// </summary>
    public void SyncFrom(int root)
    {
        using var scope = NewDisposeScope();
        // on the model's device: NCCL moves device memory only
        var cursor = tensor(new long[] { Epoch, StepInEpoch, GlobalStep, Optimizer.HasState ? 1 : 0 }, device: Device);
        _collective.Broadcast(cursor, root);
        var values = (Device is null ? cursor : cursor.cpu()).data<long>().ToArray();
        if (values[3] == 1)
        {
            Optimizer.EnsureState();
        }
        else
        {
            Optimizer.ClearState();
        }
        using (no_grad())
        {
            foreach (var (_, t) in StateTensors())
            {
                _collective.Broadcast(t, root);
            }
        }
        Epoch = (int)values[0];
        StepInEpoch = (int)values[1];
        GlobalStep = values[2];
        _loaderStarted = false;
    }

    /// <summary>Runs the next step of the run and advances the cursor.</summary>
    public StepResult TrainStep()
    {
        if (Finished)
        {
            throw new InvalidOperationException("the run has completed all its epochs");
        }
        if (!_loaderStarted)
        {
            _loader.Start(Epoch, StepInEpoch);
            _loaderStarted = true;
        }
        using var batch = _loader.Next();
        if (batch.Epoch != Epoch || batch.Step != StepInEpoch)
        {
            throw new InvalidOperationException($"loader delivered epoch {batch.Epoch} step {batch.Step}, expected {Epoch}/{StepInEpoch}");
        }
        double lr = Config.LrSchedule.At(Epoch, StepInEpoch, StepsPerEpoch);
        StepResult result;
        try
        {
            // on an accelerator the views go to its memory: the loader's batches are pageable host memory, so the copies
            // are synchronous anyway; non_blocking lets them overlap where the runtime can. The batch is freed only after
            // the step, which reads scalars back (and so waits for the device) before it returns.
            using var view1 = Device is null ? null : batch.View1.to(Device, non_blocking: true);
            using var view2 = Device is null ? null : batch.View2.to(Device, non_blocking: true);
            result = _step.Run(view1 ?? batch.View1, view2 ?? batch.View2, _collective, _layout, Epoch, StepInEpoch, GlobalStep, lr);
        }
        catch
        {
            // the step left no trace; the loader restarts at the same step when it is redone
            _loaderStarted = false;
            throw;
        }
        GlobalStep++;
        StepInEpoch++;
        if (StepInEpoch == StepsPerEpoch)
        {
            StepInEpoch = 0;
            Epoch++;
            _loaderStarted = false;
        }
        return result;
    }

    /// <summary>The kNN monitor on the query encoder (eval mode, test transform).</summary>
    public Accuracy EvaluateKnn(int threads)
    {
        var source = Config.KnnFeatures == "backbone" ? FeatureSource.Backbone : FeatureSource.Head;
        var device = Model.EncoderQ.parameters().First().device.type;
        var knn = new KnnMonitor(Config.KnnK, Config.KnnT, source, KnnMonitor.ComputeFor(Config.KnnPrecision, device, Diagnostics.CpuDescription.Current()));
        return knn.Evaluate(Model.EncoderQ, Data.Train, Data.Test, _evalTransform, Data.Train.Classes.Count, threads);
    }

    /// <summary>Every tensor an exact resume needs, by name (model.*, optimizer.*).</summary>
    public List<KeyValuePair<string, Tensor>> StateTensors()
    {
        var result = new List<KeyValuePair<string, Tensor>>();
        foreach (var (name, t) in Model.state_dict())
        {
            result.Add(new("model." + name, t));
        }
        foreach (var (name, t) in Optimizer.StateTensors())
        {
            result.Add(new("optimizer." + name, t));
        }
        return result;
    }

    public CheckpointHeader Header(Dictionary<string, string>? extra = null)
    {
        var all = new Dictionary<string, string>(extra ?? [])
        {
            [StepInEpochKey] = StepInEpoch.ToString(CultureInfo.InvariantCulture),
            ["seed"] = Config.Seed.ToString(CultureInfo.InvariantCulture),
            ["world-size"] = _layout.WorldSize.ToString(CultureInfo.InvariantCulture),
        };
        return new CheckpointHeader(RunId, Epoch, GlobalStep, DateTimeOffset.UtcNow, Config.ToJson(), all);
    }

    /// <summary>
    /// Copies the current state and cursor into memory (<see cref="CheckpointFile.Encode"/>), the only part of a
    /// checkpoint that must happen between two steps; hashing and writing the image can run beside training.
    /// </summary>
    public CheckpointImage TakeCheckpoint(Dictionary<string, string>? extra = null)
    {
        using var scope = NewDisposeScope();
        return CheckpointFile.Encode(Header(extra), HostStateTensors());
    }

    /// <summary>Writes a checkpoint of the current state (atomic; see <see cref="CheckpointFile"/>). Returns its sha256.</summary>
    public string SaveCheckpoint(string path, Dictionary<string, string>? extra = null)
    {
        using var scope = NewDisposeScope();
        return CheckpointFile.Write(path, Header(extra), HostStateTensors());
    }

    /// <summary>
    /// <see cref="StateTensors"/> as the checkpoint format stores them: the tensors themselves on the CPU, copies on the
    /// CPU (owned by the caller's dispose scope) when the replica computes on an accelerator.
    /// </summary>
    private List<KeyValuePair<string, Tensor>> HostStateTensors()
    {
        var state = StateTensors();
        return Device is null ? state : state.Select(p => new KeyValuePair<string, Tensor>(p.Key, p.Value.cpu())).ToList();
    }

    /// <summary>
    /// A fresh run (no checkpoint) with <see cref="RunConfig.Init"/>: checks the file against
    /// <see cref="RunConfig.InitSha256"/> and starts both encoders from it (<see cref="InitializeEncoders"/>). Does
    /// nothing without <see cref="RunConfig.Init"/>.
    /// </summary>
    /// <exception cref="InvalidDataException">The file is missing, differs from the run's, or is another network.</exception>
    public void ApplyInit()
    {
        if (Config.Init.Length == 0)
        {
            return;
        }
        if (!File.Exists(Config.Init))
        {
            throw new InvalidDataException($"the run starts from the weights {Config.Init} (init), which this node does not have");
        }
        if (Config.InitSha256.Length != 0)
        {
            string sha;
            using (var file = File.OpenRead(Config.Init))
            {
                sha = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(file));
            }
            if (sha != Config.InitSha256)
            {
                throw new InvalidDataException($"the weights {Config.Init} (init) have SHA-256 {sha}, not the run's {Config.InitSha256}: another file than the one the run started from");
            }
        }
        using var weights = EncoderWeights.Read(Config.Init);
        InitializeEncoders(weights);
    }

    /// <summary>
    /// Starts both encoders from <paramref name="weights"/> (<see cref="RunConfig.Init"/>) instead of the seeded
    /// initialisation: the query encoder's backbone, and its head when the weights have one of the same shape (else
    /// the head stays seeded, as a new projection on pretrained features); then the key encoder becomes a copy of the
    /// query encoder, parameters and BN statistics, as MoCo starts it. Only before the first step.
    /// </summary>
    /// <exception cref="InvalidOperationException">A step has run.</exception>
    /// <exception cref="InvalidDataException">The weights are another network than <see cref="RunConfig.Encoder"/>; the message names both.</exception>
    public void InitializeEncoders(EncoderWeights weights)
    {
        ArgumentNullException.ThrowIfNull(weights);
        if (GlobalStep != 0)
        {
            throw new InvalidOperationException($"initial weights apply before the first step, not at step {GlobalStep}");
        }
        var shape = weights.Shape;
        var spec = Config.Encoder;
        EncoderWeights.EnsureFits(shape, spec, weights.Path);
        bool head = shape.HeadDim == spec.Dim && shape.Mlp == spec.Mlp;
        using (no_grad())
        {
            weights.LoadInto(Model.EncoderQ, withHead: head);
            var query = Model.EncoderQ.state_dict();
            foreach (var (name, target) in Model.EncoderK.state_dict())
            {
                target.copy_(query[name]);
            }
        }
    }

    /// <summary>Restores state and cursor from a checkpoint of this run.</summary>
    public void LoadCheckpoint(Checkpoint checkpoint)
    {
        if (checkpoint.Header.RunId != RunId)
        {
            throw new CheckpointRejectedException(checkpoint.Info.Path, $"belongs to run {checkpoint.Header.RunId}, this run is {RunId}");
        }
        var saved = RunConfig.FromJson(checkpoint.Header.ConfigJson);
        if (!saved.DefinesSameRunAs(Config))
        {
            throw new CheckpointRejectedException(checkpoint.Info.Path, "was written with a different configuration (on resume only the epochs, the data location, the kNN monitor and the checkpoint cadence may change)");
        }
        using (no_grad())
        {
            var state = Model.state_dict();
            foreach (var (name, target) in state)
            {
                if (!checkpoint.TryGet("model." + name, out var source))
                {
                    throw new CheckpointRejectedException(checkpoint.Info.Path, $"lacks tensor model.{name}");
                }
                if (!source.shape.SequenceEqual(target.shape))
                {
                    throw new CheckpointRejectedException(checkpoint.Info.Path, $"tensor model.{name} has shape [{string.Join(",", source.shape)}], the model expects [{string.Join(",", target.shape)}]");
                }
                target.copy_(source); // from the CPU onto the model's device, when it has one
            }
        }
        var optimizerState = checkpoint.Names.Where(n => n.StartsWith("optimizer.", StringComparison.Ordinal))
            .ToDictionary(n => n["optimizer.".Length..], n => checkpoint[n]);
        Optimizer.LoadState(optimizerState);
        Epoch = checkpoint.Header.Epoch;
        GlobalStep = checkpoint.Header.Step;
        StepInEpoch = int.Parse(checkpoint.Header.Extra[StepInEpochKey], CultureInfo.InvariantCulture);
        _loaderStarted = false;
    }

    public void Dispose()
    {
        _loader.Dispose();
        Optimizer.Dispose();
        Model.Dispose();
    }
}
