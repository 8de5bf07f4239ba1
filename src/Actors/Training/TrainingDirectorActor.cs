using System.Globalization;
using Akka.Actor;
using Akka.Event;
using Akka.Pattern;
using Akka.Cluster;
using MoCo.Actors.Checkpoints;
using MoCo.Actors.Collectives;
using MoCo.Actors.Collectives.Nccl;
using MoCo.Actors.Nodes;
using MoCo.Actors.Queue;
using MoCo.Actors.Run;
using MoCo.Actors.Workers;
using MoCo.Model.Checkpoints;
using MoCo.Model.Data;
using MoCo.Model.Training;
using TorchSharp;

namespace MoCo.Actors.Training;

/// <summary>
/// Runs one run on this process (protocol: <see cref="TrainingDirector"/>): the active half of the run's coordination,
/// beside the event-sourced <see cref="RunRecorderActor"/> that records what it decides. It creates one
/// <see cref="WorkerActor"/> per device slot, the <c>checkpointer</c> and the <c>queue-keeper</c>, records the run,
/// the membership and each generation, then drives the workers chunk by chunk: every worker runs the same steps; at
/// each epoch end rank 0's report becomes <c>EpochCompleted</c>, and rank 0 copies its state for the checkpointer,
/// which writes it beside training and reports the file (<c>CheckpointSaved</c>).
/// </summary>
/// <remarks>
/// Supervision: a worker that fails (an exception, a non-finite loss, out of memory, or it stops) is stopped and
/// re-created after a backoff; a new generation starts and every replica takes the state of a surviving worker by
/// broadcast (or, when none survives, of the latest valid checkpoint). Steps are atomic, so the interrupted step left
/// no trace and is redone. After <see cref="TrainingSettings.MaxWorkerRestarts"/> failures in a row the run ends with
/// <c>RunFailed</c> and the cause. The recorder (unless one is given) and the checkpointer run under
/// <c>Backoff.OnStop</c>.
/// </remarks>
public sealed partial class TrainingDirectorActor : ReceiveActor, IWithTimers
{
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly TrainingSettings _settings;
    private readonly IActorRef _subscriber;
    private readonly IActorRef? _givenRecorder;
    private readonly Queue<Action> _afterAck = new();
    private readonly HashSet<int> _outstanding = [];

    // the kind of reply the exchange in _outstanding waits for
    private Type? _awaitedReply;

    // an epoch-end checkpoint whose turn came while a new generation was forming: taken once it has formed at that step
    private (long Step, double? KnnTop1Percent)? _owedCheckpoint;
    private readonly List<Worker.WorkerFailed> _failures = [];
    private readonly Dictionary<int, Worker.Ready> _ready = [];
    private readonly Dictionary<int, Worker.Joined> _joined = [];
    private readonly Dictionary<int, Worker.StepsDone> _done = [];
    private readonly HashSet<IActorRef> _stopping = [];
    private IActorRef _recorder = ActorRefs.Nobody;
    private IActorRef _checkpointer = ActorRefs.Nobody;
    private IActorRef _queueKeeper = ActorRefs.Nobody;

    // the TensorBoard event writer (Nobody: TensorBoard off), fed with what metrics.csv and the subscriber get
    private IActorRef _tensorBoard = ActorRefs.Nobody;
    private readonly NodeRoster _roster = new();
    private readonly HashSet<string> _disconnected = []; // nodes of the run whose remoting connection closed (until it is made again)
    private readonly Dictionary<int, Worker.Prepared> _prepared = [];

    // the replicas this director took over from its lost predecessor, by rank (their cursors and unjournaled losses)
    private readonly Dictionary<int, Worker.Adopted> _adopted = [];
    private bool _tookOver;

    // this director ends interrupted while a standby trainer is Up: the nodes keep their workers for the standby's director
    private bool _handOver;

    // the journal's last checkpoint, when this director resumes from it (it was given none, and no replica outlived its predecessor)
    private string? _journalCheckpoint;
    private List<Slot> _slots = [];
    private WorkerGroup? _group;
    private int _incarnation;
    private RunState _state = RunState.Empty;
    private Action? _afterAllReplies;
    private readonly Queue<Action> _afterStopsAndWrites = new(); // in order: an interrupt's end must not replace a recovery's step, nor the reverse
    private bool _stateKnown;
    private bool _started;
    private bool _finishing;
    private bool _finished;
    private bool _interruptRequested;
    private Exception? _lastChildFailure;
    private Worker.EpochDone? _epochDone;
    private int _stepsPerEpoch;
    private long _globalStep;

    // the step of the latest checkpoint taken or resumed from (-1: none); an interrupt checkpoints when it is behind
    private long _checkpointedStep = -1;
    private int _epoch;
    private int _pendingWrites;
    private int _failuresInARow;
    private long _recordsSent;
    private long _recordsAnswered;
    private string? _lastCheckpoint;
    private string? _pendingRecovery;
    private bool _awaitingMinimum;
    private readonly Dictionary<string, string> _leaveReasons = [];
    private readonly Dictionary<string, byte[]> _nonces = [];
    private readonly HashSet<string> _proven = [];

    // rank 0's losses of the steps since they were last journaled (StepsRecorded)
    private readonly List<(long Step, double Loss)> _losses = [];

    // how the current generation sums gradients (StepsRecorded.DataPlane)
    private string _dataPlane = StepsRecordedPlanes.InProcess;

    // every timer gets a key of its own, as the scheduler's one-shot messages did (none replaces another); all are
    // cancelled when the director stops
    private long _timerKeys;

    /// <inheritdoc />
    public ITimerScheduler Timers { get; set; } = null!;
    private readonly HashSet<string> _graceful = new(StringComparer.Ordinal);

    /// <summary>The cluster role of nodes that offer workers to the run (<c>moco node</c>).</summary>
    public const string WorkerRole = "worker";

    /// <summary>The cluster role of the processes that may run the director and the recorder (<c>moco train</c>, also as a standby).</summary>
    public const string TrainerRole = "trainer";

    /// <summary>Creates the director; use <see cref="Props"/>.</summary>
    /// <param name="settings">The run and how to split the machine.</param>
    /// <param name="subscriber">Receives the progress and the final message.</param>
    /// <param name="recorder">The run recorder to use (a cluster singleton's proxy), or null to create one as a child.</param>
    public TrainingDirectorActor(TrainingSettings settings, IActorRef subscriber, IActorRef? recorder)
    {
        _settings = settings;
        _subscriber = subscriber;
        _givenRecorder = recorder;
        Receive<RunState>(HandleRunState);
        Receive<RunRecorder.Ack>(HandleAck);
        Receive<RunRecorder.Rejected>(HandleRejected);
        Receive<JournalTimeout>(HandleJournalTimeout);
        Receive<Worker.Ready>(HandleReady);
        Receive<Worker.Joined>(HandleJoined);
        Receive<Worker.Adopted>(HandleAdopted);
        Receive<Worker.KnnEvaluated>(knn => _subscriber.Tell(knn));
        Receive<Worker.StepCompleted>(step =>
        {
            _losses.Add((step.GlobalStep, step.Loss));
            _subscriber.Tell(step);
            _tensorBoard.Tell(step);
        });
        Receive<Worker.EpochDone>(HandleEpochDone);
        Receive<Worker.StepsDone>(HandleStepsDone);
        Receive<Worker.CheckpointTaken>(HandleCheckpointTaken);
        Receive<Worker.WorkerFailed>(HandleWorkerFailed);
        Receive<Checkpointer.Written>(HandleCheckpointWritten);
        Receive<Checkpointer.WriteFailed>(HandleCheckpointWriteFailed);
        Receive<QueueKeeper.Age>(age =>
        {
            _subscriber.Tell(age);
            _tensorBoard.Tell(age);
        });
        Receive<QueueKeeper.Inconsistent>(HandleQueueInconsistent);
        Receive<RecreateWorkers>(HandleRecreateWorkers);
        Receive<Worker.Prepared>(HandlePrepared);
        Receive<NodeAgent.Offer>(HandleOffer);
        Receive<NodeAgent.StartFailed>(HandleStartFailed);
        Receive<NodeAgent.Leaving>(leaving =>
        {
            _graceful.Add(leaving.Node);
            _log.Info("Run {0}: node {1} leaves ({2})", _settings.RunId, leaving.Node, leaving.Reason);
            HandleNodeLost(leaving.Node, $"leaving gracefully ({leaving.Reason})");
        });
        Receive<AskForOffer>(ask =>
        {
            bool answered = _roster.HasOffered(ask.Node);
            bool member = Akka.Cluster.Cluster.Get(Context.System).State.Members.Any(m => m.Address.ToString() == ask.Node && m.Status == MemberStatus.Up);
            if (!ask.Retry || (!answered && member && _nonces.ContainsKey(ask.Node)))
            {
                AskForOfferNow(ask.Node);
            }
        });
        Receive<ProofDeadline>(HandleProofDeadline);
        Receive<RetryStart>(_ => TryStartElastic());
        Receive<ClusterEvent.CurrentClusterState>(HandleClusterState);
        Receive<ClusterEvent.MemberUp>(up => HandleMemberUp(up.Member));
        Receive<ClusterEvent.UnreachableMember>(u => HandleNodeLost(u.Member.Address.ToString(), "unreachable"));
        Receive<ClusterEvent.MemberRemoved>(r =>
        {
            _disconnected.Remove(r.Member.Address.ToString());
            HandleNodeLost(r.Member.Address.ToString(), "removed from the cluster");
        });
        Receive<Akka.Remote.DisassociatedEvent>(HandleDisassociated);
        Receive<Akka.Remote.AssociatedEvent>(e => _disconnected.Remove(e.RemoteAddress.ToString()));
        Receive<TrainingDirector.Interrupt>(HandleInterrupt);
        Receive<Terminated>(HandleTerminated);
    }

