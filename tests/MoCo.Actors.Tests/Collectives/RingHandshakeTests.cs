using System.Buffers.Binary;
using System.Text;
using MoCo.Actors.Collectives;
using static MoCo.Actors.Tests.Collectives.Messages;

namespace MoCo.Actors.Tests.Collectives;

/// <summary>
/// The ring handshake, version 2, on a pair of sockets: the session keys it derives, the refusal of an older protocol's
/// hello, and recorded transcripts replayed to either side.
/// </summary>
public sealed class RingHandshakeTests
{
    private static readonly RingIdentity Server = new("run", 3, 1, 2);
    private static readonly RingIdentity Client = new("run", 3, 0, 2);

    [Fact]
    public async Task Both_sides_derive_the_same_keys_one_per_direction_and_fresh_for_every_connection()
    {
        var (client1, server1) = await Complete();
        var (client2, _) = await Complete();

        Assert.Equal(Client, server1.Peer);
        Assert.Equal(Server, client1.Peer);
        Assert.Equal(client1.SendKey, server1.ReceiveKey);
        Assert.Equal(client1.ReceiveKey, server1.SendKey);
        Assert.Equal(32, client1.SendKey.Length);
        Assert.NotEqual(client1.SendKey, client1.ReceiveKey);
        Assert.NotEqual(client1.SendKey, client2.SendKey);
    }

    [Fact]
    public async Task A_version_1_hello_is_refused_with_the_version_as_the_reason()
    {
        using var pair = SocketPair.Open();
        pair.ClientStream.Write(VersionOneHello(role: 1));

        var e = await Assert.ThrowsAsync<RingHandshakeException>(() => Task.Run(() => RingHandshake.RunServer(pair.ServerStream, Server, 0, LocalRing.Secret, "old-peer", () => true)));

        Assert.Equal(HandshakeRefusal.OtherVersion, e.Refusal);
        AssertMentions(e.Message, "the peer at old-peer speaks ring protocol version 1 (its hello starts 'MOCORNG1'), this rank version 2");
        AssertMentions(e.Message, "same MoCo release");
    }

    [Fact]
    public void A_server_that_answers_with_a_version_1_hello_is_refused_with_the_version_as_the_reason()
    {
        using var pair = SocketPair.Open();
        pair.ServerStream.Write(VersionOneHello(role: 2));

        var e = Assert.Throws<RingHandshakeException>(() => RingHandshake.RunClient(pair.ClientStream, Client, 1, LocalRing.Secret, "old-peer"));

        Assert.Equal(HandshakeRefusal.OtherVersion, e.Refusal);
        AssertMentions(e.Message, "version 1");
    }

    [Fact]
    public async Task A_client_transcript_replayed_to_another_connection_is_refused()
    {
        byte[] recorded;
        using (var pair = SocketPair.Open())
        {
            var recorder = new RecordingStream(pair.ClientStream);
            var server = Task.Run(() => RingHandshake.RunServer(pair.ServerStream, Server, 0, LocalRing.Secret, "client", () => true));
            RingHandshake.RunClient(recorder, Client, 1, LocalRing.Secret, "server");
            await server;
            recorded = recorder.Written.ToArray();
        }

        // an eavesdropper replays the genuine client's bytes to a fresh server: its new nonce and key make the old proof worthless
        using (var pair = SocketPair.Open())
        {
            var server = Task.Run(() => RingHandshake.RunServer(pair.ServerStream, Server, 0, LocalRing.Secret, "replayer", () => true));
            int helloLength = RingHandshake.ClientHelloBytes("run");
            Assert.Equal(helloLength + RingHandshake.FinishBytes, recorded.Length);
            pair.ClientStream.Write(recorded, 0, helloLength);
            pair.ClientStream.ReadExactly(new byte[helloLength + 32]); // the server's hello and proof
            pair.ClientStream.Write(recorded, helloLength, RingHandshake.FinishBytes);

            var refused = await Assert.ThrowsAsync<RingHandshakeException>(() => server);
            Assert.Equal(HandshakeRefusal.WrongSecret, refused.Refusal);
            Assert.Equal((byte)HandshakeRefusal.WrongSecret, (byte)pair.ClientStream.ReadByte());
        }
    }

