using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using MoCo.Actors.Collectives;

namespace MoCo.Actors.Tests.Collectives;

/// <summary>
/// A man in the middle on one ring connection: it listens on 127.0.0.1 and, for each connection it accepts, connects to
/// the real listener and copies both directions. What the client (the sending rank) sends passes untouched for the first
/// <c>handshakeBytes</c> (the handshake); after that, <see cref="ForFrames"/> parses each sealed frame
/// (<see cref="RingFrameCipher"/>: length, ciphertext, tag) and forwards what its tamper function returns in its place,
/// while <see cref="ForBytes"/> hands every block of raw bytes to its tamper function to change in place. What is
/// forwarded after the handshake is kept in <see cref="Forwarded"/>.
/// </summary>
internal sealed class TamperingProxy : IDisposable
{
    private readonly Socket _listener;
    private readonly IPEndPoint _target;
    private readonly int _handshakeBytes;
    private readonly Action<Stream, Stream, MemoryStream> _pump;
    private readonly List<Socket> _sockets = [];
    private readonly MemoryStream _forwarded = new();
    private readonly Thread _acceptor;

    private TamperingProxy(IPEndPoint target, int handshakeBytes, Action<Stream, Stream, MemoryStream> pump)
    {
        _target = target;
        _handshakeBytes = handshakeBytes;
        _pump = pump;
        _listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _listener.Listen(8);
        EndPoint = (IPEndPoint)_listener.LocalEndPoint!;
        _acceptor = new Thread(Accept) { IsBackground = true, Name = "tampering-proxy" };
        _acceptor.Start();
    }

    /// <summary>Where the sending rank must connect (in place of its successor's listener).</summary>
    public IPEndPoint EndPoint { get; }

    /// <summary>A copy of the bytes forwarded from client to server after the handshake.</summary>
    public byte[] Forwarded
    {
        get
        {
            lock (_forwarded)
            {
                return _forwarded.ToArray();
            }
        }
    }

    /// <summary>
    /// A proxy that hands each sealed frame after the handshake (0: the operation header's, then the segments') to
    /// <paramref name="tamper"/> and forwards the frames it returns; when it says <c>Cut</c>, the proxy then ends the
    /// server's side of the connection (the client's side stays open and is drained, so only the receiver notices).
    /// </summary>
    public static TamperingProxy ForFrames(IPEndPoint target, int handshakeBytes, Func<int, byte[], (IEnumerable<byte[]> Forward, bool Cut)> tamper) =>
        new(target, handshakeBytes, (from, to, record) =>
        {
            var length = new byte[RingFrameCipher.LengthBytes];
            for (int index = 0; ; index++)
            {
                from.ReadExactly(length);
                var frame = new byte[RingFrameCipher.Overhead + (int)BinaryPrimitives.ReadUInt32BigEndian(length)];
                length.CopyTo(frame, 0);
                from.ReadExactly(frame.AsSpan(RingFrameCipher.LengthBytes));
                var (forward, cut) = tamper(index, frame);
                foreach (var piece in forward)
                {
                    Forward(to, piece, record);
                }
                if (cut)
                {
                    to.Flush();
                    throw new EndOfStreamException("cut by the test");
                }
            }
        });

    /// <summary>A proxy that lets <paramref name="tamper"/> change the raw bytes after the handshake in place, given the position of the block's first byte.</summary>
    public static TamperingProxy ForBytes(IPEndPoint target, int handshakeBytes, Action<long, byte[], int> tamper) =>
        new(target, handshakeBytes, (from, to, record) =>
        {
            var block = new byte[64 * 1024];
            long position = 0;
            while (true)
            {
                int n = from.Read(block);
                if (n == 0)
                {
                    return;
                }
                tamper(position, block, n);
                Forward(to, block.AsSpan(0, n), record);
                position += n;
            }
        });

    public void Dispose()
    {
        _listener.Dispose();
        lock (_sockets)
        {
            _sockets.ForEach(s => s.Dispose());
        }
        _acceptor.Join(TimeSpan.FromSeconds(5));
    }

    private static void Forward(Stream to, ReadOnlySpan<byte> bytes, MemoryStream record)
    {
        to.Write(bytes);
        lock (record)
        {
            record.Write(bytes);
        }
    }

    private void Accept()
    {
        while (true)
        {
            Socket client;
            Socket server;
            try
            {
                client = _listener.Accept();
                server = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                server.Connect(_target);
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                return;
            }
            lock (_sockets)
            {
                _sockets.Add(client);
                _sockets.Add(server);
            }
            var atServer = new NetworkStream(server);
            var atClient = new NetworkStream(client);
            Start(() => atServer.CopyTo(atClient), () => Close(client, server));
            Start(() =>
            {
                // the handshake passes as it comes (each side waits for the other's message)
                var block = new byte[1024];
                for (int left = _handshakeBytes; left > 0;)
                {
                    int n = atClient.Read(block, 0, Math.Min(left, block.Length));
                    if (n == 0)
                    {
                        return;
                    }
                    atServer.Write(block, 0, n);
                    left -= n;
                }
                _pump(atClient, atServer, _forwarded);
            }, () =>
            {
                // end the receiver's side only; drain the sender so that it notices nothing until the receiver fails
                try
                {
                    server.Shutdown(SocketShutdown.Send);
                    atClient.CopyTo(Stream.Null);
                }
                catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
                {
                    // closed meanwhile
                }
                Close(client, server);
            });
        }
    }

    private static void Start(Action pump, Action after) =>
        new Thread(() =>
        {
            try
            {
                pump();
            }
            catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
            {
                // a side closed: the test's ranks report what they saw
            }
            finally
            {
                after();
            }
        })
        { IsBackground = true, Name = "tampering-proxy-pump" }.Start();

    private static void Close(Socket client, Socket server)
    {
        foreach (var socket in new[] { server, client })
        {
            try
            {
                socket.Shutdown(SocketShutdown.Both);
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                // already closed
            }
        }
    }
}