    /// <summary>Props for the director of one run.</summary>
    /// <param name="settings">The run and how to split the machine; validated here.</param>
    /// <param name="subscriber">Receives the progress and the final message; none when null.</param>
    /// <param name="recorder">The run recorder (e.g. a cluster singleton proxy); null creates one as a child under Backoff.OnStop.</param>
    public static Props Props(TrainingSettings settings, IActorRef? subscriber, IActorRef? recorder = null)
    {
        ArgumentNullException.ThrowIfNull(settings);
        settings.Validate();
        var target = subscriber ?? ActorRefs.Nobody;
        return Akka.Actor.Props.Create(() => new TrainingDirectorActor(settings, target, recorder));
    }

    /// <summary>The actor name of rank <paramref name="rank"/>'s worker: <c>worker-{rank}</c>, also its worker id in the journal.</summary>
    /// <param name="rank">The rank.</param>
    public static string WorkerName(int rank)
    {
        return "worker-" + rank.ToString(CultureInfo.InvariantCulture);
    }

    /// <summary>
    /// Props that keep <paramref name="child"/> alive under <c>Backoff.OnStop</c>: when it stops (a persistent actor does
    /// after a journal failure) it is started again after 0.5 s, doubling to 10 s.
    /// </summary>
    /// <param name="child">The supervised actor's props.</param>
    /// <param name="childName">Its name under the supervisor.</param>
    public static Props UnderBackoff(Props child, string childName)
    {
        // restarted however often it stops (-1): the run's journal client must come back whenever the journal does
        return BackoffSupervisor.Props(Akka.Pattern.Backoff.OnStop(child, childName, TimeSpan.FromMilliseconds(500), TimeSpan.FromSeconds(10), 0.2, -1));
    }

    /// <inheritdoc />
    protected override SupervisorStrategy SupervisorStrategy()
    {
        // a child that throws is stopped, not restarted: a worker's device state cannot be trusted after a failure
        return new OneForOneStrategy(e =>
        {
            _lastChildFailure = e is ActorInitializationException { InnerException: { } inner } ? inner : e;
            return Directive.Stop;
        });
    }

    /// <inheritdoc />
    protected override void PreStart()
    {
        torch.set_num_threads(_settings.ThreadsPerWorker);
        Directory.CreateDirectory(_settings.RunDirectory);
        _recorder = _givenRecorder
            ?? Context.ActorOf(UnderBackoff(RunRecorderActor.Props(_settings.RunId), "run-recorder"), "run-recorder");
        Context.Watch(_recorder);
        _checkpointer = Context.Watch(Context.ActorOf(
            UnderBackoff(CheckpointerActor.Props(_settings.RunDirectory, _settings.Config.KeepCheckpoints), "checkpointer"), "checkpointer"));
        var config = _settings.Config;
        int keysPerStep = config.BatchSize * (config.Moco.Symmetric ? 2 : 1);
        if (_settings.TensorBoard)
        {
            var data = _settings.Data.Train;
            var augmentation = RunTransforms.Pretrain(config);
            _tensorBoard = Context.ActorOf(TensorBoardActor.Props(_settings.RunDirectory, config.ToJson(), config.Epochs,
                epoch => AugmentationGrid.Render(data, augmentation, config.Seed, epoch)), "tensorboard");
        }

        _queueKeeper = Context.ActorOf(QueueKeeperActor.Props(new QueueLedger(config.Moco.QueueSize, keysPerStep), _settings.Devices, Self), "queue-keeper");
        if (_settings.Elastic)
        {
            Akka.Cluster.Cluster.Get(Context.System).Subscribe(Self, ClusterEvent.SubscriptionInitialStateMode.InitialStateAsSnapshot,
                typeof(ClusterEvent.MemberUp), typeof(ClusterEvent.UnreachableMember), typeof(ClusterEvent.MemberRemoved));
            Context.System.EventStream.Subscribe(Self, typeof(Akka.Remote.DisassociatedEvent));
            Context.System.EventStream.Subscribe(Self, typeof(Akka.Remote.AssociatedEvent));
        }

        _recorder.Tell(RunRecorder.GetState.Instance);
    }

    /// <inheritdoc />
    protected override void PostStop()
    {
        if (_settings.Elastic)
        {
            Akka.Cluster.Cluster.Get(Context.System).Unsubscribe(Self);
            Context.System.EventStream.Unsubscribe(Self);
        }

        // children (the workers) have stopped by now: nobody uses the group any more
        _group?.Dispose();
    }

    private void HandleRunState(RunState state)
    {
        if (_stateKnown)
        {
            return;
        }

        _stateKnown = true;
        _state = state;
        if (state.IsFinished)
        {
            var why = state.FailureReason is null ? string.Empty : $" ({state.FailureReason})";
            var reason = $"run {_settings.RunId} is already {state.Status.ToString().ToLowerInvariant()} in the journal of {_settings.RunDirectory}{why}; "
                + "a finished run takes no further training: start a new run";
            _log.Warning("Run {0}: {1}", _settings.RunId, reason);
            Finish(new TrainingDirector.AlreadyFinished(_settings.RunId, state.Status == RunStatus.Completed, reason));
            return;
        }

        if (state.Status == RunStatus.NotStarted)
        {
            Record(new RunRecorder.StartRun(_settings.RunId, _settings.Config.ToJson()), JoinWorkers);
        }
        else
        {
            _log.Info("Run {0}: resuming from the journal (generation {1}, {2} epoch(s) recorded)", _settings.RunId, state.Generation, state.Epochs.Count);
            JoinWorkers();
        }
    }

    /// <summary>Creates this node's workers; in an elastic run, also those of the nodes that offered, once enough are there.</summary>
    private void JoinWorkers()
    {
        if (_settings.Elastic)
        {
            _awaitingMinimum = true;
            TryStartElastic();
            return;
        }

        StartWorkers();
    }

    private void StartWorkers()
    {
        var holding = _state.Generation > 0 ? _roster.Holding(_settings.Devices, _settings.Config.BnSplits, _settings.Backend) : [];
        if (holding.Count > 0)
        {
            TakeOver(holding);
            return;
        }

        int generation = _state.Generation + 1;
        _group = _settings.Elastic ? null : new WorkerGroup(_settings.Devices, _settings.CollectiveTimeout, generation);
        var local = Enumerable.Range(0, _settings.Devices).ToList();
        var remote = _settings.Elastic ? PlanRemote(_settings.Devices) : [];
        int world = local.Count + remote.Sum(r => r.Ranks.Count);
        _slots = [];
        CreateLocalWorkers(local, _journalCheckpoint is { } journaled ? new WorkerStart.FromCheckpoint(journaled) : WorkerStart.Fresh.Instance, world);
        foreach (var (node, ranks) in remote)
        {
            StartRemoteWorkers(node, ranks, world);
        }

        var all = Enumerable.Range(0, world).ToList();
        // every replica of an elastic run takes rank 0's state: the remote ones start empty
        int source = remote.Count > 0 ? 0 : -1;
        AwaitReplies(typeof(Worker.Ready), all, () => FormGeneration(all, source, "the run's start"));
    }

