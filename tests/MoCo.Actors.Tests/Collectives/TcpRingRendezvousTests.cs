using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using MoCo.Actors.Collectives;
using MoCo.Model.Collectives;
using Xunit.Abstractions;
using static MoCo.Actors.Tests.Collectives.Messages;
using static TorchSharp.torch;

namespace MoCo.Actors.Tests.Collectives;

/// <summary>Forming a ring: who is let in, who is refused and why, and that strangers cannot stop it.</summary>
public sealed class TcpRingRendezvousTests(ITestOutputHelper output)
{
    [Fact]
    public void Listener_on_port_zero_knows_its_port_before_the_rendezvous()
    {
        using var listener = TcpRingListener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        Assert.NotEqual(0, listener.EndPoint.Port);
        Assert.Equal(IPAddress.Loopback, listener.EndPoint.Address);
    }

    [Fact]
    public void Ring_must_refuse_a_wrong_secret_on_both_sides()
    {
        var outcomes = ConnectTwo(r => r == 1 ? o => o with { Secret = Encoding.UTF8.GetBytes("another cluster's secret.") } : o => o);

        foreach (var (ring, error) in outcomes)
        {
            Assert.Null(ring);
            var e = Assert.IsType<CollectiveException>(error);
            AssertMentions(e.Message, "secret");
        }
    }

    [Fact]
    public void Ring_must_refuse_a_stale_generation()
    {
        var outcomes = ConnectTwo(r => r == 1 ? o => o with { Generation = 6 } : o => o with { Generation = 7 });

        var stale = Assert.IsType<CollectiveException>(outcomes[1].Error);
        AssertMentions(stale.Message, "generation 7, this rank at generation 6 (this rank is stale)");
        var current = Assert.IsType<CollectiveException>(outcomes[0].Error);
        AssertMentions(current.Message, "generation 6, this rank at generation 7 (the peer is stale)");
    }

    [Fact]
    public void Ring_must_refuse_another_run()
    {
        var outcomes = ConnectTwo(r => r == 1 ? o => o with { RunId = "other-run" } : o => o);

        Assert.All(outcomes, o => AssertMentions(Assert.IsType<CollectiveException>(o.Error).Message, "run"));
        AssertMentions(outcomes[0].Error!.Message, "belongs to run 'other-run', this rank to run 'test-run'");
    }

    [Fact]
    public async Task Ring_must_refuse_a_peer_that_expects_another_world_size()
    {
        using var pair = SocketPair.Open();
        var server = Task.Run(() => RingHandshake.RunServer(pair.ServerStream, new RingIdentity("run", 1, 1, 2), 0, LocalRing.Secret, "client", () => true));
        var client = Assert.Throws<RingHandshakeException>(() => RingHandshake.RunClient(pair.ClientStream, new RingIdentity("run", 1, 0, 3), 1, LocalRing.Secret, "server"));

        Assert.Equal(HandshakeRefusal.OtherWorldSize, client.Refusal);
        AssertMentions(client.Message, "expects a world of 2 ranks, this rank a world of 3");
        var refused = await Assert.ThrowsAsync<RingHandshakeException>(() => server);
        Assert.Equal(HandshakeRefusal.OtherWorldSize, refused.Refusal);
    }

    [Fact]
    public async Task Ring_must_refuse_an_unexpected_rank()
    {
        using var pair = SocketPair.Open();
        // the server expects rank 0 as its predecessor; rank 2 connects (and expects the server to be rank 1... it is)
        var server = Task.Run(() => RingHandshake.RunServer(pair.ServerStream, new RingIdentity("run", 1, 1, 3), 0, LocalRing.Secret, "client", () => true));
        var client = Assert.Throws<RingHandshakeException>(() => RingHandshake.RunClient(pair.ClientStream, new RingIdentity("run", 1, 2, 3), 1, LocalRing.Secret, "server"));

        Assert.Equal(HandshakeRefusal.UnexpectedRank, client.Refusal);
        AssertMentions(client.Message, "did not expect rank 2");
        var refused = await Assert.ThrowsAsync<RingHandshakeException>(() => server);
        AssertMentions(refused.Message, "is rank 2, but this link expects rank 0");
    }

    [Fact]
    public async Task Handshake_never_sends_the_secret()
    {
        using var pair = SocketPair.Open();
        var recorder = new RecordingStream(pair.ClientStream);
        var server = Task.Run(() => RingHandshake.RunServer(new RecordingStream(pair.ServerStream), new RingIdentity("run", 1, 1, 2), 0, LocalRing.Secret, "client", () => true));
        RingHandshake.RunClient(recorder, new RingIdentity("run", 1, 0, 2), 1, LocalRing.Secret, "server");
        await server;

        var wire = recorder.Written.ToArray().Concat(recorder.Received.ToArray()).ToArray();
        Assert.Equal(-1, wire.AsSpan().IndexOf(LocalRing.Secret.AsSpan(0, 8)));
    }

