using System.Net.Sockets;

namespace MoCo.Actors.Collectives;

/// <summary>
/// One direction of the ring as this rank sees it: a connected, authenticated TCP socket to one peer, switched to
/// non-blocking mode after the handshake so that one thread can drive both of a rank's links (see
/// <see cref="TcpRingCollective"/>). Failures become <see cref="RingLinkException"/>s that name the peer's rank and
/// address.
/// </summary>
internal sealed unsafe class RingLink : IDisposable
{
    private readonly Socket _socket;
    private volatile bool _shutDown;

    public RingLink(Socket socket, int peerRank, string peerAddress)
    {
        _socket = socket;
        _socket.Blocking = false;
        _socket.NoDelay = true;
        PeerRank = peerRank;
        PeerAddress = peerAddress;
    }

    /// <summary>The peer's rank.</summary>
    public int PeerRank { get; }

    /// <summary>The peer's published endpoint (host:port).</summary>
    public string PeerAddress { get; }

    /// <summary>"rank r at host:port", for messages.</summary>
    public string Peer => $"rank {PeerRank} at {PeerAddress}";

    /// <summary>The socket, for waiting on readiness.</summary>
    public Socket Socket => _socket;

    /// <summary>Sends what the socket's buffer takes of <paramref name="length"/> bytes at <paramref name="data"/> without waiting; returns how many (0: the buffer is full).</summary>
    /// <exception cref="RingLinkException">The connection broke, or the link was shut down.</exception>
    public int TrySend(byte* data, int length)
    {
        int sent;
        SocketError error;
        try
        {
            sent = _socket.Send(new ReadOnlySpan<byte>(data, length), SocketFlags.None, out error);
        }
        catch (ObjectDisposedException e)
        {
            throw Broken(e.Message, e);
        }
        return error switch
        {
            SocketError.Success => sent,
            SocketError.WouldBlock or SocketError.Interrupted => 0,
            _ => throw Broken(error.ToString()),
        };
    }

    /// <summary>Receives what has arrived, up to <paramref name="length"/> bytes into <paramref name="data"/>, without waiting; returns how many (0: nothing yet).</summary>
    /// <exception cref="RingLinkException">The peer closed the connection, it broke, or the link was shut down.</exception>
    public int TryReceive(byte* data, int length)
    {
        int received;
        SocketError error;
        try
        {
            received = _socket.Receive(new Span<byte>(data, length), SocketFlags.None, out error);
        }
        catch (ObjectDisposedException e)
        {
            throw Broken(e.Message, e);
        }
        switch (error)
        {
            case SocketError.Success when received > 0:
                return received;
            case SocketError.Success:
                throw _shutDown
                    ? new RingLinkException($"the link to {Peer} was shut down on this rank")
                    : new RingLinkException($"{Peer} closed the connection");
            case SocketError.WouldBlock or SocketError.Interrupted:
                return 0;
            default:
                throw Broken(error.ToString());
        }
    }

    /// <summary>Shuts the connection down in both directions: a wait on another thread returns at once, and the peer sees the connection close.</summary>
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

    private RingLinkException Broken(string what, Exception? inner = null) =>
        _shutDown
            ? new RingLinkException($"the link to {Peer} was shut down on this rank", inner)
            : new RingLinkException($"the connection to {Peer} broke ({what})", inner);
}
