using System.Net.Sockets;

namespace MoCo.Actors.Collectives;

/// <summary>
/// Closes a socket when a time limit passes or a token is cancelled, unless disarmed first: the bound on a connect
/// or a handshake whose blocking calls have no deadline of their own (closing the socket makes them return).
/// </summary>
internal sealed class SocketDeadline : IDisposable
{
    private const int Armed = 0;
    private const int Fired = 1;
    private const int Disarmed = 2;

    private readonly Socket _socket;
    private readonly Timer _timer;
    private readonly CancellationTokenRegistration _registration;
    private int _state = Armed;

    public SocketDeadline(Socket socket, TimeSpan after, CancellationToken cancellationToken)
    {
        _socket = socket;
        _timer = new Timer(_ => Fire(), null, after < TimeSpan.Zero ? TimeSpan.Zero : after, Timeout.InfiniteTimeSpan);
        _registration = cancellationToken.Register(Fire);
    }

    /// <summary>Whether the limit passed (or the token was cancelled) and the socket was closed.</summary>
    public bool HasFired => Volatile.Read(ref _state) == Fired;

    /// <summary>Stops the deadline; false when it already fired (the socket is closed).</summary>
    public bool TryDisarm() => Interlocked.CompareExchange(ref _state, Disarmed, Armed) != Fired;

    public void Dispose()
    {
        TryDisarm();
        _timer.Dispose();
        _registration.Dispose();
    }

    private void Fire()
    {
        if (Interlocked.CompareExchange(ref _state, Fired, Armed) != Armed)
        {
            return;
        }
        try
        {
            _socket.Shutdown(SocketShutdown.Both);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // not connected yet, or closed already
        }
        _socket.Dispose();
    }
}