    [Fact]
    public void Ring_must_form_despite_strangers_that_send_garbage_or_nothing()
    {
        // The strangers connect first, so each listener accepts them before its real predecessor. The handshake
        // timeout (60 s) is longer than the connect timeout (20 s): the ring forms only if a silent stranger does
        // not hold up the real peer's handshake.
        const int world = 3;
        var listeners = LocalRing.Listen(world);
        var endpoints = listeners.Select(l => (EndPoint)l.EndPoint).ToArray();
        var strangers = new List<Socket>();
        try
        {
            foreach (var listener in listeners)
            {
                var silent = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                silent.Connect(listener.EndPoint);
                strangers.Add(silent);
                var noisy = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                noisy.Connect(listener.EndPoint);
                noisy.Send("GET / HTTP/1.1\r\nHost: moco\r\n\r\n"u8);
                strangers.Add(noisy);
                var halfHello = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                halfHello.Connect(listener.EndPoint);
                halfHello.Send([.. "MOCORNG2"u8, 1, 0xFF, 0xFF]); // a hello that announces a 65535-byte run id
                strangers.Add(halfHello);
            }

            var outcomes = LocalRing.Connect(listeners, r => LocalRing.Options(r, endpoints) with
            {
                ConnectTimeout = TimeSpan.FromSeconds(20),
                HandshakeTimeout = TimeSpan.FromSeconds(60),
            });
            var ring = outcomes.Select(o => o.Ring ?? throw new Xunit.Sdk.XunitException($"the ring did not form: {o.Error}")).ToArray();
            try
            {
                var sums = Enumerable.Range(0, world).Select(r => full(5, (float)r + 1)).ToArray();
                LocalRing.RunAll(ring, rank => rank.AllReduceSum(sums[rank.Rank]));
                Assert.All(sums, s => Assert.True(s.eq(6f).all().item<bool>()));
            }
            finally
            {
                LocalRing.DisposeAll(ring);
            }
        }
        finally
        {
            strangers.ForEach(s => s.Dispose());
        }
    }

    [Fact]
    public void Connect_must_give_up_on_a_successor_that_never_comes()
    {
        var listeners = LocalRing.Listen(2);
        var endpoints = listeners.Select(l => (EndPoint)l.EndPoint).ToArray();
        listeners[1].Dispose(); // rank 1 never joins: its port is closed
        var options = LocalRing.Options(0, endpoints) with { ConnectTimeout = TimeSpan.FromSeconds(1) };

        var clock = Stopwatch.StartNew();
        var e = Assert.Throws<CollectiveException>(() => TcpRingCollective.Connect(listeners[0], options));

        AssertMentions(e.Message, $"could not reach its successor rank 1 at {endpoints[1]}");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(15), $"gave up only after {clock.Elapsed.TotalSeconds:F1} s");
    }

    [Fact]
    public async Task Connect_must_stop_when_cancelled()
    {
        var listeners = LocalRing.Listen(2);
        var endpoints = listeners.Select(l => (EndPoint)l.EndPoint).ToArray();
        using var cancel = new CancellationTokenSource();
        // rank 1's port accepts connections (the kernel's backlog) but nobody answers the handshake
        var connecting = Task.Factory.StartNew(() => TcpRingCollective.Connect(listeners[0], LocalRing.Options(0, endpoints), cancel.Token), TaskCreationOptions.LongRunning);
        try
        {
            cancel.CancelAfter(TimeSpan.FromMilliseconds(200));
            var e = await Assert.ThrowsAnyAsync<OperationCanceledException>(() => connecting);
            Assert.Equal(cancel.Token, e.CancellationToken);
        }
        finally
        {
            listeners[1].Dispose();
        }
    }

    private (TcpRingCollective? Ring, Exception? Error)[] ConnectTwo(Func<int, Func<TcpRingOptions, TcpRingOptions>> adjust)
    {
        var listeners = LocalRing.Listen(2);
        var endpoints = listeners.Select(l => (EndPoint)l.EndPoint).ToArray();
        var outcomes = LocalRing.Connect(listeners, r => adjust(r)(LocalRing.Options(r, endpoints) with { ConnectTimeout = TimeSpan.FromSeconds(5) }));
        LocalRing.DisposeAll(outcomes.Select(o => o.Ring));
        for (int r = 0; r < outcomes.Length; r++)
        {
            output.WriteLine($"rank {r}: {outcomes[r].Error?.Message ?? "joined"}");
        }
        return outcomes;
    }
}
