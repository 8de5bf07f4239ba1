using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using MoCo.Model.Collectives;

namespace MoCo.Actors.Collectives;

/// <summary>
/// The second half of a rank's rendezvous: connecting to the successor. Peers start at different moments, so a
/// refused connection, an unresolvable name or a handshake that breaks off is retried (with a growing pause) until
/// the connect timeout; a refusal for a stated reason (wrong secret, another run or generation, an unexpected rank
/// or world size) is final and thrown at once.
/// </summary>
internal static class RingConnector
{
    private static readonly TimeSpan FirstPause = TimeSpan.FromMilliseconds(20);
    private static readonly TimeSpan LongestPause = TimeSpan.FromMilliseconds(500);

    /// <summary>Connects to <paramref name="endPoint"/> and completes the handshake with <paramref name="successor"/>; returns the connection and its session.</summary>
    /// <exception cref="CollectiveException">Refused, or not reached before <paramref name="deadline"/>.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public static (Socket Socket, RingSession Session) ConnectSuccessor(
        EndPoint endPoint, RingIdentity me, int successor, ReadOnlyMemory<byte> secret, TimeSpan handshakeTimeout, long deadline, CancellationToken cancellationToken)
    {
        string lastProblem = "no attempt was made";
        var pause = FirstPause;
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var remaining = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), deadline);
            if (remaining <= TimeSpan.Zero)
            {
                throw new CollectiveException($"rank {me.Rank}: could not reach its successor rank {successor} at {endPoint} before the connect timeout (last: {lastProblem})");
            }
            if (TryConnect(endPoint, me, successor, secret, handshakeTimeout, remaining, cancellationToken, out var connected, out var session, out lastProblem))
            {
                return (connected, session);
            }
            cancellationToken.WaitHandle.WaitOne(pause < remaining ? pause : remaining);
            pause = pause * 2 < LongestPause ? pause * 2 : LongestPause;
        }
    }

    private static bool TryConnect(
        EndPoint endPoint, RingIdentity me, int successor, ReadOnlyMemory<byte> secret, TimeSpan handshakeTimeout, TimeSpan remaining,
        CancellationToken cancellationToken, out Socket connected, out RingSession session, out string problem)
    {
        connected = null!;
        session = null!;
        IPEndPoint target;
        try
        {
            target = Resolve(endPoint);
        }
        catch (SocketException e)
        {
            problem = $"{endPoint} does not resolve: {e.Message}";
            return false;
        }

        string address = target.ToString();
        var socket = new Socket(target.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            using (var connectGuard = new SocketDeadline(socket, remaining, cancellationToken))
            {
                try
                {
                    socket.Connect(target);
                }
                catch (Exception e) when (e is SocketException or ObjectDisposedException)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    problem = connectGuard.HasFired ? $"connecting to {address} timed out" : $"connecting to {address} failed: {Describe(e)}";
                    socket.Dispose();
                    return false;
                }
                if (!connectGuard.TryDisarm())
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    problem = $"connecting to {address} timed out";
                    socket.Dispose();
                    return false;
                }
            }

            var limit = remaining < handshakeTimeout ? remaining : handshakeTimeout;
            using var handshakeGuard = new SocketDeadline(socket, limit, cancellationToken);
            try
            {
                using (var stream = new NetworkStream(socket, ownsSocket: false))
                {
                    session = RingHandshake.RunClient(stream, me, successor, secret.Span, address);
                }
            }
            catch (RingHandshakeException e) when (e.IsRefusal)
            {
                socket.Dispose();
                throw new CollectiveException($"rank {me.Rank}: ring handshake with its successor {e.Message}", e);
            }
            catch (RingHandshakeException e)
            {
                cancellationToken.ThrowIfCancellationRequested();
                problem = handshakeGuard.HasFired ? $"{address} did not complete the handshake within {limit.TotalSeconds:0.#} s" : e.Message;
                socket.Dispose();
                return false;
            }
            if (!handshakeGuard.TryDisarm())
            {
                cancellationToken.ThrowIfCancellationRequested();
                problem = $"{address} did not complete the handshake within {limit.TotalSeconds:0.#} s";
                session.ClearKeys();
                socket.Dispose();
                return false;
            }
            connected = socket;
            problem = "";
            return true;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private static IPEndPoint Resolve(EndPoint endPoint)
    {
        if (endPoint is IPEndPoint ip)
        {
            return ip;
        }
        var dns = (DnsEndPoint)endPoint;
        var addresses = Dns.GetHostAddresses(dns.Host);
        var chosen = addresses.FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork) ?? addresses.FirstOrDefault()
            ?? throw new SocketException((int)SocketError.HostNotFound);
        return new IPEndPoint(chosen, dns.Port);
    }

    private static string Describe(Exception e) => e is SocketException s ? $"{s.SocketErrorCode}" : e.Message;
}
