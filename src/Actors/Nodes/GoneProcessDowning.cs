using Akka.Actor;
using Akka.Cluster;
using Akka.Event;

namespace MoCo.Actors.Nodes;

/// <summary>
/// Downs a member whose process is gone as soon as that is certain, rather than after the split-brain resolver's
/// <c>stable-after</c> (20 s in hocon/cluster.conf). Two signs are certain: its remoting port refuses a connection
/// right after its connection closed (nothing listens there: the process ended; a paused process's port still
/// accepts, a partition's connect times out), or the failure detector marks it unreachable <i>and</i> its connection
/// closed (a partition or a paused process keeps its connection open until Akka.Remote's own transport failure
/// detector gives up, minutes later). The sooner it is downed, the sooner it is removed and a cluster singleton it held
/// (the run's director and recorder) moves to a standby. Runs in every trainer process; downing a member twice is
/// harmless.
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
            Probe(d.RemoteAddress);
        });
        Receive<Refused>(r =>
        {
            if (_disconnected.Contains(r.Address))
            {
                Down(r.Address, "its connection closed and its port refuses connections");
            }
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
        if (_unreachable.Contains(address) && _disconnected.Contains(address))
        {
            Down(address, "it is unreachable and its connection closed");
        }
    }

    /// <summary>Tries a TCP connection to the member's remoting port (at most 2 s); a refusal comes back as <see cref="Refused"/>.</summary>
    private void Probe(Address address)
    {
        var cluster = Cluster.Get(Context.System);
        if (address.Host is not { } host || address.Port is not int port || address.Equals(cluster.SelfAddress)
            || !cluster.State.Members.Any(m => m.Address.Equals(address) && m.Status == MemberStatus.Up))
        {
            return;
        }

        var self = Self;
        _ = Task.Run(async () =>
        {
            using var socket = new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            try
            {
                await socket.ConnectAsync(host, port, timeout.Token).ConfigureAwait(false);
            }
            catch (System.Net.Sockets.SocketException e) when (e.SocketErrorCode == System.Net.Sockets.SocketError.ConnectionRefused)
            {
                self.Tell(new Refused(address));
            }
            catch (Exception e) when (e is System.Net.Sockets.SocketException or OperationCanceledException)
            {
                // unreachable or slow: not certain, the failure detector decides
            }
        });
    }

    private void Down(Address address, string why)
    {
        var cluster = Cluster.Get(Context.System);
        var member = cluster.State.Members.FirstOrDefault(m => m.Address.Equals(address));
        if (member is null || member.Status is MemberStatus.Down or MemberStatus.Removed)
        {
            return;
        }

        _log.Warning("Member {0} (roles {1}): {2}; its process is gone: downed now", address, string.Join(",", member.Roles), why);
        cluster.Down(address);
    }

    /// <summary>A member's remoting port refused a connection after its connection closed.</summary>
    private sealed record Refused(Address Address);
}
