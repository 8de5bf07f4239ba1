using System.Diagnostics;
using Akka.Actor;
using Akka.Event;
using MoCo.Actors.Collectives;
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
public sealed partial class WorkerActor : ReceiveActor
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
}
