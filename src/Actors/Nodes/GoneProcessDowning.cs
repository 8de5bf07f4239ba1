using Akka.Actor;
using Akka.Cluster;
using Akka.Event;

namespace MoCo.Actors.Nodes;

/// <summary>
/// Downs a member whose process is gone as soon as that is certain, rather than after the split-brain resolver's
/// <c>stable-after</c> (20 s in hocon/cluster.conf): a member that the failure detector marks unreachable <i>and</i>
/// whose remoting connection closed is a process that ended (SIGKILL, an OOM kill, a lost pod), since a partition or a
/// paused process keeps its connection open until Akka.Remote's own transport failure detector gives up (minutes
/// later). The sooner it is downed, the sooner it is removed and a cluster singleton it held (the run's director and
/// coordinator) moves to a standby. Runs in every trainer process; downing a member twice is harmless.
/// </summary>
public sealed class GoneProcessDowning : ReceiveActor
{
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly HashSet<Address> _unreachable = [];
    private readonly HashSet<Address> _disconnected = [];

    /// <summary>Creates the actor; use <see cref="Props"/>.</summary>
    public GoneProcessDowning()
    {
        Receive<ClusterEvent.UnreachableMember>(u =>
        {
            _unreachable.Add(u.Member.Address);
            DownIfGone(u.Member.Address);
        });
        Receive<ClusterEvent.ReachableMember>(r => _unreachable.Remove(r.Member.Address));
        Receive<ClusterEvent.MemberRemoved>(r =>
        {
            _unreachable.Remove(r.Member.Address);
            _disconnected.Remove(r.Member.Address);
        });
        Receive<ClusterEvent.CurrentClusterState>(state =>
        {
            foreach (var member in state.Unreachable)
            {
                _unreachable.Add(member.Address);
            }
        });
        Receive<Akka.Remote.DisassociatedEvent>(d =>
        {
            _disconnected.Add(d.RemoteAddress);
            DownIfGone(d.RemoteAddress);
        });
        Receive<Akka.Remote.AssociatedEvent>(a => _disconnected.Remove(a.RemoteAddress));
    }

    /// <summary>Props for the actor (one per trainer process).</summary>
    public static Props Props() => Akka.Actor.Props.Create(() => new GoneProcessDowning());

    /// <inheritdoc />
    protected override void PreStart()
    {
        Cluster.Get(Context.System).Subscribe(Self, ClusterEvent.SubscriptionInitialStateMode.InitialStateAsSnapshot,
            typeof(ClusterEvent.UnreachableMember), typeof(ClusterEvent.ReachableMember), typeof(ClusterEvent.MemberRemoved));
        Context.System.EventStream.Subscribe(Self, typeof(Akka.Remote.DisassociatedEvent));
        Context.System.EventStream.Subscribe(Self, typeof(Akka.Remote.AssociatedEvent));
    }

    /// <inheritdoc />
    protected override void PostStop()
    {
        Cluster.Get(Context.System).Unsubscribe(Self);
        Context.System.EventStream.Unsubscribe(Self);
    }

    private void DownIfGone(Address address)
    {
        if (!_unreachable.Contains(address) || !_disconnected.Contains(address))
        {
            return;
        }

        var cluster = Cluster.Get(Context.System);
        var member = cluster.State.Members.FirstOrDefault(m => m.Address.Equals(address));
        if (member is null || member.Status is MemberStatus.Down or MemberStatus.Removed)
        {
            return;
        }

        _log.Warning("Member {0} (roles {1}) is unreachable and its connection closed: its process is gone; downed now", address, string.Join(",", member.Roles));
        cluster.Down(address);
    }
}