    /// <summary>Local workers at <paramref name="ranks"/> (the slot list grows or the slot is replaced).</summary>
    private void CreateLocalWorkers(IEnumerable<int> ranks, WorkerStart start, int world)
    {
        foreach (int r in ranks)
        {
            // torch threads split over this node's devices (WorkerActor knows the world from the group or its join)
            var worker = Context.Watch(Context.ActorOf(WorkerActor.Props(_settings, r, _group, start, _checkpointer, _queueKeeper), WorkerName(r)));
            PutSlot(r, new Slot(worker, WorkerName(r), _settings.Node, null));
        }
    }

    /// <summary>Puts <paramref name="slot"/> at <paramref name="rank"/>: replaces the slot there, or appends the next one.</summary>
    private void PutSlot(int rank, Slot slot)
    {
        if (rank < _slots.Count)
        {
            _slots[rank] = slot;
        }
        else
        {
            _slots.Add(slot);
        }
    }

    /// <summary>Asks <paramref name="node"/>'s agent for workers at <paramref name="ranks"/>; they start empty and take rank 0's state.</summary>
    private void StartRemoteWorkers(RosterNode node, IReadOnlyList<int> ranks, int world)
    {
        int incarnation = ++_incarnation;
        node.Agent.Tell(new NodeAgent.StartWorkers(_settings.RunId, _settings.Config.ToJson(), ranks, world, incarnation));
        node.InRun = true;
        for (int i = 0; i < ranks.Count; i++)
        {
            // the worker's reference arrives with its Ready; until then the slot holds the agent
            PutSlot(ranks[i], new Slot(ActorRefs.Nobody, $"{node.Address}/worker-{incarnation}-{i}", node.Address, node.Agent));
        }
    }

    /// <summary>The remote nodes (offered, not quarantined, not in the run) that fit beside <paramref name="taken"/> workers, with their ranks.</summary>
    private List<(RosterNode Node, IReadOnlyList<int> Ranks)> PlanRemote(int taken) =>
        _roster.Plan(taken, _settings.Config.BnSplits, _settings.Backend, DateTime.UtcNow);

    private void HandleReady(Worker.Ready ready)
    {
        _ready[ready.Rank] = ready;
        if (ready.Rank < _slots.Count)
        {
            _slots[ready.Rank] = _slots[ready.Rank] with { Device = ready.Device };
        }
        if (ready.Rank < _slots.Count && _slots[ready.Rank].Agent is not null && _slots[ready.Rank].Ref.IsNobody())
        {
            _slots[ready.Rank] = _slots[ready.Rank] with { Ref = Context.Watch(Sender) };
        }

        Arrive(ready.Rank, typeof(Worker.Ready));
    }

    /// <summary>
    /// Forms the next generation of the current slots. Over the network (an elastic run, or any run on NCCL) every
    /// worker is first prepared: on the TCP ring each binds its listener and the endpoints are collected; on NCCL rank 0
    /// creates the generation's unique id. Then the membership and the generation (its ranks and the step it resumes
    /// at) are journaled, never the endpoints or the id, and every worker joins it with the endpoints or the id,
    /// taking <paramref name="sourceRank"/>'s state when that is not negative.
    /// </summary>
    private void FormGeneration(IReadOnlyList<int> newRanks, int sourceRank, string source)
    {
        if (sourceRank < 0)
        {
            var reference = _ready[newRanks[0]];
            var disagreeing = newRanks.Select(r => _ready[r]).FirstOrDefault(r => r.GlobalStep != reference.GlobalStep);
            if (disagreeing is not null)
            {
                Fail($"the workers start at different steps (rank {reference.Rank} at {reference.GlobalStep}, rank {disagreeing.Rank} at {disagreeing.GlobalStep})");
                return;
            }

            _stepsPerEpoch = reference.StepsPerEpoch;
            _globalStep = reference.GlobalStep;
            _epoch = reference.Epoch;
        }
        else if (_ready.TryGetValue(sourceRank, out var sourceReady) && newRanks.Contains(sourceRank))
        {
            // the source itself is new (a run's start): its cursor is the run's
            _stepsPerEpoch = sourceReady.StepsPerEpoch;
            _globalStep = sourceReady.GlobalStep;
            _epoch = sourceReady.Epoch;
        }

        int generation = _state.Generation + 1;
        int world = _slots.Count;
        var all = Enumerable.Range(0, world).ToList();
        if (_group is not null && _group.Generation != generation)
        {
            // a single process: the group keeps the generation's failure bookkeeping, also when NCCL moves the tensors
            _group.StartGeneration(generation, world);
        }

        if (_settings.Elastic || _settings.Backend == DataPlaneKind.Nccl)
        {
            _prepared.Clear();
            AwaitReplies(typeof(Worker.Prepared), all, () => GenerationPrepared(generation, newRanks, sourceRank, source, world));
            for (int r = 0; r < world; r++)
            {
                _slots[r].Ref.Tell(new Worker.PrepareGeneration(generation, r));
            }

            return;
        }

        RecordGeneration(generation, newRanks, sourceRank, source, null, null);
    }

    private void HandlePrepared(Worker.Prepared prepared)
    {
        if (prepared.Generation != _state.Generation + 1)
        {
            return; // a reply for a generation that was never formed (a failure interrupted its preparation)
        }

        _prepared[prepared.Rank] = prepared;
        Arrive(prepared.Rank, typeof(Worker.Prepared));
    }

    /// <summary>Every worker is prepared: the generation goes on the data plane they all chose, with the endpoints or rank 0's NCCL id.</summary>
    private void GenerationPrepared(int generation, IReadOnlyList<int> newRanks, int sourceRank, string source, int world)
    {
        var prepared = Enumerable.Range(0, world).Select(r => _prepared[r]).ToList();
        _prepared.Clear(); // the id lives only as long as it takes to reach the workers
        var nccl = prepared.Where(p => p.DataPlane == DataPlaneKind.Nccl).Select(p => p.Rank).ToList();
        if (nccl.Count > 0 && nccl.Count < world)
        {
            Fail($"generation {generation} would mix data planes: rank(s) {string.Join(", ", nccl)} use NCCL, rank(s) "
                + $"{string.Join(", ", prepared.Where(p => p.DataPlane != DataPlaneKind.Nccl).Select(p => p.Rank))} the TCP ring; "
                + "every node of a run must choose the same moco.data-plane.backend and moco.host.device");
            return;
        }

        if (nccl.Count == world)
        {
            var id = prepared[0].NcclUniqueId;
            if (id is null || id.Length != NcclUniqueId.Bytes)
            {
                Fail($"generation {generation} is on NCCL but rank 0 sent {(id is null ? "no unique id" : $"a unique id of {id.Length} bytes, not {NcclUniqueId.Bytes}")}");
                return;
            }

            RecordGeneration(generation, newRanks, sourceRank, source, null, id);
            return;
        }

        var missing = prepared.FirstOrDefault(p => string.IsNullOrEmpty(p.Endpoint));
        if (missing is not null)
        {
            Fail($"generation {generation} is on the TCP ring but rank {missing.Rank} sent no endpoint");
            return;
        }

        RecordGeneration(generation, newRanks, sourceRank, source, prepared.Select(p => p.Endpoint!).ToList(), null);
    }

