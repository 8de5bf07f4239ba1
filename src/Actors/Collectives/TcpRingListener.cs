using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using MoCo.Model.Collectives;

namespace MoCo.Actors.Collectives;

/// <summary>
/// The first half of a rank's rendezvous: a TCP listener bound before the ring is known, so that its actual port
/// (port 0 picks a free one) can be published to the recorder, which then hands every rank the endpoints of all
/// ranks. <see cref="TcpRingCollective.Connect"/> takes the listener over, accepts the predecessor on it and closes it.
/// Anyone who reaches the port may connect, so what a connection can cost is bounded: at most
/// <see cref="MaxPendingHandshakes"/> connections handshake at once (one thread each, for at most the handshake
/// timeout), a connection beyond them is closed at once, unread, and counted; the handshake reads a bounded hello
/// (<see cref="RingHandshake"/> checks the announced run-id length before allocating); and the record of refusals
/// keeps only the newest ones (<see cref="RefusalLog"/>).
/// </summary>
public sealed class TcpRingListener : IDisposable
{
    /// <summary>
    /// The most accepted connections that may be handshaking at once: 32. A ring needs one connection here (its
    /// predecessor, which may retry a few times while it restarts); each pending one holds a thread for at most the
    /// handshake timeout. A stranger who keeps this many idle connections open can delay the ring until the connect
    /// timeout, but no longer exhaust threads or memory.
    /// </summary>
    public const int MaxPendingHandshakes = 32;

    private const int Backlog = 64;

    private readonly Socket _socket;
    private int _disposed;

    private TcpRingListener(Socket socket)
    {
        _socket = socket;
        EndPoint = (IPEndPoint)socket.LocalEndPoint!;
    }

    /// <summary>The address and port the listener is bound to (the actual port when port 0 was asked for).</summary>
    public IPEndPoint EndPoint { get; }

    /// <summary>Binds a listener to <paramref name="endPoint"/>; port 0 picks a free port.</summary>
    /// <param name="endPoint">The local address and port, e.g. 0.0.0.0:0 or 127.0.0.1:0.</param>
    /// <exception cref="SocketException">The address cannot be bound (in use, not local).</exception>
    public static TcpRingListener Bind(IPEndPoint endPoint)
    {
        var socket = new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            socket.Bind(endPoint);
            socket.Listen(Backlog);
            return new TcpRingListener(socket);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>Stops listening.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            _socket.Dispose();
        }
    }

    /// <summary>
    /// Accepts connections until one completes the handshake as <paramref name="predecessor"/> of the same run,
    /// generation, world and protection, and returns it with its session. Every connection is handshaken on its own thread within
    /// <paramref name="handshakeTimeout"/>, so a stranger that sends garbage or nothing never holds up the
    /// predecessor; refused connections are dropped and described in <paramref name="refusals"/> (for error messages).
    /// A connection accepted while <see cref="MaxPendingHandshakes"/> others are handshaking is closed unread and
    /// counted in <paramref name="refusals"/>.
    /// </summary>
    /// <exception cref="CollectiveException">No predecessor completed the handshake before <paramref name="deadline"/>.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    internal (Socket Socket, RingSession Session) AcceptPredecessor(
        RingIdentity me, int predecessor, ReadOnlyMemory<byte> secret, TimeSpan handshakeTimeout, long deadline,
        RefusalLog refusals, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        var winner = new TaskCompletionSource<(Socket Socket, RingSession Session)>(TaskCreationOptions.RunContinuationsAsynchronously);
        int claimed = 0;
        int pending = 0;
        var stop = new CancellationTokenSource();

        void Handshake(Socket socket)
        {
            string address = socket.RemoteEndPoint?.ToString() ?? "an unknown address";
            var remaining = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), deadline);
            using var guard = new SocketDeadline(socket, remaining < handshakeTimeout ? remaining : handshakeTimeout, stop.Token);
            try
            {
                RingSession session;
                using (var stream = new NetworkStream(socket, ownsSocket: false))
                {
                    session = RingHandshake.RunServer(stream, me, predecessor, secret.Span, address, () => Interlocked.CompareExchange(ref claimed, 1, 0) == 0);
                }
                if (!guard.TryDisarm())
                {
                    Interlocked.Exchange(ref claimed, 0);
                    session.ClearKeys();
                    refusals.Add($"{address}: the handshake completed just as its time ran out");
                    return;
                }
                if (!winner.TrySetResult((socket, session)))
                {
                    session.ClearKeys();
                    socket.Dispose();
                }
            }
            catch (Exception) when (stop.IsCancellationRequested)
            {
                socket.Dispose(); // cut short because the rendezvous is over: nothing worth reporting
            }
            catch (RingHandshakeException e)
            {
                refusals.Add(guard.HasFired ? $"{address}: no complete handshake within {handshakeTimeout.TotalSeconds:0.#} s" : $"{address}: {e.Message}");
                socket.Dispose();
            }
            catch (Exception e)
            {
                refusals.Add($"{address}: {e.GetType().Name}: {e.Message}");
                socket.Dispose();
            }
        }

        var acceptor = new Thread(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                Socket accepted;
                try
                {
                    accepted = _socket.Accept();
                }
                catch (Exception e) when (e is SocketException or ObjectDisposedException)
                {
                    return; // the listener was closed
                }
                if (Interlocked.Increment(ref pending) > MaxPendingHandshakes)
                {
                    Interlocked.Decrement(ref pending);
                    refusals.CountDropped();
                    Drop(accepted);
                    continue;
                }
                accepted.NoDelay = true;
                var handshaker = new Thread(() =>
                {
                    try
                    {
                        Handshake(accepted);
                    }
                    finally
                    {
                        Interlocked.Decrement(ref pending);
                    }
                })
                { IsBackground = true, Name = $"ring-handshake-{me.Rank}" };
                handshaker.Start();
            }
        })
        { IsBackground = true, Name = $"ring-accept-{me.Rank}" };
        acceptor.Start();

        bool returned = false;
        try
        {
            using var cancelled = cancellationToken.Register(() => winner.TrySetCanceled(cancellationToken));
            var wait = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), deadline);
            bool done;
            try
            {
                done = winner.Task.Wait(wait > TimeSpan.Zero ? wait : TimeSpan.Zero);
            }
            catch (AggregateException e) when (e.InnerException is TaskCanceledException)
            {
                throw new OperationCanceledException(cancellationToken);
            }
            if (!done)
            {
                string seen = refusals.IsEmpty ? "no peer connected" : "refused: " + refusals;
                throw new CollectiveException($"rank {me.Rank}: its predecessor rank {predecessor} did not complete a ring handshake before the connect timeout ({seen})");
            }
            returned = true;
            return winner.Task.Result;
        }
        finally
        {
            // stop accepting: pending handshakes are cut short, and later connections find the port closed
            if (!returned && !winner.TrySetCanceled() && winner.Task.IsCompletedSuccessfully)
            {
                winner.Task.Result.Session.ClearKeys(); // a predecessor that arrived too late
                winner.Task.Result.Socket.Dispose();
            }
            stop.Cancel();
            Dispose();
            acceptor.Join(TimeSpan.FromSeconds(5));
        }
    }

    /// <summary>Closes a connection at once with a reset (no lingering, no handshake thread).</summary>
    private static void Drop(Socket socket)
    {
        try
        {
            socket.LingerState = new LingerOption(true, 0);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // the peer is gone already
        }
        socket.Dispose();
    }
}
