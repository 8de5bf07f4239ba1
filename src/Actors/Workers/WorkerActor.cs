using System.Diagnostics;
using System.Globalization;
using Akka.Actor;
using Akka.Event;
using System.Net;
using System.Security.Cryptography;
using MoCo.Actors.Collectives;
using MoCo.Actors.Collectives.Nccl;
using MoCo.Model.Collectives;
using MoCo.Actors.Checkpoints;
using MoCo.Actors.Queue;
using MoCo.Actors.Training;
using MoCo.Model.Checkpoints;
using MoCo.Model.Diagnostics;
using MoCo.Model.Evaluation;
using MoCo.Model.Training;
using TorchSharp;

namespace MoCo.Actors.Workers;

/// <summary>
/// One device slot of a run (protocol: <see cref="Worker"/>). Owns rank r's <see cref="Pretrainer"/> over its
/// member of the <see cref="WorkerGroup"/> and runs on a pinned dispatcher, so the TorchSharp dispose scopes of
/// its steps open and close on one dedicated thread. Every handler is synchronous: a chunk of steps runs to its
/// end inside one message. Any exception is reported to the parent as <see cref="Worker.WorkerFailed"/> after
/// aborting the group (so no peer waits for this rank); the parent then stops the worker that failed first and
/// re-creates it (<see cref="WorkerStart"/>), while the others, whose steps were atomic, keep their state.
/// </summary>
public sealed class WorkerActor : ReceiveActor
{
    /// <summary>The dispatcher every worker runs on (see <see cref="DispatcherHocon"/>).</summary>
    public const string DispatcherId = "akka.actor.moco-worker-dispatcher";

    /// <summary>The HOCON that defines <see cref="DispatcherId"/>; the actor system that hosts workers must include it.</summary>
    public const string DispatcherHocon = """
        akka.actor.moco-worker-dispatcher {
          # one dedicated thread per worker: TorchSharp dispose scopes are thread-static
          type = PinnedDispatcher
        }
        """;

    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly TrainingSettings _settings;
    private readonly WorkerGroup? _group;
    private IActorRef? _director;
    private int _rank;
    private readonly int _localSlot;
    private TcpRingListener? _listener;
    private IAbortableCollective? _network;
    private readonly WorkerStart _start;
    private readonly IActorRef _checkpointer;
    private readonly IActorRef _queueKeeper;
    private Pretrainer? _trainer;
    private int _generation = -1;
    private bool _knnAtStartPending;
    private Accuracy? _lastKnn;
    private Stopwatch? _epochClock;
    private double _epochTrainSeconds;
    private double _lossSum;
    private double _accSum;
    private int _epochSteps;
    private int _worldSize = 1;

    // the losses of this replica's last steps (contiguous, ending at its step), for a director that takes it over
    private readonly Queue<double> _recentLosses = new();
    private long _recentFirst;

    // the report of the last epoch this replica ended
    private Worker.EpochDone? _lastEpoch;

    /// <summary>Creates rank <paramref name="rank"/>'s worker; use <see cref="Props"/>.</summary>
    /// <param name="settings">The run and how to split the machine.</param>
    /// <param name="rank">This worker's rank.</param>
    /// <param name="group">The run's in-process data plane, created by the parent.</param>
    /// <param name="start">Where the worker's first state comes from.</param>
    /// <param name="checkpointer">Writes the checkpoints rank 0 takes.</param>
    /// <param name="queueKeeper">Receives the queue report at the end of every chunk.</param>
    /// <param name="director">Who drives the worker; null for the parent (a remote node's agent creates workers for a director elsewhere).</param>
    /// <param name="localSlot">The worker's slot on this process, which names its device (<c>cuda:localSlot</c>); null for its rank.</param>
    public WorkerActor(TrainingSettings settings, int rank, WorkerGroup? group, WorkerStart start, IActorRef checkpointer, IActorRef queueKeeper, IActorRef? director = null, int? localSlot = null)
    {
        _settings = settings;
        _rank = rank;
        _localSlot = localSlot ?? rank;
        _group = group;
        _director = director;
        _start = start;
        _checkpointer = checkpointer;
        _queueKeeper = queueKeeper;
        Receive<Worker.PrepareGeneration>(HandlePrepareGeneration);
        Receive<Worker.JoinGeneration>(HandleJoinGeneration);
        Receive<Worker.RunSteps>(HandleRunSteps);
        Receive<Worker.TakeCheckpoint>(HandleTakeCheckpoint);
        Receive<Worker.Adopt>(HandleAdopt);
    }