    /// <summary>
    /// Journals the membership and generation <paramref name="generation"/>, then has every worker join it with the ring's
    /// <paramref name="endpoints"/> or NCCL's <paramref name="ncclUniqueId"/> (neither is journaled: both name sockets of
    /// running processes, which a replay would find stale).
    /// </summary>
    private void RecordGeneration(int generation, IReadOnlyList<int> newRanks, int sourceRank, string source, IReadOnlyList<string>? endpoints, byte[]? ncclUniqueId)
    {
        var ranks = Ranks();
        var ids = ranks.Select(w => w.WorkerId).ToHashSet(StringComparer.Ordinal);
        var commands = new List<RunRecorder.ICommand>();
        foreach (var member in _state.Members.Keys.Where(id => !ids.Contains(id)))
        {
            commands.Add(new RunRecorder.LeaveWorker(member, _leaveReasons.GetValueOrDefault(member) ?? $"not part of the world of {ranks.Count} worker(s)"));
        }

        foreach (var worker in ranks)
        {
            if (_state.Members.ContainsKey(worker.WorkerId) && _leaveReasons.TryGetValue(worker.WorkerId, out var reason))
            {
                // a re-created worker keeps its id: the history shows it leaving and joining again
                commands.Add(new RunRecorder.LeaveWorker(worker.WorkerId, reason));
                commands.Add(new RunRecorder.JoinWorker(worker));
            }
            else if (!_state.Members.ContainsKey(worker.WorkerId))
            {
                commands.Add(new RunRecorder.JoinWorker(worker));
            }
        }

        commands.Add(new RunRecorder.StartGeneration(ranks, _globalStep));
        _leaveReasons.Clear();
        RecordAll(commands, () =>
        {
            if (_state.Generation != generation)
            {
                Fail($"the journal numbered the generation {_state.Generation}, the workers' group is at {generation}");
                return;
            }

            int world = _slots.Count;
            _dataPlane = ncclUniqueId is not null ? StepsRecordedPlanes.Nccl : endpoints is not null ? StepsRecordedPlanes.TcpRing : StepsRecordedPlanes.InProcess;
            // the keeper hears this node's replicas (remote ones have no keeper reference: their reports would not fit a frame)
            _queueKeeper.Tell(new QueueKeeper.StartGeneration(generation, _slots.Count(s => s.Agent is null)));
            _joined.Clear();
            AwaitReplies(typeof(Worker.Joined), Enumerable.Range(0, world), () => GenerationJoined(newRanks, sourceRank, source));
            for (int r = 0; r < world; r++)
            {
                _slots[r].Ref.Tell(new Worker.JoinGeneration(generation, sourceRank, r, world, endpoints, ncclUniqueId));
            }
        });
    }

    private void HandleJoined(Worker.Joined joined)
    {
        _joined[joined.Rank] = joined;
        Arrive(joined.Rank, typeof(Worker.Joined));
    }

    private void GenerationJoined(IReadOnlyList<int> newRanks, int sourceRank, string source)
    {
        var first = _joined[0];
        var disagreeing = _joined.Values.FirstOrDefault(j => j.GlobalStep != first.GlobalStep || j.Epoch != first.Epoch);
        if (disagreeing is not null)
        {
            Fail($"after joining generation {first.Generation} the workers disagree (rank 0 at step {first.GlobalStep}, rank {disagreeing.Rank} at step {disagreeing.GlobalStep})");
            return;
        }

        _globalStep = first.GlobalStep;
        _epoch = first.Epoch;
        if (!_started)
        {
            _started = true;
            if (_settings.ResumeFrom is not null || _journalCheckpoint is not null)
            {
                _checkpointedStep = _globalStep;
            }

            var starting = new TrainingDirector.RunStarting(_settings.RunId, _settings.ResumeFrom is not null || _tookOver || _journalCheckpoint is not null, _slots.Count, _state.Generation,
                _globalStep, first.Epoch, first.StepInEpoch, _stepsPerEpoch);
            _subscriber.Tell(starting);
            _tensorBoard.Tell(starting);
        }
        else
        {
            _log.Info("Run {0}: generation {1} formed at step {2}; rank(s) {3} re-created from {4}", _settings.RunId, _state.Generation, _globalStep, string.Join(", ", newRanks), source);
            var formed = new TrainingDirector.GenerationFormed(_state.Generation, _slots.Count, _globalStep, newRanks, source);
            _subscriber.Tell(formed);
            _tensorBoard.Tell(formed);
        }

        if (_owedCheckpoint is { } owed)
        {
            _owedCheckpoint = null;
            if (owed.Step == _globalStep)
            {
                TakeCheckpoint(owed.KnnTop1Percent); // then the next chunk
                return;
            }
        }

        if (_epochDone is { } pending)
        {
            // the chunk that ended an epoch was cut short by the membership change after rank 0 finished it: when the
            // new generation resumes at that epoch's end, the epoch is done and is recorded (metrics, journal,
            // checkpoint) now; when it resumes earlier (from a checkpoint), the epoch is redone and reported again
            _epochDone = null;
            if (pending.GlobalStep == _globalStep)
            {
                EndEpoch(pending);
                return;
            }
        }

        NextChunk();
    }

    /// <summary>Sends every worker the next chunk of steps, or completes the run when the schedule is done.</summary>
    private void NextChunk()
    {
        if (_finishing || _pendingRecovery is not null || _outstanding.Count > 0)
        {
            // a recovery is under way (a failure arrived between chunks): the new generation starts the next chunk
            return;
        }

        bool canGrow = _settings.Elastic && _slots.Count < _settings.Config.BnSplits && PlanRemote(_slots.Count).Count > 0;
        var next = RunSchedule.Next(_interruptRequested, _globalStep, _checkpointedStep, _epoch, _settings.Config.Epochs, canGrow,
            _settings.ChunkSteps, _settings.Config.CheckpointEverySteps);
        switch (next)
        {
            case NextAction.CheckpointBeforeStop:
                TakeCheckpoint(null);
                return;
            case NextAction.Stop:
                AfterStopsAndWrites(() =>
                {
                    _finishing = true;
                    // an interrupted run goes on under a standby trainer, if one is Up: the nodes keep their workers for it
                    _handOver = _settings.Elastic && StandbyUp();
                    StopWorkers(remoteToo: !_handOver);
                    Finish(new TrainingDirector.Interrupted(_settings.RunId, _globalStep, _lastCheckpoint));
                });
                return;
            case NextAction.Complete:
                // the last checkpoint must be on disk and in the journal before the run is complete
                AfterStopsAndWrites(() => Record(new RunRecorder.CompleteRun(_globalStep), () =>
                {
                    StopWorkers();
                    Finish(new TrainingDirector.RunCompleted(_settings.RunId, _globalStep));
                }));
                return;
            case NextAction.Grow:
                Grow();
                return;
        }

        long upTo = ((NextAction.RunChunk)next).UpTo;
        _done.Clear();
        _epochDone = null;
        AwaitReplies(typeof(Worker.StepsDone), Enumerable.Range(0, _slots.Count), ChunkDone);
        foreach (var slot in _slots)
        {
            slot.Ref.Tell(new Worker.RunSteps(upTo));
        }
    }

    private void HandleEpochDone(Worker.EpochDone epoch)
    {
        _epochDone = epoch;
        _subscriber.Tell(epoch);
    }

    private void HandleStepsDone(Worker.StepsDone done)
    {
        _done[done.Rank] = done;
        Arrive(done.Rank, typeof(Worker.StepsDone));
    }

    private void ChunkDone()
    {
        var first = _done[0];
        var disagreeing = _done.Values.FirstOrDefault(d => d.GlobalStep != first.GlobalStep || d.Epoch != first.Epoch);
        if (disagreeing is not null)
        {
            Fail($"the workers disagree after a chunk (rank 0 at step {first.GlobalStep}, rank {disagreeing.Rank} at step {disagreeing.GlobalStep})");
            return;
        }

        _failuresInARow = 0;
        _globalStep = first.GlobalStep;
        _epoch = first.Epoch;
        RecordLosses(first, () =>
        {
            switch (RunSchedule.After(_epochDone is not null, _globalStep, _settings.Config.CheckpointEverySteps))
            {
                case AfterChunk.EndEpoch:
                    var epochDone = _epochDone!;
                    _epochDone = null;
                    EndEpoch(epochDone);
                    break;
                case AfterChunk.Checkpoint:
                    TakeCheckpoint(null);
                    break;
                default:
                    NextChunk();
                    break;
            }
        });
    }

    /// <summary>
    /// Journals the losses of the steps done since the last record (<see cref="StepsRecorded"/>), with rank 0's state
    /// digest when <paramref name="chunkEnd"/> (a chunk's end) is where they stop; then <paramref name="then"/>.
    /// </summary>
    private void RecordLosses(Worker.StepsDone? chunkEnd, Action then)
    {
        if (_losses.Count == 0)
        {
            then();
            return;
        }

        var losses = _losses.OrderBy(l => l.Step).ToList();
        _losses.Clear();
        var commands = new List<RunRecorder.ICommand>();
        int start = 0;
        for (int i = 1; i <= losses.Count; i++)
        {
            // contiguous runs of steps (a step redone after a failure starts a new one)
            if (i < losses.Count && losses[i].Step == losses[i - 1].Step + 1)
            {
                continue;
            }

            var run = losses.GetRange(start, i - start);
            bool atChunkEnd = chunkEnd is not null && i == losses.Count && run[^1].Step + 1 == chunkEnd.GlobalStep && chunkEnd.Digest is not null;
            commands.Add(new RunRecorder.RecordSteps(run[0].Step, run.Select(l => l.Loss).ToList(),
                atChunkEnd ? chunkEnd!.Digest : null, atChunkEnd ? chunkEnd!.Checksums : null,
                chunkEnd?.Threads ?? _settings.ThreadsPerWorker, Math.Max(1, _slots.Count), _dataPlane));
            start = i;
        }

        RecordAll(commands, then);
    }

