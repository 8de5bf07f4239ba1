using System.Net;
using System.Net.Sockets;

namespace MoCo.Actors.Tests.Collectives;

/// <summary>Two connected loopback sockets with a stream on each end, for handshake tests.</summary>
internal sealed class SocketPair : IDisposable
{
    private readonly Socket _client;
    private readonly Socket _server;

    private SocketPair(Socket client, Socket server)
    {
        _client = client;
        _server = server;
        _client.ReceiveTimeout = _server.ReceiveTimeout = 30_000;
        ClientStream = new NetworkStream(client) { ReadTimeout = 30_000 };
        ServerStream = new NetworkStream(server) { ReadTimeout = 30_000 };
    }

    public NetworkStream ClientStream { get; }

    public NetworkStream ServerStream { get; }

    public static SocketPair Open()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        client.Connect(listener.LocalEndPoint!);
        return new SocketPair(client, listener.Accept());
    }

    public void Dispose()
    {
        ClientStream.Dispose();
        ServerStream.Dispose();
    }
}
