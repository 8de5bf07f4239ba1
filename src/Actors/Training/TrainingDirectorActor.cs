using System.Globalization;
using Akka.Actor;
using Akka.Event;
using Akka.Pattern;
using Akka.Cluster;
using MoCo.Actors.Checkpoints;
using MoCo.Actors.Nodes;
using MoCo.Actors.Queue;
using MoCo.Actors.Run;
using MoCo.Actors.Workers;
using MoCo.Model.Data;
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

    // a generation is forming (from FormGeneration until every rank joined): no chunk and no checkpoint is sent meanwhile,
    // even when an acknowledgement of the old generation's journal writes comes in between two of its exchanges
    private bool _forming;

    // the journal's last checkpoint, when this director resumes from it (it was given none, and no replica outlived its predecessor)
    private string? _journalCheckpoint;

    // that checkpoint's verification (hashed off the actor's thread): null before it began
    private CheckpointVerified? _checkpointVerdict;
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
        Receive<CheckpointVerified>(HandleCheckpointVerified);
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
}
