using Akka.Actor;
using Akka.Cluster;
using Akka.Event;
using MoCo.Actors.Training;
using MoCo.Actors.Workers;
using MoCo.Model.Data;
using MoCo.Model.Training;

namespace MoCo.Actors.Nodes;

/// <summary>
/// A node's agent (protocol: <see cref="NodeAgent"/>): offers this process's device slots to a run's director and
/// creates workers for it on this node. The data set is opened here, from the run's configuration, once per run.
/// When the run ends (or the director's node leaves the cluster) it completes <c>runEnded</c>, so that a
/// <c>moco node</c> process ends cleanly.
/// </summary>
public sealed class NodeAgentActor : ReceiveActor, IWithTimers
{
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly NodeAgentSettings _settings;
    private readonly TaskCompletionSource<string>? _runEnded;
    private readonly List<IActorRef> _workers = [];
    private readonly List<IActorRef> _leaveAcks = [];
    private DatasetSplits? _data;
    private IActorRef? _director;
    private IActorRef? _askedBy;
    private string? _dataSpec;

    // the run of the workers this node runs, and whether they are held for a director that takes the run over
    private string? _runId;
    private bool _holding;

    /// <inheritdoc />
    public ITimerScheduler Timers { get; set; } = null!;

    /// <summary>Creates the agent; use <see cref="Props"/>.</summary>
    /// <param name="settings">The node's devices, threads and data plane.</param>
    /// <param name="runEnded">Completed with the outcome when a director says the run ended; null on the node that runs the director.</param>
    public NodeAgentActor(NodeAgentSettings settings, TaskCompletionSource<string>? runEnded)
    {
        _settings = settings;
        _runEnded = runEnded;
        Receive<NodeAgent.GetOffer>(get =>
        {
            if (_director is { } current && !current.Equals(Sender) && get.RunId == _runId && _workers.Count > 0 && MemberGone(current.Path.Address))
            {
                // another director of the run asks while this node has not yet heard that the workers' director is gone
                // (the death watch waits for the member's removal; the new director may be quicker)
                Hold(current);
            }

            _askedBy = Sender; // the director that may now start workers here
            var node = Cluster.Get(Context.System).SelfAddress.ToString();
            int held = _holding && get.RunId == _runId ? _workers.Count : 0;
            Sender.Tell(new NodeAgent.Offer(node, _settings.Devices, ClusterProof.Sign(_settings.DataPlane.Secret.Span, get.RunId, node, get.Nonce), _settings.Backend, held));
        });
        Receive<NodeAgent.StartWorkers>(HandleStartWorkers);
        Receive<NodeAgent.AdoptWorkers>(HandleAdoptWorkers);
        Receive<TakeoverTimeout>(_ =>
        {
            if (!_holding)
            {
                return;
            }

            _log.Warning("Node agent: no director took run {0} over within {1} s; its {2} worker(s) stop", _runId, _settings.TakeoverWait.TotalSeconds, _workers.Count);
            _holding = false;
            StopAll();
            _runEnded?.TrySetResult("the run's director is gone");
        });
        Receive<NodeAgent.StopWorkers>(_ => StopAll());
        Receive<NodeAgent.RunEnded>(HandleRunEnded);
        Receive<NodeAgent.HandOver>(handOver =>
        {
            if (handOver.RunId != _runId || _workers.Count == 0 || _director is null)
            {
                StopAll();
                return;
            }

            Hold(_director);
        });
        Receive<NodeAgent.Leave>(HandleLeave);
        Receive<Terminated>(HandleTerminated);
    }

    /// <summary>Props for the agent (name it <see cref="NodeAgent.Name"/>, at the top level).</summary>
    /// <param name="settings">The node's devices, threads and data plane.</param>
    /// <param name="runEnded">Completed when the run ends; null when the process does not wait for it.</param>
    public static Props Props(NodeAgentSettings settings, TaskCompletionSource<string>? runEnded = null)
    {
        ArgumentNullException.ThrowIfNull(settings);
        return Akka.Actor.Props.Create(() => new NodeAgentActor(settings, runEnded));
    }

    /// <inheritdoc />
    protected override SupervisorStrategy SupervisorStrategy()
    {
        return new OneForOneStrategy(_ => Directive.Stop);
    }

