using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace MoCo.Actors.Collectives;

/// <summary>
/// The handshake that opens every ring connection, a mutual HMAC-SHA256 challenge/response:
/// <code>
/// client → server  hello_c  = "MOCORNG1" role=1 run-id generation rank world-size nonce_c
/// server → client  hello_s  = "MOCORNG1" role=2 run-id generation rank world-size nonce_s mac_s
///                  mac_s    = HMAC(secret, "moco-ring/v1 server" ‖ hello_c ‖ hello_s without mac_s)
/// client → server  finish_c = verdict_c mac_c
///                  mac_c    = HMAC(secret, "moco-ring/v1 client" ‖ hello_c ‖ hello_s)
/// server → client  verdict_s
/// </code>
/// Each side proves it holds the secret over the other side's fresh nonce, so the secret never travels and a
/// recorded transcript replayed to either side fails; the role labels stop one side's proof from being reflected
/// as the other's. Each side checks the other's run id, generation, world size and rank, and a verdict other than
/// <see cref="HandshakeRefusal.None"/> tells the other side why it was refused, so both sides can name the reason.
/// The caller bounds the whole exchange in time (it closes the connection at its deadline).
/// </summary>
internal static class RingHandshake
{
    private const int NonceBytes = 32;
    private const int MacBytes = 32;
    private const byte ClientRole = 1;
    private const byte ServerRole = 2;
    private const int PrefixBytes = 8 + 1 + 2; // magic, role, run id length
    private const int FixedTailBytes = 8 + 4 + 4 + NonceBytes; // generation, rank, world size, nonce

    private static ReadOnlySpan<byte> Magic => "MOCORNG1"u8;

    private static ReadOnlySpan<byte> ServerLabel => "moco-ring/v1 server"u8;

    private static ReadOnlySpan<byte> ClientLabel => "moco-ring/v1 client"u8;

    /// <summary>Runs the connecting side's handshake and returns the peer's identity.</summary>
    /// <param name="stream">The fresh connection.</param>
    /// <param name="me">This rank's identity.</param>
    /// <param name="expectedPeerRank">The rank this side expects to reach (its successor).</param>
    /// <param name="secret">The cluster's shared secret.</param>
    /// <param name="peerAddress">The peer's address, for messages.</param>
    /// <exception cref="RingHandshakeException">Refused by either side (with a reason), or broken off.</exception>
    public static RingIdentity RunClient(Stream stream, RingIdentity me, int expectedPeerRank, ReadOnlySpan<byte> secret, string peerAddress)
    {
        byte[] helloC = EncodeHello(me, ClientRole);
        Write(stream, helloC, peerAddress);
        var (peer, helloS) = ReadHello(stream, ServerRole, peerAddress);

        var macS = helloS.AsSpan(helloS.Length - MacBytes);
        Span<byte> expectedMacS = stackalloc byte[MacBytes];
        Mac(secret, ServerLabel, helloC, helloS.AsSpan(0, helloS.Length - MacBytes), expectedMacS);
        var verdict = CryptographicOperations.FixedTimeEquals(macS, expectedMacS)
            ? Check(me, peer, expectedPeerRank)
            : HandshakeRefusal.WrongSecret;

        byte[] finish = new byte[1 + MacBytes];
        finish[0] = (byte)verdict;
        if (verdict == HandshakeRefusal.None)
        {
            // prove the secret only to a peer that proved it first
            Mac(secret, ClientLabel, helloC, helloS, finish.AsSpan(1));
        }
        Write(stream, finish, peerAddress);
        if (verdict != HandshakeRefusal.None)
        {
            throw Refused(verdict, me, peer, peerAddress, expectedPeerRank, byPeer: false);
        }

        byte[] verdictS = new byte[1];
        Read(stream, verdictS, peerAddress);
        var refusal = (HandshakeRefusal)verdictS[0];
        if (refusal != HandshakeRefusal.None)
        {
            throw Refused(refusal, me, peer, peerAddress, expectedPeerRank, byPeer: true);
        }
        return peer;
    }