    /// <summary>metrics.csv, TensorBoard and <c>EpochCompleted</c>, then a checkpoint (written beside the next chunk).</summary>
    private void EndEpoch(Worker.EpochDone e)
    {
        AppendMetrics(e);
        _tensorBoard.Tell(e);
        if (_state.LastEpoch is { } last && e.Epoch <= last.Epoch)
        {
            _subscriber.Tell(new TrainingDirector.Notice($"epoch {e.Epoch} is already in the journal (up to epoch {last.Epoch}); not recorded again"));
            TakeCheckpoint(e.KnnTop1Percent);
            return;
        }

        var metrics = new EpochMetrics(e.Loss, e.InstanceAccuracy, e.LearningRate, e.KnnTop1Percent / 100, e.KnnTop5Percent / 100, e.Seconds, e.ImagesPerSecond);
        Record(new RunRecorder.RecordEpoch(e.Epoch, e.GlobalStep, metrics), () => TakeCheckpoint(e.KnnTop1Percent));
    }

    /// <summary>Rank 0 copies its state into memory and hands it to the checkpointer; training goes on at once.</summary>
    private void TakeCheckpoint(double? knnTop1Percent)
    {
        if (_outstanding.Count > 0 || _pendingRecovery is not null)
        {
            // a journal acknowledgement arrived after a membership change began a new generation: the survivors keep
            // this step's state, so the checkpoint is taken when the generation has formed
            _owedCheckpoint = (_globalStep, knnTop1Percent);
            return;
        }

        _checkpointedStep = _globalStep;
        AwaitReplies(typeof(Worker.CheckpointTaken), [0], NextChunk);
        _slots[0].Ref.Tell(new Worker.TakeCheckpoint(_epoch, _globalStep, knnTop1Percent));
    }

    private void HandleCheckpointTaken(Worker.CheckpointTaken taken)
    {
        _subscriber.Tell(taken);
        _pendingWrites++;
        Arrive(0, typeof(Worker.CheckpointTaken));
    }

    private void HandleCheckpointWritten(Checkpointer.Written written)
    {
        _pendingWrites--;
        _lastCheckpoint = written.Path;
        _subscriber.Tell(written);
        if (_finished)
        {
            return;
        }

        if (_state.LastCheckpoint is { } last && written.GlobalStep < last.Step)
        {
            _subscriber.Tell(new TrainingDirector.Notice($"checkpoint {written.Path} is behind the journal's last checkpoint (step {last.Step}); not recorded"));
            CheckStopsAndWrites();
            return;
        }

        Record(new RunRecorder.RecordCheckpoint(written.Path, written.Sha256, written.Epoch, written.GlobalStep), CheckStopsAndWrites);
    }

    private void HandleCheckpointWriteFailed(Checkpointer.WriteFailed failed)
    {
        _pendingWrites--;
        _subscriber.Tell(new TrainingDirector.Notice($"checkpoint {failed.Path} (step {failed.GlobalStep}) could not be written: {failed.Error}; "
            + $"the previous checkpoint{(_lastCheckpoint is null ? " (none yet)" : " " + _lastCheckpoint)} stays valid"));
        CheckStopsAndWrites();
    }

    private void HandleQueueInconsistent(QueueKeeper.Inconsistent inconsistent)
    {
        _subscriber.Tell(new TrainingDirector.Notice($"queue check at step {inconsistent.GlobalStep}: {inconsistent.Problem}"));
    }

    private void HandleWorkerFailed(Worker.WorkerFailed failed)
    {
        _failures.Add(failed);
        if (_pendingRecovery is not null)
        {
            // a recovery is already under way (the rank was stopping, or failed again while idle): it re-creates it
            _failures.Clear();
            return;
        }

        DropDisconnected();
        if (_pendingRecovery is not null)
        {
            return; // losing a disconnected node ended the exchange: its recovery took this failure too
        }

        if (!_outstanding.Contains(failed.Rank) && _outstanding.Count == 0)
        {
            // a failure outside any exchange: handle it now
            OnGroupFailure();
            return;
        }

        Arrive(failed.Rank, null);
    }

    private void HandleInterrupt(TrainingDirector.Interrupt _)
    {
        if (_interruptRequested || _finishing)
        {
            return;
        }

        _interruptRequested = true;
        _subscriber.Tell(new TrainingDirector.Notice("interrupt requested: stopping at the end of the current chunk of steps"));
        if (_pendingRecovery is not null)
        {
            // no chunk is running: a recovery is waiting for its backoff
            _pendingRecovery = null;
            _finishing = true;
            StopWorkers();
            AfterStopsAndWrites(() => Finish(new TrainingDirector.Interrupted(_settings.RunId, _globalStep, _lastCheckpoint)));
        }
    }

    private void HandleTerminated(Terminated terminated)
    {
        if (_stopping.Remove(terminated.ActorRef))
        {
            CheckStopsAndWrites();
            return;
        }

        if (_finished)
        {
            return;
        }

        var cause = _lastChildFailure is { } e ? $": {e.GetType().Name}: {e.Message}" : string.Empty;
        if (terminated.ActorRef.Equals(_recorder))
        {
            _finishing = true;
            _group?.Abort();
            StopWorkers();
            FinishUnrecorded($"the run recorder stopped{cause}; check that the run journal in {_settings.RunDirectory} is readable and writable");
            return;
        }

        if (terminated.ActorRef.Equals(_checkpointer))
        {
            Fail($"the checkpointer stopped{cause}");
            return;
        }

        int rank = _slots.FindIndex(s => s.Ref.Equals(terminated.ActorRef));
        if (rank < 0 || _finishing)
        {
            return;
        }

        // a worker stopped without reporting (its actor threw, or its node is gone): treat it as that rank's failure
        _group?.ReportFailure(rank);
        _slots[rank] = _slots[rank] with { Ref = ActorRefs.Nobody };
        HandleWorkerFailed(new Worker.WorkerFailed(rank, "running", -1, -1, -1, $"the worker actor stopped unexpectedly{cause}", FirstFailure: true));
    }