    /// <summary>
    /// Drops (and logs) a director's command from anyone but the director that asked this node for its offer (start
    /// workers) or that started them (stop them, end the run). Every such message was already authenticated by the
    /// cluster's message key; this keeps a second or stale director from taking the node's workers.
    /// </summary>
    protected override bool AroundReceive(Receive receive, object message)
    {
        bool admitted = message switch
        {
            NodeAgent.StartWorkers or NodeAgent.AdoptWorkers => Sender.Equals(_askedBy) || Sender.Equals(_director),
            NodeAgent.StopWorkers or NodeAgent.RunEnded or NodeAgent.HandOver => Sender.Equals(_director),
            _ => true,
        };
        if (!admitted)
        {
            _log.Warning("Node agent: dropped {0} from {1}, which is not this node's director", message.GetType().Name, Sender.Path);
            return true;
        }

        return base.AroundReceive(receive, message);
    }

    private void HandleStartWorkers(NodeAgent.StartWorkers start)
    {
        string node = Cluster.Get(Context.System).SelfAddress.ToString();
        var director = Sender;
        if (_holding)
        {
            // a director that did not take the held workers over: they are no replicas of its run any more
            _log.Info("Node agent: run {0}'s director starts new workers here; the {1} held worker(s) stop", start.RunId, _workers.Count);
            _holding = false;
            StopAll();
        }

        _runId = start.RunId;
        if (!director.Equals(_director))
        {
            _director = director;
            Context.Watch(director); // the director's node gone: the run is over for this node
        }

        try
        {
            var config = RunConfig.FromJson(start.ConfigJson).Validate();
            // the shard sizes are part of how the data is opened: a run resumed with another read-ahead reopens it
            string dataKey = $"{config.Data}\n{config.ShardShuffleMib}\n{config.ShardReadAheadMib}";
            if (_data is null || _dataSpec != dataKey)
            {
                _data = DataSource.Open(config.Data, DataSourceOptions.For(config) with { CacheBudgetBytes = _settings.ImageCacheBytes });
                _dataSpec = dataKey;
            }

            var settings = new TrainingSettings(config, start.RunId, _settings.RunDirectory, _data, Math.Max(1, start.Ranks.Count))
            {
                Threads = _settings.Threads,
                LoaderThreads = _settings.LoaderThreads,
                Node = node,
                DataPlane = _settings.DataPlane,
                CollectiveTimeout = _settings.CollectiveTimeout,
                Device = _settings.Device,
                Backend = _settings.Backend,
                Bucketing = _settings.Bucketing,
                NumericsCheck = _settings.NumericsCheck,
            };
            for (int i = 0; i < start.Ranks.Count; i++)
            {
                // the node's i-th worker computes on its device i, whatever its rank in the run
                var props = WorkerActor.Props(settings, start.Ranks[i], null, WorkerStart.FromPeer.Instance, ActorRefs.Nobody, ActorRefs.Nobody, director, localSlot: i);
                var worker = Context.ActorOf(props, $"worker-{start.Incarnation}-{i}");
                Context.Watch(worker);
                _workers.Add(worker);
            }

            _log.Info("Node {0}: started {1} worker(s) for run {2} as rank(s) {3}", node, start.Ranks.Count, start.RunId, string.Join(", ", start.Ranks));
        }
        catch (Exception e) when (e is ArgumentException or IOException or InvalidDataException or System.Text.Json.JsonException)
        {
            _log.Error(e, "Node {0}: cannot start workers for run {1}", node, start.RunId);
            director.Tell(new NodeAgent.StartFailed(node, $"{e.GetType().Name}: {e.Message}"));
        }
    }

    /// <summary>
    /// Leaves the run on purpose (SIGTERM, Ctrl-C): tells the director first, then lets each worker finish the messages
    /// already in its mailbox (a chunk of steps the director sent before it knew) and stop; the leave is acknowledged
    /// when they have stopped. A stop that jumped the queue (<c>Context.Stop</c> is a system message) would leave the
    /// other ranks waiting in that chunk's first collective, and the leave would cost them their step.
    /// </summary>
    private void HandleLeave(NodeAgent.Leave leave)
    {
        _director?.Tell(new NodeAgent.Leaving(Cluster.Get(Context.System).SelfAddress.ToString(), leave.Reason));
        if (_workers.Count == 0)
        {
            Sender.Tell(NodeAgent.LeaveAck.Instance);
            return;
        }

        _leaveAcks.Add(Sender);
        foreach (var worker in _workers)
        {
            worker.Tell(PoisonPill.Instance);
        }
    }

