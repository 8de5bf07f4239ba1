using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using MoCo.Actors.Collectives;
using MoCo.Model.Collectives;
using Xunit.Abstractions;
using static MoCo.Actors.Tests.Collectives.Messages;
using static TorchSharp.torch;

namespace MoCo.Actors.Tests.Collectives;

/// <summary>
/// The data-plane listener against strangers who reach its port: garbage, hellos that announce huge lengths, floods of
/// idle connections. What a connection may cost is bounded (threads, memory, the refusal record), and the ring still forms.
/// </summary>
public sealed class TcpRingListenerHostileTests(ITestOutputHelper output)
{
    private static readonly RingIdentity Me = new("test-run", 1, 0, 2);

    [Fact]
    public void Listener_must_survive_garbage_huge_length_prefixes_and_a_flood_of_idle_connections_and_still_let_the_predecessor_in()
    {
        // Strangers connect before the ring does: garbage, a hello announcing a 65535-byte run id, a hello of the wrong
        // role, a hello cut short, and more idle connections than may be pending. The idle ones hold the pending slots
        // until the handshake timeout (3 s); the predecessor's first attempts find them full and are dropped; it retries
        // and gets in once they expire, well within the connect timeout.
        var listeners = LocalRing.Listen(2);
        var endpoints = listeners.Select(l => (EndPoint)l.EndPoint).ToArray();
        var strangers = new List<Socket>();
        try
        {
            var target = listeners[0].EndPoint;
            strangers.Add(Stranger(target, "GET / HTTP/1.1\r\nHost: moco\r\n\r\n"u8));
            strangers.Add(Stranger(target, [.. "MOCORNG2"u8, 1, 0xFF, 0xFF]));
            strangers.Add(Stranger(target, [.. "MOCORNG2"u8, 2, 0, 4, .. "test"u8]));
            strangers.Add(Stranger(target, [.. "MOCORNG2"u8, 1, 0, 8, .. "test"u8]));
            for (int i = 0; i < TcpRingListener.MaxPendingHandshakes + 8; i++)
            {
                strangers.Add(Stranger(target, []));
            }

            var clock = Stopwatch.StartNew();
            var outcomes = LocalRing.Connect(listeners, r => LocalRing.Options(r, endpoints) with
            {
                ConnectTimeout = TimeSpan.FromSeconds(60),
                HandshakeTimeout = TimeSpan.FromSeconds(3),
            });
            output.WriteLine($"the ring formed after {clock.Elapsed.TotalSeconds:F1} s");
            var ring = outcomes.Select(o => o.Ring ?? throw new Xunit.Sdk.XunitException($"the ring did not form: {o.Error}")).ToArray();
            try
            {
                var sums = Enumerable.Range(0, 2).Select(r => full(5, (float)r + 1)).ToArray();
                LocalRing.RunAll(ring, rank => rank.AllReduceSum(sums[rank.Rank]));
                Assert.All(sums, s => Assert.True(s.eq(3f).all().item<bool>()));
            }
            finally
            {
                LocalRing.DisposeAll(ring);
            }

            // every stranger was closed by the listener (refused, dropped, timed out, or cut when the rendezvous ended)
            Assert.All(strangers, s => Assert.True(IsClosedByPeer(s, TimeSpan.FromSeconds(10)), "a stranger's connection is still open"));
        }
        finally
        {
            strangers.ForEach(s => s.Dispose());
        }
    }

    [Fact]
    public async Task Connections_beyond_the_pending_cap_are_closed_at_once_unread_and_counted()
    {
        using var listener = TcpRingListener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var refusals = new RefusalLog();
        long deadline = Stopwatch.GetTimestamp() + 8 * Stopwatch.Frequency;
        var accepting = Task.Factory.StartNew(
            () => listener.AcceptPredecessor(Me, 1, LocalRing.Secret, TimeSpan.FromSeconds(60), deadline, refusals, CancellationToken.None),
            TaskCreationOptions.LongRunning);
        var idle = Enumerable.Range(0, TcpRingListener.MaxPendingHandshakes).Select(_ => Stranger(listener.EndPoint, [])).ToList();
        var extra = new List<Socket>();
        try
        {
            // the pending ones are held (a handshake thread waits for each); the extra ones are closed unread at once
            foreach (var _ in Enumerable.Range(0, 8))
            {
                var socket = Stranger(listener.EndPoint, []);
                extra.Add(socket);
                Assert.True(IsClosedByPeer(socket, TimeSpan.FromSeconds(5)), "a connection beyond the cap was kept");
            }
            Assert.All(idle, s => Assert.False(IsClosedByPeer(s, TimeSpan.Zero), "a pending connection was closed early"));

            var e = await Assert.ThrowsAsync<CollectiveException>(() => accepting);

            AssertMentions(e.Message, $"8 connection(s) closed unread because {TcpRingListener.MaxPendingHandshakes} handshakes were already pending");
            Assert.Equal(8, refusals.Dropped);
        }
        finally
        {
            idle.Concat(extra).ToList().ForEach(s => s.Dispose());
        }
    }