    /// <summary>Runs the accepting side's handshake and returns the peer's identity.</summary>
    /// <param name="stream">The accepted connection.</param>
    /// <param name="me">This rank's identity.</param>
    /// <param name="expectedPeerRank">The rank this side expects to connect (its predecessor).</param>
    /// <param name="secret">The cluster's shared secret.</param>
    /// <param name="peerAddress">The peer's address, for messages.</param>
    /// <param name="claim">
    /// Called once the peer is verified; returns false when this side already holds a connection from that rank,
    /// which refuses the peer as <see cref="HandshakeRefusal.Duplicate"/>.
    /// </param>
    /// <exception cref="RingHandshakeException">Refused by either side (with a reason), or broken off.</exception>
    public static RingIdentity RunServer(Stream stream, RingIdentity me, int expectedPeerRank, ReadOnlySpan<byte> secret, string peerAddress, Func<bool> claim)
    {
        var (peer, helloC) = ReadHello(stream, ClientRole, peerAddress);
        byte[] helloS = EncodeHello(me, ServerRole, MacBytes);
        Mac(secret, ServerLabel, helloC, helloS.AsSpan(0, helloS.Length - MacBytes), helloS.AsSpan(helloS.Length - MacBytes));
        Write(stream, helloS, peerAddress);

        byte[] finish = new byte[1 + MacBytes];
        Read(stream, finish, peerAddress);
        var clientVerdict = (HandshakeRefusal)finish[0];
        if (clientVerdict != HandshakeRefusal.None)
        {
            throw Refused(clientVerdict, me, peer, peerAddress, expectedPeerRank, byPeer: true);
        }

        Span<byte> expectedMacC = stackalloc byte[MacBytes];
        Mac(secret, ClientLabel, helloC, helloS, expectedMacC);
        var verdict = CryptographicOperations.FixedTimeEquals(finish.AsSpan(1), expectedMacC)
            ? Check(me, peer, expectedPeerRank)
            : HandshakeRefusal.WrongSecret;
        if (verdict == HandshakeRefusal.None && !claim())
        {
            verdict = HandshakeRefusal.Duplicate;
        }
        Write(stream, [(byte)verdict], peerAddress);
        if (verdict != HandshakeRefusal.None)
        {
            throw Refused(verdict, me, peer, peerAddress, expectedPeerRank, byPeer: false);
        }
        return peer;
    }

    private static HandshakeRefusal Check(RingIdentity me, RingIdentity peer, int expectedPeerRank)
    {
        if (peer.RunId != me.RunId)
        {
            return HandshakeRefusal.OtherRun;
        }
        if (peer.Generation != me.Generation)
        {
            return HandshakeRefusal.OtherGeneration;
        }
        if (peer.WorldSize != me.WorldSize)
        {
            return HandshakeRefusal.OtherWorldSize;
        }
        return peer.Rank == expectedPeerRank ? HandshakeRefusal.None : HandshakeRefusal.UnexpectedRank;
    }

    private static RingHandshakeException Refused(HandshakeRefusal refusal, RingIdentity me, RingIdentity peer, string address, int expectedPeerRank, bool byPeer)
    {
        string who = $"rank {peer.Rank} at {address}";
        string reason = refusal switch
        {
            HandshakeRefusal.WrongSecret when byPeer =>
                $"{who} could not verify this rank's proof of the cluster secret: the two hold different secrets",
            HandshakeRefusal.WrongSecret =>
                $"the peer at {address} (claiming rank {peer.Rank}) failed to prove it holds the cluster secret: a wrong secret, or a replayed or foreign handshake",
            HandshakeRefusal.OtherRun =>
                $"{who} belongs to run '{peer.RunId}', this rank to run '{me.RunId}'",
            HandshakeRefusal.OtherGeneration =>
                $"{who} is at generation {peer.Generation}, this rank at generation {me.Generation} ({(peer.Generation < me.Generation ? "the peer is stale" : "this rank is stale")})",
            HandshakeRefusal.OtherWorldSize =>
                $"{who} expects a world of {peer.WorldSize} ranks, this rank a world of {me.WorldSize}",
            HandshakeRefusal.UnexpectedRank when byPeer =>
                $"{who} did not expect rank {me.Rank} on that link",
            HandshakeRefusal.UnexpectedRank =>
                $"the peer at {address} is rank {peer.Rank}, but this link expects rank {expectedPeerRank}",
            HandshakeRefusal.Duplicate when byPeer =>
                $"{who} already holds a connection from rank {me.Rank}",
            HandshakeRefusal.Duplicate =>
                $"this rank already holds a connection from {who}",
            _ => $"{who} sent an unknown refusal code {(byte)refusal}",
        };
        string prefix = byPeer ? "refused by the peer: " : "refused: ";
        return new RingHandshakeException(prefix + reason, refusal);
    }

