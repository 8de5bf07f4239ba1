using System.Diagnostics;
using System.Net.Sockets;

namespace MoCo.Actors.Collectives;

/// <summary>
/// One direction of the ring as this rank sees it: a connected, authenticated, blocking TCP socket to one peer,
/// with exact sends and receives bounded by a deadline. Failures become <see cref="RingLinkException"/>s that name
/// the peer's rank and address.
/// </summary>
internal sealed unsafe class RingLink : IDisposable
{
    /// <summary>How far a blocking call may overrun the deadline before its socket timeout is tightened (saves a system call per segment).</summary>
    private const int TimeoutSlackMs = 50;

    private readonly Socket _socket;
    private int _sendTimeoutMs = -1;
    private int _receiveTimeoutMs = -1;
    private volatile bool _shutDown;

    public RingLink(Socket socket, int peerRank, string peerAddress)
    {
        _socket = socket;
        PeerRank = peerRank;
        PeerAddress = peerAddress;
    }

    /// <summary>The peer's rank.</summary>
    public int PeerRank { get; }

    /// <summary>The peer's address (host:port as this rank reached it or saw it connect).</summary>
    public string PeerAddress { get; }

    /// <summary>"rank r at host:port", for messages.</summary>
    public string Peer => $"rank {PeerRank} at {PeerAddress}";

    /// <summary>Sends exactly <paramref name="length"/> bytes from <paramref name="data"/>, before <paramref name="deadline"/> (a <see cref="Stopwatch"/> timestamp).</summary>
    /// <exception cref="RingLinkException">The peer closed the connection, took no data before the deadline, or the link was shut down.</exception>
    public void Send(byte* data, int length, long deadline)
    {
        while (length > 0)
        {
            int ms = RemainingMs(deadline, sending: true);
            if (_sendTimeoutMs < ms || _sendTimeoutMs - ms > TimeoutSlackMs)
            {
                SetTimeout(ms, sending: true);
            }
            int sent;
            try
            {
                sent = _socket.Send(new ReadOnlySpan<byte>(data, length), SocketFlags.None);
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.TimedOut or SocketError.WouldBlock && !_shutDown)
            {
                continue; // the socket timeout expired: the deadline check above decides
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                throw Broken(e);
            }
            data += sent;
            length -= sent;
        }
    }

    /// <summary>Receives exactly <paramref name="length"/> bytes into <paramref name="data"/>, before <paramref name="deadline"/> (a <see cref="Stopwatch"/> timestamp).</summary>
    /// <exception cref="RingLinkException">The peer closed the connection, sent nothing before the deadline, or the link was shut down.</exception>
    public void Receive(byte* data, int length, long deadline)
    {
        while (length > 0)
        {
            int ms = RemainingMs(deadline, sending: false);
            if (_receiveTimeoutMs < ms || _receiveTimeoutMs - ms > TimeoutSlackMs)
            {
                SetTimeout(ms, sending: false);
            }
            int received;
            try
            {
                received = _socket.Receive(new Span<byte>(data, length), SocketFlags.None);
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.TimedOut or SocketError.WouldBlock && !_shutDown)
            {
                continue;
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                throw Broken(e);
            }
            if (received == 0)
            {
                throw _shutDown
                    ? new RingLinkException($"the link to {Peer} was shut down on this rank", timedOut: false)
                    : new RingLinkException($"{Peer} closed the connection", timedOut: false);
            }
            data += received;
            length -= received;
        }
    }

    /// <summary>Shuts the connection down in both directions: blocked calls on other threads return at once, and the peer sees the connection close.</summary>
    public void Shutdown()
    {
        _shutDown = true;
        try
        {
            _socket.Shutdown(SocketShutdown.Both);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // already closed, or the peer reset it: either way nothing is left to unblock
        }
    }

    public void Dispose()
    {
        Shutdown();
        _socket.Dispose();
    }

    private int RemainingMs(long deadline, bool sending)
    {
        long ticks = deadline - Stopwatch.GetTimestamp();
        if (ticks <= 0)
        {
            throw new RingLinkException(
                sending
                    ? $"{Peer} took no data before the operation's deadline (it stopped reading)"
                    : $"no data came from {Peer} before the operation's deadline (it stopped sending, or never arrived)",
                timedOut: true);
        }
        return (int)Math.Clamp(ticks * 1000 / Stopwatch.Frequency, 1, int.MaxValue);
    }

    private void SetTimeout(int ms, bool sending)
    {
        try
        {
            if (sending)
            {
                _socket.SendTimeout = ms;
                _sendTimeoutMs = ms;
            }
            else
            {
                _socket.ReceiveTimeout = ms;
                _receiveTimeoutMs = ms;
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            throw Broken(e);
        }
    }

    private RingLinkException Broken(Exception e)
    {
        if (_shutDown)
        {
            return new RingLinkException($"the link to {Peer} was shut down on this rank", timedOut: false, e);
        }
        string what = e is SocketException s ? s.SocketErrorCode.ToString() : e.GetType().Name;
        return new RingLinkException($"the connection to {Peer} broke ({what}: {e.Message})", timedOut: false, e);
    }
}