    [Fact]
    public async Task A_rendezvous_that_fails_names_the_newest_refusals_and_only_counts_the_older_ones()
    {
        // a stranger who connects again and again must not grow the record (and the error message) without bound
        using var listener = TcpRingListener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var refusals = new RefusalLog();
        long deadline = Stopwatch.GetTimestamp() + 20 * Stopwatch.Frequency;
        using var cancel = new CancellationTokenSource();
        var accepting = Task.Factory.StartNew(
            () => listener.AcceptPredecessor(Me, 1, LocalRing.Secret, TimeSpan.FromSeconds(10), deadline, refusals, cancel.Token),
            TaskCreationOptions.LongRunning);
        const int attempts = RefusalLog.MaxKept + 24;
        for (int i = 0; i < attempts; i++)
        {
            using var socket = Stranger(listener.EndPoint, "GET / HTTP/1.1\r\n\r\n"u8);
            Assert.True(IsClosedByPeer(socket, TimeSpan.FromSeconds(10)), "garbage was not refused");
        }
        // the last refusal is recorded just after its socket closes
        Assert.True(SpinWait.SpinUntil(() => refusals.Kept.Count + refusals.Forgotten == attempts, TimeSpan.FromSeconds(10)));
        cancel.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => accepting);

        Assert.Equal(RefusalLog.MaxKept, refusals.Kept.Count);
        Assert.Equal(24, refusals.Forgotten);
        Assert.All(refusals.Kept, r => AssertMentions(r, "does not speak the MoCo ring protocol"));
        AssertMentions(refusals.ToString(), "24 earlier refusal(s) not shown; ");
    }

    [Fact]
    public void Refusal_log_keeps_the_newest_descriptions_and_counts_the_rest()
    {
        var log = new RefusalLog();
        Assert.True(log.IsEmpty);
        for (int i = 0; i < 100; i++)
        {
            log.Add($"refusal {i}");
        }
        log.CountDropped();
        log.CountDropped();

        Assert.Equal(Enumerable.Range(84, 16).Select(i => $"refusal {i}"), log.Kept);
        Assert.Equal(84, log.Forgotten);
        Assert.Equal(2, log.Dropped);
        Assert.Equal(
            "84 earlier refusal(s) not shown; " + string.Join("; ", Enumerable.Range(84, 16).Select(i => $"refusal {i}")) +
            $"; 2 connection(s) closed unread because {TcpRingListener.MaxPendingHandshakes} handshakes were already pending",
            log.ToString());
    }

    [Fact]
    public void A_hello_announcing_an_oversized_run_id_is_refused_before_its_bytes_arrive()
    {
        // the length prefix is checked before anything is allocated or read for it: the server does not wait for 64 KiB
        using var pair = SocketPair.Open();
        pair.ClientStream.Write([.. "MOCORNG2"u8, 1, 0xFF, 0xFF]);
        var clock = Stopwatch.StartNew();

        var e = Assert.Throws<RingHandshakeException>(() => RingHandshake.RunServer(pair.ServerStream, Me, 1, LocalRing.Secret, "stranger", () => true));

        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"refused only after {clock.Elapsed.TotalSeconds:F1} s");
        AssertMentions(e.Message, "sent a ring hello with a run id of 65535 bytes (1..256 allowed)");
    }

    /// <summary>A raw connection to <paramref name="target"/> that sends <paramref name="bytes"/> and then nothing.</summary>
    private static Socket Stranger(IPEndPoint target, ReadOnlySpan<byte> bytes)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Connect(target);
        if (!bytes.IsEmpty)
        {
            socket.Send(bytes);
        }
        return socket;
    }

    /// <summary>Whether the peer closed the connection (end of stream or reset) within <paramref name="within"/>; what it sent before is skipped.</summary>
    private static bool IsClosedByPeer(Socket socket, TimeSpan within)
    {
        var buffer = new byte[256];
        var clock = Stopwatch.StartNew();
        do
        {
            var left = within - clock.Elapsed;
            try
            {
                if (!socket.Poll(left > TimeSpan.Zero ? left : TimeSpan.Zero, SelectMode.SelectRead))
                {
                    return false;
                }
                if (socket.Receive(buffer) == 0)
                {
                    return true;
                }
            }
            catch (SocketException)
            {
                return true; // reset
            }
        }
        while (clock.Elapsed <= within);
        return false;
    }
}