    private static byte[] EncodeHello(RingIdentity me, byte role, int trailingBytes = 0)
    {
        byte[] runId = Encoding.UTF8.GetBytes(me.RunId);
        byte[] hello = new byte[PrefixBytes + runId.Length + FixedTailBytes + trailingBytes];
        var span = hello.AsSpan();
        Magic.CopyTo(span);
        span[8] = role;
        BinaryPrimitives.WriteUInt16BigEndian(span[9..], (ushort)runId.Length);
        runId.CopyTo(span[PrefixBytes..]);
        var tail = span[(PrefixBytes + runId.Length)..];
        BinaryPrimitives.WriteInt64BigEndian(tail, me.Generation);
        BinaryPrimitives.WriteInt32BigEndian(tail[8..], me.Rank);
        BinaryPrimitives.WriteInt32BigEndian(tail[12..], me.WorldSize);
        RandomNumberGenerator.Fill(tail.Slice(16, NonceBytes));
        return hello;
    }

    private static (RingIdentity Peer, byte[] Bytes) ReadHello(Stream stream, byte role, string peerAddress)
    {
        byte[] prefix = new byte[PrefixBytes];
        Read(stream, prefix, peerAddress);
        if (!prefix.AsSpan(0, 8).SequenceEqual(Magic))
        {
            throw new RingHandshakeException($"the peer at {peerAddress} does not speak the MoCo ring protocol (its first bytes are not a ring hello)");
        }
        if (prefix[8] != role)
        {
            throw new RingHandshakeException($"the peer at {peerAddress} sent a ring hello of role {prefix[8]} where role {role} was due");
        }
        int runIdLength = BinaryPrimitives.ReadUInt16BigEndian(prefix.AsSpan(9));
        if (runIdLength is 0 or > TcpRingOptions.MaxRunIdBytes)
        {
            throw new RingHandshakeException($"the peer at {peerAddress} sent a ring hello with a run id of {runIdLength} bytes (1..{TcpRingOptions.MaxRunIdBytes} allowed)");
        }
        int trailing = role == ServerRole ? MacBytes : 0;
        byte[] hello = new byte[PrefixBytes + runIdLength + FixedTailBytes + trailing];
        prefix.CopyTo(hello, 0);
        Read(stream, hello.AsSpan(PrefixBytes), peerAddress);
        string runId;
        try
        {
            runId = new UTF8Encoding(false, true).GetString(hello, PrefixBytes, runIdLength);
        }
        catch (DecoderFallbackException)
        {
            throw new RingHandshakeException($"the peer at {peerAddress} sent a run id that is not UTF-8");
        }
        var tail = hello.AsSpan(PrefixBytes + runIdLength);
        var peer = new RingIdentity(
            runId,
            BinaryPrimitives.ReadInt64BigEndian(tail),
            BinaryPrimitives.ReadInt32BigEndian(tail[8..]),
            BinaryPrimitives.ReadInt32BigEndian(tail[12..]));
        return (peer, hello);
    }

    private static void Mac(ReadOnlySpan<byte> secret, ReadOnlySpan<byte> label, ReadOnlySpan<byte> first, ReadOnlySpan<byte> second, Span<byte> destination)
    {
        using var hmac = IncrementalHash.CreateHMAC(HashAlgorithmName.SHA256, secret);
        hmac.AppendData(label);
        hmac.AppendData(first);
        hmac.AppendData(second);
        hmac.GetHashAndReset(destination);
    }

    private static void Write(Stream stream, ReadOnlySpan<byte> bytes, string peerAddress)
    {
        try
        {
            stream.Write(bytes);
            stream.Flush();
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException)
        {
            throw new RingHandshakeException($"the connection to {peerAddress} broke during the handshake: {e.Message}", inner: e);
        }
    }

    private static void Read(Stream stream, Span<byte> buffer, string peerAddress)
    {
        try
        {
            stream.ReadExactly(buffer);
        }
        catch (EndOfStreamException e)
        {
            throw new RingHandshakeException($"the peer at {peerAddress} closed the connection during the handshake", inner: e);
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException)
        {
            throw new RingHandshakeException($"the connection to {peerAddress} broke or timed out during the handshake: {e.Message}", inner: e);
        }
    }
}