    /// <summary>
    /// Every worker of the exchange has answered and some failed: stop the rank that failed first (the others failed
    /// because the group was aborted; their steps were atomic), then re-create it after a backoff, or fail the run
    /// when the failures keep coming.
    /// </summary>
    private void OnGroupFailure()
    {
        if (_finishing)
        {
            return;
        }

        var failures = _failures.ToList();
        _failures.Clear();
        RecordLosses(null, static () => { }); // the steps committed before the failure stay in the history
        var ranks = _slots.Select((slot, r) => new RankFacts(slot.Agent is not null, _graceful.Contains(slot.Node), slot.Ref.IsNobody(),
            _done.TryGetValue(r, out var done) ? done.GlobalStep : null)).ToList();
        var recovery = RecoveryPolicy.Plan(failures, ranks, _failuresInARow, _settings.MaxWorkerRestarts, _settings.RestartBackoffMin,
            _settings.RestartBackoffMax, _globalStep, _settings.Elastic);
        _failuresInARow = recovery.FailuresInARow;
        var cause = recovery.Cause;
        var where = cause.GlobalStep < 0 ? string.Empty : $" at epoch {cause.Epoch}, step {cause.StepInEpoch} (global step {cause.GlobalStep})";
        var causeId = cause.Rank < _slots.Count ? _slots[cause.Rank].Id : WorkerName(cause.Rank);
        var reason = recovery.CauseIsLeave
            ? $"rank {cause.Rank} ({causeId}): {cause.Error}"
            : $"rank {cause.Rank} ({causeId}) failed while {cause.Operation}{where}: {cause.Error}";
        if (recovery.GiveUp)
        {
            var checkpoint = _lastCheckpoint ?? _settings.ResumeFrom;
            Fail($"{reason}. Gave up after {_settings.MaxWorkerRestarts} re-creation(s) in a row without progress (max-worker-restarts); "
                + (checkpoint is null ? "no checkpoint was written" : $"the latest checkpoint is {checkpoint}"));
            return;
        }

        var failedRanks = recovery.Failed;
        var survivors = recovery.Survivors;
        var from = survivors.Count > 0 ? $"rank {survivors[0]}" : "the latest checkpoint";
        var remote = recovery.Remote(ranks).ToList();
        var local = recovery.Local(ranks).ToList();
        var plan = recovery.Graceful
            ? $"rank(s) {string.Join(", ", remote)} leave the run; the others go on"
            : (local.Count > 0 ? $"re-creating rank(s) {string.Join(", ", local)} from {from}" : "")
                + (remote.Count > 0 ? $"{(local.Count > 0 ? "; " : "")}rank(s) {string.Join(", ", remote)} leave the run, their node quarantined" : "")
                + $" in {recovery.Delay.TotalSeconds:F1} s (attempt {_failuresInARow} of {_settings.MaxWorkerRestarts})";
        _log.Warning($"Run {_settings.RunId}: {reason}; {plan}");
        _subscriber.Tell(new TrainingDirector.Notice($"{reason}; {plan}"));

        foreach (int r in failedRanks)
        {
            var slot = _slots[r];
            _leaveReasons[slot.Id] = reason;
            if (slot.Agent is not null)
            {
                // a remote worker is not re-created in place: its node leaves the run, quarantined, and may offer again
                if (_graceful.Contains(slot.Node))
                {
                    _roster.Forget(slot.Node);
                }
                else
                {
                    Quarantine(slot.Node, reason);
                }

                if (!slot.Ref.IsNobody())
                {
                    Context.Unwatch(slot.Ref);
                }

                slot.Agent.Tell(new NodeAgent.StopWorkers(_settings.RunId));
            }
            else if (!slot.Ref.IsNobody())
            {
                _stopping.Add(slot.Ref);
                Context.Stop(slot.Ref);
            }
        }

        _pendingRecovery = reason;
        Timers.StartSingleTimer(_timerKeys++, new RecreateWorkers(failedRanks, survivors, recovery.SurvivorStep), recovery.Delay);
    }

    private void HandleRecreateWorkers(RecreateWorkers recreate)
    {
        if (_pendingRecovery is null || _finishing)
        {
            return; // an interrupt or a failure of the run ended the recovery during its backoff
        }

        // wait for the stopped workers' names and the pending writes
        AfterStopsAndWrites(() =>
        {
            if (_pendingRecovery is null || _finishing)
            {
                return;
            }

            _pendingRecovery = null;
            var (failed, survivors, survivorStep) = recreate;
            // remote failed slots leave the world; local ones are re-created in place
            var dropped = failed.Where(r => _slots[r].Agent is not null).ToHashSet();
            var kept = Enumerable.Range(0, _slots.Count).Where(r => !dropped.Contains(r)).ToList();
            var renumber = kept.Select((oldRank, newRank) => (oldRank, newRank)).ToDictionary(p => p.oldRank, p => p.newRank);
            _slots = kept.Select(r => _slots[r]).ToList();
            var localFailed = failed.Where(r => !dropped.Contains(r)).Select(r => renumber[r]).ToList();
            var survivorRanks = survivors.Select(r => renumber[r]).ToList();
            int world = _slots.Count;
            if (!_settings.Elastic)
            {
                _group!.StartGeneration(_state.Generation + 1, world);
            }

            WorkerStart start;
            string source;
            var created = localFailed;
            if (survivorRanks.Count > 0)
            {
                start = WorkerStart.FromPeer.Instance;
                source = $"rank {survivors[0]}";
                _globalStep = survivorStep;
            }
            else
            {
                // nobody survived: every rank restarts from the latest valid checkpoint (or the run's start)
                var latest = CheckpointDirectory.Latest(_settings.RunDirectory, _settings.RunId).Found?.Path ?? _settings.ResumeFrom;
                start = latest is null ? WorkerStart.Fresh.Instance : new WorkerStart.FromCheckpoint(latest);
                source = latest is null ? "the run's initial state (no checkpoint yet)" : $"checkpoint {latest}";
            }

            CreateLocalWorkers(created, start, world);
            int sourceRank = survivorRanks.Count > 0 ? survivorRanks[0] : (_settings.Elastic && world > created.Count ? 0 : -1);
            if (created.Count == 0)
            {
                FormGeneration(created, sourceRank, source);
                return;
            }

            AwaitReplies(typeof(Worker.Ready), created, () => FormGeneration(created, sourceRank, source));
        });
    }

    /// <summary>New nodes offered devices: a new generation with their workers, which take rank 0's state.</summary>
    private void Grow()
    {
        var plan = PlanRemote(_slots.Count);
        int world = _slots.Count + plan.Sum(p => p.Ranks.Count);
        foreach (var (node, ranks) in plan)
        {
            StartRemoteWorkers(node, ranks, world);
        }

        var created = plan.SelectMany(p => p.Ranks).ToList();
        _subscriber.Tell(new TrainingDirector.Notice($"node(s) {string.Join(", ", plan.Select(p => p.Node.Address))} join the run: "
            + $"{world} worker(s) from step {_globalStep}"));
        AwaitReplies(typeof(Worker.Ready), created, () => FormGeneration(created, 0, "rank 0"));
    }

    private void HandleClusterState(ClusterEvent.CurrentClusterState state)
    {
        foreach (var member in state.Members.Where(m => m.Status == MemberStatus.Up))
        {
            HandleMemberUp(member);
        }
    }

    /// <summary>
    /// Every other member must prove it holds the cluster's secret, whatever its role: it is asked for an offer (a node
    /// agent answers with its proof) and downed unless a valid proof arrived within
    /// <see cref="TrainingSettings.MemberProofTimeout"/>. Only holders of the cluster's certificate get this far (TLS).
    /// </summary>
    private void HandleMemberUp(Member member)
    {
        var self = Akka.Cluster.Cluster.Get(Context.System).SelfAddress;
        if (member.Address.Equals(self))
        {
            return;
        }

        string node = member.Address.ToString();
        if (!_proven.Contains(node))
        {
            Timers.StartSingleTimer(_timerKeys++, new ProofDeadline(node), _settings.MemberProofTimeout);
        }

        AskForOfferNow(node);
    }

    /// <summary>
    /// Drops (and logs) a message from another process that its sender may not send: a worker's report only from the
    /// worker of that rank (or, before it reported Ready, from the node its slot is on), rank 0's reports only from rank
    /// 0, a node's failure or leave only from that node's agent. Offers are checked by their proof. Every message from
    /// another process was already authenticated by the cluster's message key (MocoWireSerializer): this keeps a
    /// stale or confused member from steering the run.
    /// </summary>
    protected override bool AroundReceive(Receive receive, object message)
    {
        if (message is IWireMessage wire && !Admits(wire))
        {
            _log.Warning("Run {0}: dropped {1} from {2}, which may not send it", _settings.RunId, wire.GetType().Name, Sender.Path);
            return true;
        }

        return base.AroundReceive(receive, message);
    }

    private bool Admits(IWireMessage message) => message switch
    {
        Worker.Ready m => FromRank(m.Rank),
        Worker.Adopted m => FromRank(m.Rank),
        Worker.Prepared m => FromRank(m.Rank),
        Worker.Joined m => FromRank(m.Rank),
        Worker.StepsDone m => FromRank(m.Rank),
        Worker.WorkerFailed m => FromRank(m.Rank),
        Worker.StepCompleted or Worker.EpochDone or Worker.KnnEvaluated or Worker.CheckpointTaken => FromRank(0),
        NodeAgent.Offer => true, // checked against the nonce and the proof by HandleOffer
        NodeAgent.StartFailed m => FromAgentOf(m.Node),
        NodeAgent.Leaving m => FromAgentOf(m.Node),
        _ => false, // the director's own commands to workers and agents are never sent to it
    };

    private bool FromRank(int rank)
    {
        if (rank < 0 || rank >= _slots.Count)
        {
            return false;
        }

        var slot = _slots[rank];
        if (slot.Ref.Equals(Sender))
        {
            return true;
        }

        // a remote worker before its Ready: created by its node's agent, so it lives on that node
        return slot.Ref.IsNobody() && slot.Agent is not null && Sender.Path.Address.ToString() == slot.Node;
    }

