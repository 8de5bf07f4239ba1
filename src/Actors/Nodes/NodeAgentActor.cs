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
public sealed class NodeAgentActor : ReceiveActor
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

    /// <summary>Creates the agent; use <see cref="Props"/>.</summary>
    /// <param name="settings">The node's devices, threads and data plane.</param>
    /// <param name="runEnded">Completed with the outcome when a director says the run ended; null on the node that runs the director.</param>
    public NodeAgentActor(NodeAgentSettings settings, TaskCompletionSource<string>? runEnded)
    {
        _settings = settings;
        _runEnded = runEnded;
        Receive<NodeAgent.GetOffer>(get =>
        {
            _askedBy = Sender; // the director that may now start workers here
            var node = Cluster.Get(Context.System).SelfAddress.ToString();
            Sender.Tell(new NodeAgent.Offer(node, _settings.Devices, ClusterProof.Sign(_settings.DataPlane.Secret.Span, get.RunId, node, get.Nonce), _settings.Backend));
        });
        Receive<NodeAgent.StartWorkers>(HandleStartWorkers);
        Receive<NodeAgent.StopWorkers>(_ => StopAll());
        Receive<NodeAgent.RunEnded>(HandleRunEnded);
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
            NodeAgent.StartWorkers => Sender.Equals(_askedBy) || Sender.Equals(_director),
            NodeAgent.StopWorkers or NodeAgent.RunEnded => Sender.Equals(_director),
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

    private void HandleTerminated(Terminated terminated)
    {
        if (terminated.ActorRef.Equals(_director))
        {
            _log.Warning("The run's director ({0}) is gone", terminated.ActorRef.Path);
            StopAll();
            _runEnded?.TrySetResult("the run's director is gone");
            return;
        }

        _workers.Remove(terminated.ActorRef);
        AckLeaveWhenStopped();
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