    /// <summary>
    /// A director takes over the workers this node held since their director was lost: each learns its new director
    /// and rank and answers it with its cursor (<see cref="Worker.Adopted"/>).
    /// </summary>
    private void HandleAdoptWorkers(NodeAgent.AdoptWorkers adopt)
    {
        string node = Cluster.Get(Context.System).SelfAddress.ToString();
        if (!_holding || adopt.RunId != _runId || adopt.Ranks.Count != _workers.Count)
        {
            var holds = _holding ? $"holds {_workers.Count} worker(s) of run {_runId}" : "holds no workers for a director to take over";
            Sender.Tell(new NodeAgent.StartFailed(node, $"asked to hand over {adopt.Ranks.Count} worker(s) of run {adopt.RunId}, but this node {holds}"));
            return;
        }

        _holding = false;
        Timers.Cancel(TakeoverTimeout.Instance);
        _director = Sender;
        Context.Watch(Sender);
        for (int i = 0; i < _workers.Count; i++)
        {
            _workers[i].Tell(new Worker.Adopt(Sender, adopt.Ranks[i]));
        }

        _log.Info("Node {0}: run {1} taken over by {2}; held worker(s) now rank(s) {3}", node, adopt.RunId, Sender.Path, string.Join(", ", adopt.Ranks));
    }

    private void HandleTerminated(Terminated terminated)
    {
        if (terminated.ActorRef.Equals(_director))
        {
            if (_holding || (terminated.AddressTerminated && _workers.Count > 0 && StandbyUp(terminated.ActorRef.Path.Address)))
            {
                // the director's process is gone, and another trainer-role member may take the run over: the workers'
                // state is the run's (every replica holds it), so they wait for that director rather than stop
                Hold(terminated.ActorRef);
                return;
            }

            _director = null;

            _log.Warning("The run's director ({0}) is gone", terminated.ActorRef.Path);
            StopAll();
            _runEnded?.TrySetResult("the run's director is gone");
            return;
        }

        _workers.Remove(terminated.ActorRef);
        AckLeaveWhenStopped();
    }

    /// <summary>Keeps the workers for the director that takes the run over from <paramref name="lost"/>, for at most <see cref="NodeAgentSettings.TakeoverWait"/>.</summary>
    private void Hold(IActorRef lost)
    {
        _director = null;
        if (_holding)
        {
            return;
        }

        _holding = true;
        Context.Unwatch(lost);
        Timers.StartSingleTimer(TakeoverTimeout.Instance, TakeoverTimeout.Instance, _settings.TakeoverWait);
        _log.Warning("The run's director ({0}) is gone; holding {1} worker(s) of run {2} for the director that takes over (at most {3} s)",
            lost.Path, _workers.Count, _runId, _settings.TakeoverWait.TotalSeconds);
    }

    /// <summary>Whether the member at <paramref name="address"/> is no longer an Up, reachable member of the cluster.</summary>
    private bool MemberGone(Address address)
    {
        var state = Cluster.Get(Context.System).State;
        var member = state.Members.FirstOrDefault(m => m.Address.Equals(address));
        return member is null || member.Status != MemberStatus.Up || state.Unreachable.Contains(member);
    }

    /// <summary>Whether a trainer-role member other than <paramref name="lost"/> is Up: a standby that takes the director over.</summary>
    private bool StandbyUp(Address lost) =>
        Cluster.Get(Context.System).State.Members.Any(m => m.HasRole(TrainingDirectorActor.TrainerRole) && !m.Address.Equals(lost) && m.Status == MemberStatus.Up);

    /// <summary>The time for a director to take the held workers over is up.</summary>
    private sealed record TakeoverTimeout
    {
        public static readonly TakeoverTimeout Instance = new();
    }

    private void AckLeaveWhenStopped()
    {
        if (_workers.Count > 0)
        {
            return;
        }

        foreach (var asker in _leaveAcks)
        {
            asker.Tell(NodeAgent.LeaveAck.Instance);
        }

        _leaveAcks.Clear();
    }

    private void HandleRunEnded(NodeAgent.RunEnded ended)
    {
        _log.Info("Run {0} ended ({1})", ended.RunId, ended.Outcome);
        StopAll();
        _runEnded?.TrySetResult(ended.Outcome);
    }

    private void StopAll()
    {
        foreach (var worker in _workers)
        {
            Context.Stop(worker);
        }

        _workers.Clear();
        AckLeaveWhenStopped();
    }
}