    private bool FromAgentOf(string? node) => _roster.IsAgentOf(node, Sender);

    private void HandleProofDeadline(ProofDeadline deadline)
    {
        var cluster = Akka.Cluster.Cluster.Get(Context.System);
        var member = cluster.State.Members.FirstOrDefault(m => m.Address.ToString() == deadline.Node);
        if (_proven.Contains(deadline.Node) || member is null || member.Status is MemberStatus.Down or MemberStatus.Removed or MemberStatus.Exiting or MemberStatus.Leaving)
        {
            return;
        }

        _log.Warning("Run {0}: member {1} (roles {2}) did not prove it holds the cluster's secret within {3} s; downed",
            _settings.RunId, deadline.Node, string.Join(",", member.Roles), _settings.MemberProofTimeout.TotalSeconds);
        _subscriber.Tell(new TrainingDirector.Notice($"member {deadline.Node} did not prove it holds the cluster's secret within "
            + $"{_settings.MemberProofTimeout.TotalSeconds:F0} s: downed"));
        cluster.Down(member.Address);
    }

    private void AskForOfferNow(string node)
    {
        if (_finishing)
        {
            return;
        }

        var now = DateTime.UtcNow;
        if (_roster.QuarantinedUntil(node, now) is { } until)
        {
            Timers.StartSingleTimer(_timerKeys++, new AskForOffer(node), until - now);
            return;
        }

        var nonce = ClusterProof.NewNonce();
        _nonces[node] = nonce;
        Context.ActorSelection(node + NodeAgent.Path).Tell(new NodeAgent.GetOffer(_settings.RunId, nonce));
        // ask again until the agent answers (it may not exist yet when its node comes Up) or the node leaves
        Timers.StartSingleTimer(_timerKeys++, new AskForOffer(node, Retry: true), TimeSpan.FromSeconds(2));
    }

    private void HandleOffer(NodeAgent.Offer offer)
    {
        if (_finishing)
        {
            Sender.Tell(new NodeAgent.RunEnded(_settings.RunId, "the run is finishing"));
            return;
        }

        if (offer.Node is null || offer.Proof is null || !_nonces.Remove(offer.Node, out var nonce)
            || !ClusterProof.Verify(_settings.DataPlane.Secret.Span, _settings.RunId, offer.Node, nonce, offer.Proof)
            || !Sender.Path.Address.ToString().Equals(offer.Node, StringComparison.Ordinal))
        {
            _log.Warning("Run {0}: node {1} failed the cluster secret check; it gets no workers and is downed", _settings.RunId, offer.Node);
            _subscriber.Tell(new TrainingDirector.Notice($"node {offer.Node} does not hold the cluster's secret (MOCO_CLUSTER_SECRET): refused and downed"));
            Akka.Cluster.Cluster.Get(Context.System).Down(Sender.Path.Address);
            return;
        }

        _proven.Add(offer.Node);
        _roster.Offer(offer.Node, Sender, offer.Devices, offer.DataPlane, _started ? 0 : offer.Held);
        _log.Info("Run {0}: node {1} offers {2} device(s){3}", _settings.RunId, offer.Node, offer.Devices,
            offer.Held > 0 ? $" and holds {offer.Held} worker(s) of the run that outlived its previous director" : "");
        if (offer.DataPlane != _settings.Backend)
        {
            // one generation has one data plane: NCCL ranks and TCP ring ranks cannot reach each other
            _subscriber.Tell(new TrainingDirector.Notice($"node {offer.Node} offers {offer.Devices} device(s) on the {Plane(offer.DataPlane)}, this run moves tensors "
                + $"over the {Plane(_settings.Backend)}: not taken (give every node the same moco.data-plane.backend and moco.host.device)"));
            return;
        }

        TryStartElastic();
    }

    /// <summary>Starts an elastic run once this node's and the offered devices reach the configured minimum.</summary>
    private void TryStartElastic()
    {
        if (!_awaitingMinimum || !_stateKnown)
        {
            return;
        }

        int offered = _settings.Devices + _roster.Offered(_settings.Backend, DateTime.UtcNow);
        if (offered < _settings.MinWorkers)
        {
            _subscriber.Tell(new TrainingDirector.Notice($"waiting for workers: {offered} of the {_settings.MinWorkers} required are offered"));
            return;
        }

        if (_state.Generation > 0 && !ResumedRunMayStart())
        {
            return;
        }

        _awaitingMinimum = false;
        StartWorkers();
    }

    private void HandleStartFailed(NodeAgent.StartFailed failed)
    {
        Quarantine(failed.Node, failed.Error);
        int rank = _slots.FindIndex(s => s.Node == failed.Node && s.Ref.IsNobody());
        if (rank >= 0)
        {
            HandleWorkerFailed(new Worker.WorkerFailed(rank, "starting", -1, -1, -1, $"node {failed.Node} could not start its workers: {failed.Error}", FirstFailure: true));
        }
    }

    /// <summary>A node hosting workers is unreachable or gone: each of its workers failed.</summary>
    private void HandleNodeLost(string node, string how)
    {
        _roster.Lost(node); // until it offers again
        if (_awaitingMinimum)
        {
            Self.Tell(RetryStart.Instance); // once the cluster state no longer lists it
        }

        for (int r = 0; r < _slots.Count; r++)
        {
            if (_slots[r].Node == node && _slots[r].Agent is not null && !_finishing)
            {
                var lost = _slots[r];
                if (!lost.Ref.IsNobody())
                {
                    Context.Unwatch(lost.Ref);
                }

                _slots[r] = lost with { Ref = ActorRefs.Nobody };
                HandleWorkerFailed(new Worker.WorkerFailed(r, "running", -1, -1, -1, $"node {node} is {how}", FirstFailure: true));
            }
        }
    }

    /// <summary>
    /// A node's remoting connection closed. While the run's collectives are intact this may be a blip (Akka connects
    /// again, and its failure detector decides). Once a rank of the exchange has failed, the run waits for nobody:
    /// a closed connection and a broken collective mean that node's process is gone (a SIGKILL, an OOM kill, a lost
    /// pod), and waiting for the failure detector to mark it unreachable would add its seconds to every recovery. If
    /// the node was alive after all, it is quarantined like any failed node and offers its devices again.
    /// </summary>
    private void HandleDisassociated(Akka.Remote.DisassociatedEvent disassociated)
    {
        var node = disassociated.RemoteAddress.ToString();
        if (_finishing || !HoldsLiveRanks(node))
        {
            return;
        }

        _disconnected.Add(node);
        if (_failures.Count > 0 && _pendingRecovery is null)
        {
            DropDisconnected();
        }
    }

    /// <summary>Whether remote <paramref name="node"/> hosts a worker of the current generation that is not gone yet.</summary>
    private bool HoldsLiveRanks(string node) => _slots.Any(s => s.Node == node && s.Agent is not null && !s.Ref.IsNobody());

    /// <summary>Treats every disconnected node that still holds ranks as lost (see <see cref="HandleDisassociated"/>).</summary>
    private void DropDisconnected()
    {
        var lost = _disconnected.Where(HoldsLiveRanks).ToList();
        foreach (var node in lost)
        {
            _disconnected.Remove(node); // before: losing it fails its ranks, which comes back here
            HandleNodeLost(node, "disconnected (its connection closed while the run's collectives failed)");
        }
    }

    /// <summary>Keeps <paramref name="node"/> out of the run for a while that doubles with each of its failures (at most 5 minutes).</summary>
    private void Quarantine(string node, string reason)
    {
        if (_roster.Quarantine(node, _settings.RestartBackoffMin, DateTime.UtcNow) is not var (wait, failures))
        {
            return;
        }

        _log.Warning($"Run {_settings.RunId}: node {node} quarantined for {wait.TotalSeconds:F1} s after failure {failures}: {reason}");
        Timers.StartSingleTimer(_timerKeys++, new AskForOffer(node), wait);
    }

    private void HandleAck(RunRecorder.Ack ack)
    {
        _recordsAnswered++;
        _state = ack.State; // folded once, by the recorder
        if (_afterAck.Count > 0)
        {
            _afterAck.Dequeue()();
        }
    }