    [Fact]
    public async Task A_server_transcript_replayed_to_another_connection_is_refused_and_gets_no_proof()
    {
        byte[] recorded;
        using (var pair = SocketPair.Open())
        {
            var recorder = new RecordingStream(pair.ServerStream);
            var server = Task.Run(() => RingHandshake.RunServer(recorder, Server, 0, LocalRing.Secret, "client", () => true));
            RingHandshake.RunClient(pair.ClientStream, Client, 1, LocalRing.Secret, "server");
            await server;
            recorded = recorder.Written.ToArray();
        }

        // an impostor answers a fresh client with the genuine server's recorded hello: the client's new nonce and key
        // make the recorded proof fail, and the client refuses without proving anything
        using (var pair = SocketPair.Open())
        {
            int helloLength = RingHandshake.ClientHelloBytes("run");
            var client = Task.Run(() => RingHandshake.RunClient(pair.ClientStream, Client, 1, LocalRing.Secret, "impostor"));
            pair.ServerStream.ReadExactly(new byte[helloLength]);
            pair.ServerStream.Write(recorded, 0, helloLength + 32);
            var finish = new byte[RingHandshake.FinishBytes];
            pair.ServerStream.ReadExactly(finish);

            var refused = await Assert.ThrowsAsync<RingHandshakeException>(() => client);
            Assert.Equal(HandshakeRefusal.WrongSecret, refused.Refusal);
            AssertMentions(refused.Message, "failed to prove it holds the cluster secret");
            Assert.Equal((byte)HandshakeRefusal.WrongSecret, finish[0]);
            Assert.All(finish.Skip(1), b => Assert.Equal(0, b));
        }
    }

    [Fact]
    public void A_hello_whose_ephemeral_key_is_not_a_curve_point_is_refused_before_any_proof()
    {
        using var pair = SocketPair.Open();
        var hello = new byte[RingHandshake.ClientHelloBytes("run")];
        "MOCORNG2"u8.CopyTo(hello);
        hello[8] = 1;
        BinaryPrimitives.WriteUInt16BigEndian(hello.AsSpan(9), 3);
        "run"u8.CopyTo(hello.AsSpan(11));
        BinaryPrimitives.WriteInt64BigEndian(hello.AsSpan(14), 3);
        BinaryPrimitives.WriteInt32BigEndian(hello.AsSpan(26), 2);
        hello[30] = (byte)DataPlaneProtection.AesGcm;
        hello[^65] = 0x04; // then X = Y = 0: not on P-256
        pair.ClientStream.Write(hello);

        var e = Assert.Throws<RingHandshakeException>(() => RingHandshake.RunServer(pair.ServerStream, Server, 0, LocalRing.Secret, "forger", () => true));

        AssertMentions(e.Message, "the peer at forger sent an ephemeral key that is not a point of P-256");
        // nothing was sent back (a write on loopback is readable at once): no proof over the forged hello
        Assert.False(pair.ClientStream.DataAvailable, "the server answered a hello whose key it could not use");
    }

    private static async Task<(RingSession Client, RingSession Server)> Complete()
    {
        using var pair = SocketPair.Open();
        var server = Task.Run(() => RingHandshake.RunServer(pair.ServerStream, Server, 0, LocalRing.Secret, "client", () => true));
        var client = RingHandshake.RunClient(pair.ClientStream, Client, 1, LocalRing.Secret, "server");
        return (client, await server);
    }

    /// <summary>A hello of protocol version 1 (magic "MOCORNG1", no protection byte, no ephemeral key), as an older release sends it.</summary>
    private static byte[] VersionOneHello(byte role)
    {
        byte[] runId = Encoding.UTF8.GetBytes("run");
        var hello = new byte[8 + 1 + 2 + runId.Length + 8 + 4 + 4 + 32 + (role == 2 ? 32 : 0)];
        "MOCORNG1"u8.CopyTo(hello);
        hello[8] = role;
        BinaryPrimitives.WriteUInt16BigEndian(hello.AsSpan(9), (ushort)runId.Length);
        runId.CopyTo(hello, 11);
        BinaryPrimitives.WriteInt64BigEndian(hello.AsSpan(11 + runId.Length), 3);
        return hello;
    }
}