    /// <summary>Props for rank <paramref name="rank"/>'s worker, on the pinned <see cref="DispatcherId"/>.</summary>
    /// <param name="settings">The run and how to split the machine.</param>
    /// <param name="rank">This worker's rank, in [0, group.WorldSize).</param>
    /// <param name="group">The run's in-process data plane (a local object reference).</param>
    /// <param name="start">Where the worker's first state comes from.</param>
    /// <param name="checkpointer">Writes the checkpoints rank 0 takes.</param>
    /// <param name="queueKeeper">Receives the queue report at the end of every chunk.</param>
    /// <param name="director">Who drives the worker; null for the parent.</param>
    /// <param name="localSlot">The worker's slot on this process (its device); null for its rank (the director's own workers).</param>
    public static Props Props(TrainingSettings settings, int rank, WorkerGroup? group, WorkerStart start, IActorRef checkpointer, IActorRef queueKeeper, IActorRef? director = null, int? localSlot = null)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(start);
        ArgumentOutOfRangeException.ThrowIfNegative(rank);
        if (group is not null)
        {
            ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(rank, group.WorldSize);
        }

        if (localSlot is { } slot)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(slot, nameof(localSlot));
        }

        return Akka.Actor.Props.Create(() => new WorkerActor(settings, rank, group, start, checkpointer, queueKeeper, director, localSlot)).WithDispatcher(DispatcherId);
    }

    private IActorRef Director => _director ?? Context.Parent;

    /// <summary>
    /// Drops (and logs) a command from anyone but this worker's director (its parent, or the remote director that had
    /// its node agent create it). Messages from other processes were already authenticated by the cluster's message
    /// key; this keeps a second or stale director from driving the worker.
    /// </summary>
    protected override bool AroundReceive(Receive receive, object message)
    {
        if (message is IWireMessage && !Sender.Equals(Director))
        {
            _log.Warning("Rank {0}: dropped {1} from {2}, which is not this worker's director", _rank, message.GetType().Name, Sender.Path);
            return true;
        }

        return base.AroundReceive(receive, message);
    }

    /// <inheritdoc />
    protected override void PreStart()
    {
        try
        {
            torch.set_num_threads(_settings.ThreadsPerWorker);
            var config = _settings.Config;
            int world = _group?.WorldSize ?? _rank + 1;
            var layout = new BatchLayout(config.BatchSize, config.BnSplits, world);
            // replicas start equal: model initialisation draws only from the run's own seeded generator;
            // the collective is bound when the director says which generation to join
            var device = ComputeDevices.For(_settings.Device, _localSlot);
            if (_settings.NumericsCheck)
            {
                // before any state: a machine whose kernels compute this network wrongly fails here, by name, not
                // with a NaN some steps later
                var report = NumericsGate.Ensure(config.Encoder, config.ComputePrecision, config.ImageSize, layout.LocalBatch(_rank), device);
                _log.Info("Rank {0}: numerics {1}", _rank, report.Summary);
            }

            _trainer = new Pretrainer(config, _settings.RunId, _settings.Data, new UnboundCollective(_rank, world), layout, _settings.LoaderThreads, device)
            {
                Bucketing = _settings.Bucketing,
            };

            var path = _start switch
            {
                WorkerStart.FromCheckpoint fromCheckpoint => fromCheckpoint.Path,
                WorkerStart.Fresh => _settings.ResumeFrom,
                _ => null,
            };
            if (path is not null)
            {
                using var checkpoint = CheckpointFile.Read(path, _settings.RunId);
                _trainer.LoadCheckpoint(checkpoint);
            }
            else if (_start is WorkerStart.Fresh)
            {
                _trainer.ApplyInit(); // moco train --init: both encoders start from the given weights (a peer's state comes over the data plane)
            }

            _knnAtStartPending = _rank == 0 && _settings.KnnAtStart && _trainer.GlobalStep == 0 && config.KnnEvery > 0;
            _log.Info("Rank {0} of {1} ready at epoch {2}, step {3} ({4} torch threads, {5}, on {6})", new object[] { _rank, world, _trainer.Epoch, _trainer.StepInEpoch, _settings.ThreadsPerWorker, _start, device?.ToString() ?? "the CPU" });
            Director.Tell(new Worker.Ready(_rank, _trainer.GlobalStep, _trainer.Epoch, _trainer.StepInEpoch, _trainer.StepsPerEpoch,
                device is null || device.type == DeviceType.CPU ? "cpu" : $"cuda:{device.index}"));
        }
        catch (Exception e)
        {
            _trainer?.Dispose();
            _trainer = null;
            Fail(Director, "starting", e);
        }
    }

    /// <inheritdoc />
    protected override void PostStop()
    {
        _network?.Dispose();
        _listener?.Dispose();
        _trainer?.Dispose();
        _trainer = null;
    }

    private void HandlePrepareGeneration(Worker.PrepareGeneration prepare)
    {
        try
        {
            _listener?.Dispose();
            _listener = null;
            if (_settings.Backend == DataPlaneKind.Nccl)
            {
                // rank 0 names the communicator (ncclGetUniqueId opens its bootstrap socket in this process); the
                // director forwards the id to every rank in JoinGeneration
                var id = prepare.Rank == 0 ? _settings.Nccl.CreateUniqueId().ToArray() : null;
                Sender.Tell(new Worker.Prepared(prepare.Rank, prepare.Generation, null, DataPlaneKind.Nccl, id));
                return;
            }

            _listener = TcpRingListener.Bind(new IPEndPoint(IPAddress.Parse(_settings.DataPlane.BindAddress), _settings.DataPlane.Port));
            var endpoint = $"{_settings.DataPlane.AdvertisedHost}:{_listener.EndPoint.Port.ToString(CultureInfo.InvariantCulture)}";
            Sender.Tell(new Worker.Prepared(prepare.Rank, prepare.Generation, endpoint));
        }
        catch (Exception e)
        {
            Fail(Sender, "binding the data plane", e);
        }
    }

    private void HandleJoinGeneration(Worker.JoinGeneration join)
    {
        if (_trainer is null)
        {
            Sender.Tell(Failure("joining a generation", "the worker failed to start and holds no model"));
            return;
        }

        try
        {
            _rank = join.Rank;
            _network?.Dispose();
            _network = null;
            ICollective collective;
            if (join.NcclUniqueId is { } uniqueId)
            {
                _listener?.Dispose();
                _listener = null;
                _network = _settings.Nccl.Join(join.Rank, join.WorldSize, NcclUniqueId.FromBytes(uniqueId), _localSlot, _settings.CollectiveTimeout);
                collective = _network;
            }
            else if (join.Endpoints is { } endpoints)
            {
                var listener = _listener ?? throw new InvalidOperationException($"generation {join.Generation}: the data plane was not prepared (no PrepareGeneration)");
                _listener = null; // Connect takes it over
                var options = new TcpRingOptions(join.Rank, endpoints.Select(TcpRingOptions.ParseEndpoint).ToList(), _settings.RunId, join.Generation, _settings.DataPlane.Secret)
                {
                    ConnectTimeout = _settings.DataPlane.ConnectTimeout,
                    OperationTimeout = _settings.CollectiveTimeout,
                    Protection = _settings.DataPlane.Protection,
                };
                if (options.Protection == DataPlaneProtection.None)
                {
                    _log.Warning("Rank {0}: the TCP ring of generation {1} is unprotected ({2} = none): tensors travel in the clear with no integrity check; use it only to benchmark",
                        join.Rank, join.Generation, DataPlaneProtections.SettingKey);
                }

                _network = TcpRingCollective.Connect(listener, options);
                collective = _network;
            }
            else
            {
                collective = (_group ?? throw new InvalidOperationException("an in-process generation needs the in-process group")).Member(join.Rank, join.Generation);
            }

            if (_trainer.Device is not null && join.NcclUniqueId is null && join.WorldSize > 1)
            {
                // the in-process group and the TCP ring move host memory: stage the device's tensors through it
                collective = new HostStagedCollective(collective);
            }

            if (_settings.WrapCollective is { } wrap)
            {
                collective = wrap(_rank, collective);
            }

            var config = _settings.Config;
            _trainer.Rebind(collective, new BatchLayout(config.BatchSize, config.BnSplits, collective.WorldSize));
            _generation = join.Generation;
            _worldSize = join.WorldSize;
            if (join.SourceRank >= 0)
            {
                _trainer.SyncFrom(join.SourceRank);
                _log.Info("Rank {0} took the state of rank {1} in generation {2}: step {3}", _rank, join.SourceRank, join.Generation, _trainer.GlobalStep);
                if (_recentFirst + _recentLosses.Count != _trainer.GlobalStep)
                {
                    _recentLosses.Clear(); // another replica's past: these losses no longer end where the state does
                }
            }

            Sender.Tell(new Worker.Joined(_rank, join.Generation, _trainer.GlobalStep, _trainer.Epoch, _trainer.StepInEpoch));
        }
        catch (Exception e)
        {
            Fail(Sender, "joining a generation", e);
        }
    }

    private void HandleRunSteps(Worker.RunSteps command)
    {
        if (_trainer is null)
        {
            Sender.Tell(Failure("training", "the worker failed to start and holds no model"));
            return;
        }

        var operation = "training";
        var clock = Stopwatch.StartNew();
        long firstStep = _trainer.GlobalStep;
        double loss = double.NaN;
        double lr = double.NaN;
        try
        {
            if (_knnAtStartPending)
            {
                operation = "evaluating kNN";
                var knn = _trainer.EvaluateKnn(_settings.Threads);
                Sender.Tell(new Worker.KnnEvaluated(knn.Top1, knn.Top5));
                _knnAtStartPending = false;
                clock.Restart();
                operation = "training";
            }

            while (!_trainer.Finished && _trainer.GlobalStep < command.UpTo)
            {
                int epoch = _trainer.Epoch;
                _epochClock ??= Stopwatch.StartNew();
                long before = Stopwatch.GetTimestamp();
                var result = _trainer.TrainStep();
                _epochTrainSeconds += Stopwatch.GetElapsedTime(before).TotalSeconds;
                loss = result.Loss;
                lr = result.Lr;
                KeepLoss(result.GlobalStep, result.Loss);
                _lossSum += result.Loss;
                _accSum += result.InstanceAcc;
                _epochSteps++;
                if (_rank == 0)
                {
                    Sender.Tell(new Worker.StepCompleted(result.GlobalStep, result.Epoch, result.StepInEpoch, _trainer.StepsPerEpoch, result.Loss, result.InstanceAcc, result.Lr, _trainer.LastAllReduceWaitSeconds));
                }

                if (_trainer.Epoch != epoch)
                {
                    operation = "evaluating kNN";
                    EndEpoch(epoch, lr, Sender);
                    break;
                }
            }
        }
        catch (Exception e)
        {
            Fail(Sender, operation, e);
            return;
        }

        double seconds = clock.Elapsed.TotalSeconds;
        ReportQueue();
        long steps = _trainer.GlobalStep - firstStep;
        double rate = steps * _settings.Config.BatchSize / Math.Max(1e-9, seconds);
        // rank 0 fingerprints the whole state where the chunk ends (every replica holds the same): the journal keeps it
        // for moco replay --verify
        var digest = _rank == 0 ? StateDigest.Compute(_trainer.StateTensors()) : null;
        Sender.Tell(new Worker.StepsDone(_rank, _trainer.GlobalStep, _trainer.Epoch, _trainer.StepInEpoch, loss, lr, rate,
            digest?.Digest, digest?.Checksums.ToArray(), _settings.ThreadsPerWorker));
    }

    private void HandleTakeCheckpoint(Worker.TakeCheckpoint command)
    {
        if (_trainer is null)
        {
            Sender.Tell(Failure("taking a checkpoint", "the worker failed to start and holds no model"));
            return;
        }

        if (command.GlobalStep != _trainer.GlobalStep || command.Epoch < 0 || command.Epoch > _settings.Config.Epochs)
        {
            Sender.Tell(Failure("taking a checkpoint", $"a checkpoint of epoch {command.Epoch}, step {command.GlobalStep} was asked of a worker at step {_trainer.GlobalStep}"));
            return;
        }

        try
        {
            var clock = Stopwatch.StartNew();
            // the file is named in this worker's own run directory: a path never comes from a message
            var path = new CheckpointDirectory(_settings.RunDirectory).PathFor(command.Epoch, command.GlobalStep);
            var extra = new Dictionary<string, string>();
            if (command.KnnTop1Percent is { } top1)
            {
                extra["knn-top1"] = top1.ToString("R", CultureInfo.InvariantCulture);
            }

            var image = _trainer.TakeCheckpoint(extra);
            _checkpointer.Tell(new Checkpointer.Write(path, image, command.KnnTop1Percent, Sender));
            Sender.Tell(new Worker.CheckpointTaken(path, clock.Elapsed.TotalSeconds, image.FileLength));
        }
        catch (Exception e)
        {
            Fail(Sender, "taking a checkpoint", e);
        }
    }

    /// <summary>Keeps step <paramref name="step"/>'s loss at the end of the contiguous tail of the last <see cref="Worker.MaxCarriedLosses"/>.</summary>
    private void KeepLoss(long step, double loss)
    {
        if (_recentLosses.Count > 0 && step != _recentFirst + _recentLosses.Count)
        {
            _recentLosses.Clear();
        }

        if (_recentLosses.Count == 0)
        {
            _recentFirst = step;
        }

        _recentLosses.Enqueue(loss);
        if (_recentLosses.Count > Worker.MaxCarriedLosses)
        {
            _recentLosses.Dequeue();
            _recentFirst++;
        }
    }

    /// <summary>
    /// A new director takes this replica over (its node agent sends this after the previous director was lost): from now
    /// on only the new director may command it; it learns the replica's cursor and the losses of its last steps.
    /// </summary>
    private void HandleAdopt(Worker.Adopt adopt)
    {
        if (!Sender.Equals(Context.Parent))
        {
            _log.Warning("Rank {0}: dropped Adopt from {1}, which is not this worker's node agent", _rank, Sender.Path);
            return;
        }

        _director = adopt.Director;
        _rank = adopt.Rank;
        if (_trainer is null)
        {
            Director.Tell(Failure("being taken over", "the worker failed to start and holds no model"));
            return;
        }

        var losses = _recentLosses.ToArray();
        long first = _recentFirst;
        if (first + losses.Length != _trainer.GlobalStep)
        {
            losses = [];
            first = _trainer.GlobalStep;
        }

        var device = _trainer.Device;
        _log.Info("Rank {0}: taken over by {1} at step {2} (generation {3}), carrying the losses of {4} step(s)", _rank, adopt.Director.Path, _trainer.GlobalStep, _generation, losses.Length);
        Director.Tell(new Worker.Adopted(_rank, Self.Path.Name, _trainer.GlobalStep, _trainer.Epoch, _trainer.StepInEpoch, _trainer.StepsPerEpoch,
            device is null || device.type == DeviceType.CPU ? "cpu" : $"cuda:{device.index}", _generation, _worldSize, _settings.ThreadsPerWorker, Worker.ConfigDigest(_settings.Config), first, losses,
            _lastEpoch is { } ended && ended.GlobalStep == _trainer.GlobalStep ? ended : null));
    }

    /// <summary>Tells the queue keeper where this replica's queue stands (rank 0 also sends the keys).</summary>
    private void ReportQueue()
    {
        if (_queueKeeper.IsNobody())
        {
            return; // a remote node's worker: the keeper lives with the director (its reports would not fit a frame)
        }

        var trainer = _trainer!;
        var queue = trainer.Model.Queue;
        long pointer = trainer.Model.QueuePointer;
        using var host = queue.device_type == DeviceType.CPU ? null : queue.cpu(); // a device's queue is read through a host copy
        using var contiguous = (host ?? queue).contiguous();
        var bytes = contiguous.bytes;
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        hash.AppendData(bytes);
        hash.AppendData(BitConverter.GetBytes(pointer));
        var digest = Convert.ToHexStringLower(hash.GetHashAndReset());
        // only rank 0's keys become the canonical copy: the other ranks send their digest alone
        float[]? keys = null;
        if (_rank == 0)
        {
            keys = new float[queue.NumberOfElements];
            System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(bytes).CopyTo(keys);
        }

        _queueKeeper.Tell(new QueueKeeper.Report(_rank, _generation, trainer.GlobalStep, pointer, digest, keys, (int)queue.shape[0]));
    }

    /// <summary>Closes the epoch's accumulators; rank 0 runs the kNN monitor when due and reports the epoch.</summary>
    private void EndEpoch(int epoch, double lr, IActorRef replyTo)
    {
        var trainer = _trainer!;
        var config = trainer.Config;
        _lastKnn = null;
        double? knnSeconds = null;
        if (_rank == 0 && config.KnnEvery > 0 && ((epoch + 1) % config.KnnEvery == 0 || trainer.Finished))
        {
            long started = System.Diagnostics.Stopwatch.GetTimestamp();
            _lastKnn = trainer.EvaluateKnn(_settings.Threads);
            knnSeconds = System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalSeconds;
        }

        // every rank holds the epoch's report (the losses and accuracies are all-reduced, so all agree); rank 0 sends
        // it, the others keep it for a director that takes them over before the epoch was journaled
        int steps = Math.Max(1, _epochSteps);
        _lastEpoch = new Worker.EpochDone(
            epoch,
            trainer.GlobalStep,
            _epochSteps,
            _lossSum / steps,
            _accSum / steps,
            lr,
            _lastKnn?.Top1,
            _lastKnn?.Top5,
            _epochClock?.Elapsed.TotalSeconds ?? 0,
            _epochSteps * config.BatchSize / Math.Max(1e-9, _epochTrainSeconds),
            trainer.LoaderWaitSeconds,
            knnSeconds);
        if (_rank == 0)
        {
            replyTo.Tell(_lastEpoch);
        }

        _epochClock = null;
        _epochTrainSeconds = 0;
        _lossSum = 0;
        _accSum = 0;
        _epochSteps = 0;
    }

    /// <summary>Aborts the group and tells <paramref name="replyTo"/> what failed.</summary>
    private void Fail(IActorRef replyTo, string operation, Exception e)
    {
        // the first failure of the generation is the cause; the others failed because the group was aborted
        bool first = _group?.ReportFailure(_rank) ?? e is not CollectiveException;
        _network?.Abort();
        if (first)
        {
            _log.Error(e, "Rank {0} failed while {1}", _rank, operation);
        }
        else
        {
            _log.Warning("Rank {0} stopped while {1} after a peer failed: {2}", _rank, operation, e.Message);
        }

        replyTo.Tell(Failure(operation, $"{e.GetType().Name}: {e.Message}", first));
    }

    private Worker.WorkerFailed Failure(string operation, string error, bool first = true)
    {
        return new Worker.WorkerFailed(_rank, operation, _trainer?.GlobalStep ?? -1, _trainer?.Epoch ?? -1, _trainer?.StepInEpoch ?? -1, error, first);
    }
}