    private void HandleRejected(RunRecorder.Rejected rejected)
    {
        _recordsAnswered++;
        if (_afterAck.Count > 0)
        {
            _afterAck.Dequeue();
        }

        if (rejected.Command is RunRecorder.FailRun failRun)
        {
            Finish(new TrainingDirector.RunFailed(_settings.RunId, $"{failRun.Reason} (the journal refused to record the failure: {rejected.Reason})", Recorded: false));
            return;
        }

        if (_finishing)
        {
            return;
        }

        _finishing = true;
        _group?.Abort();
        StopWorkers();
        FinishUnrecorded($"the run journal refused {rejected.Command.GetType().Name}: {rejected.Reason}");
    }

    private void HandleJournalTimeout(JournalTimeout timeout)
    {
        if (_finished || _recordsAnswered >= timeout.Sequence)
        {
            return;
        }

        _finishing = true;
        _group?.Abort();
        StopWorkers();
        FinishUnrecorded($"the run journal did not acknowledge {timeout.Command} within {_settings.JournalTimeout.TotalSeconds:F0} s; "
            + $"check the journal (journal.db in {_settings.RunDirectory}, or the PostgreSQL server)");
    }

    /// <summary>Waits for one reply (or failure) from each of <paramref name="ranks"/>, then runs <paramref name="then"/> (or handles the failures).</summary>
    private void AwaitReplies(Type reply, IEnumerable<int> ranks, Action then)
    {
        _awaitedReply = reply;
        _outstanding.Clear();
        _failures.Clear();
        foreach (int r in ranks)
        {
            _outstanding.Add(r);
        }

        _afterAllReplies = then;
    }

    /// <summary>
    /// Marks <paramref name="rank"/>'s reply of kind <paramref name="reply"/> (null: a failure, which answers any
    /// exchange); once every expected reply is in, continues or handles the failures. A reply of another kind belongs to
    /// an exchange that a membership change has replaced (a checkpoint copy answered after a new generation began to
    /// form): it is not counted.
    /// </summary>
    private void Arrive(int rank, Type? reply)
    {
        if (reply is not null && reply != _awaitedReply)
        {
            _log.Debug("Run {0}: {1} from rank {2} while waiting for {3}: not counted", _settings.RunId, reply.Name, rank, _awaitedReply?.Name ?? "nothing");
            return;
        }

        if (_finishing || !_outstanding.Remove(rank) || _outstanding.Count > 0)
        {
            return;
        }

        var then = _afterAllReplies;
        _afterAllReplies = null;
        if (_failures.Count > 0)
        {
            OnGroupFailure();
            return;
        }

        then?.Invoke();
    }

    /// <summary>
    /// Runs <paramref name="then"/> once no worker is stopping and no checkpoint write is pending, after the continuations queued
    /// before it. A queue, not one slot: an interrupt that arrives while a recovery waits for its stops queues the
    /// run's end behind the recovery's step (which then finds the run finishing and does nothing); a slot would let
    /// the later one replace the earlier, and the run would wait forever for an end nobody calls.
    /// </summary>
    private void AfterStopsAndWrites(Action then)
    {
        _afterStopsAndWrites.Enqueue(then);
        CheckStopsAndWrites();
    }

    private void CheckStopsAndWrites()
    {
        // a continuation may stop workers or write again: the next one waits for those too
        while (_afterStopsAndWrites.Count > 0 && _stopping.Count == 0 && _pendingWrites == 0)
        {
            _afterStopsAndWrites.Dequeue()();
        }
    }

    /// <summary>Stops the workers and records <c>RunFailed</c>; the subscriber hears <see cref="TrainingDirector.RunFailed"/> once it is persisted.</summary>
    private void Fail(string reason)
    {
        if (_finishing)
        {
            return;
        }

        _finishing = true;
        _log.Error("Run {0} failed: {1}", _settings.RunId, reason);
        _group?.Abort();
        StopWorkers();
        Record(new RunRecorder.FailRun(reason), () => Finish(new TrainingDirector.RunFailed(_settings.RunId, reason, Recorded: true)));
    }

    private void FinishUnrecorded(string reason)
    {
        _log.Error("Run {0} cannot go on: {1}", _settings.RunId, reason);
        Finish(new TrainingDirector.RunFailed(_settings.RunId, reason, Recorded: false));
    }

    private void Finish(object message)
    {
        if (_finished)
        {
            return;
        }

        _finished = true;
        _finishing = true;
        foreach (var node in _roster.Nodes)
        {
            node.Agent.Tell(_handOver && node.InRun ? new NodeAgent.HandOver(_settings.RunId) : new NodeAgent.RunEnded(_settings.RunId, message.GetType().Name));
        }

        if (_handOver)
        {
            _subscriber.Tell(new TrainingDirector.Notice("a standby trainer is up: it takes the run over with the workers of the other nodes"));
        }

        _subscriber.Tell(message);
        Context.Stop(Self);
    }

    private void StopWorkers(bool remoteToo = true)
    {
        // a worker already stopping (a recovery's) stays watched: its Terminated is what the recovery's or the end's
        // continuation waits for, and unwatching it would leave that wait without end; the workers of other nodes stay
        // when a standby takes the run over
        foreach (var slot in _slots.Where(s => !s.Ref.IsNobody() && !_stopping.Contains(s.Ref) && (remoteToo || s.Agent is null)))
        {
            Context.Unwatch(slot.Ref);
            Context.Stop(slot.Ref);
        }
    }

    /// <summary>Sends <paramref name="command"/> to the recorder; <paramref name="then"/> runs once it is acknowledged.</summary>
    private void Record(RunRecorder.ICommand command, Action then)
    {
        _afterAck.Enqueue(then);
        _recorder.Tell(command);
        _recordsSent++;
        Timers.StartSingleTimer(_timerKeys++, new JournalTimeout(_recordsSent, command.GetType().Name), _settings.JournalTimeout);
    }

    /// <summary>Records <paramref name="commands"/> in order; <paramref name="then"/> runs after the last acknowledgement (at once when there are none).</summary>
    private void RecordAll(IReadOnlyList<RunRecorder.ICommand> commands, Action then)
    {
        if (commands.Count == 0)
        {
            then();
            return;
        }

        for (int i = 0; i < commands.Count; i++)
        {
            Record(commands[i], i == commands.Count - 1 ? then : static () => { });
        }
    }

    private List<WorkerInfo> Ranks()
    {
        return _slots.Select(s => new WorkerInfo(s.Id, s.Node, s.Device)).ToList();
    }

    private void AppendMetrics(Worker.EpochDone e)
    {
        var path = Path.Combine(_settings.RunDirectory, MetricsCsv.FileName);
        bool header = !File.Exists(path);
        using var writer = new StreamWriter(path, append: true);
        if (header)
        {
            writer.WriteLine(MetricsCsv.Header);
        }

        writer.WriteLine(MetricsCsv.Row(e.Epoch, e.Steps, e.Loss, e.InstanceAccuracy, e.LearningRate, e.KnnTop1Percent, e.KnnTop5Percent, e.Seconds,
            e.ImagesPerSecond, e.LoaderWaitSeconds, e.KnnSeconds));
    }

    /// <summary>One rank of the current or forming generation: its worker, its id in the journal, its node, and the agent that created it (null: this node).</summary>
    // Device: what the slot's worker reported in its Ready (cpu until then); it moves with the slot when ranks shift
    private sealed record Slot(IActorRef Ref, string Id, string Node, IActorRef? Agent, string Device = "cpu");

    private static string Plane(DataPlaneKind backend) => backend == DataPlaneKind.Nccl ? "NCCL data plane" : "TCP ring";

    /// <summary>Ask a node for its offer again (its quarantine ended).</summary>
    private sealed record AskForOffer(string Node, bool Retry = false);

    /// <summary>Look again whether a waiting elastic run may start (a member it waited for is gone).</summary>
    private sealed record RetryStart
    {
        public static readonly RetryStart Instance = new();
    }

    /// <summary>The time a member had to prove it holds the cluster's secret is up.</summary>
    private sealed record ProofDeadline(string Node);

    /// <summary>Re-create the failed workers (sent to self after the backoff).</summary>
    private sealed record RecreateWorkers(IReadOnlyList<int> Failed, IReadOnlyList<int> Survivors, long SurvivorStep);

    /// <summary>The journal command number <paramref name="Sequence"/> is due (sent to self).</summary>
    private sealed record JournalTimeout(long Sequence, string Command);
}
