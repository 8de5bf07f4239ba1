using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace MoCo.Actors.Collectives;

/// <summary>
/// The handshake that opens every ring connection (protocol version 2): mutual proof of the cluster secret, and a
/// pair of fresh session keys for the frames that follow (<see cref="RingFrameCipher"/>).
/// <code>
/// client → server  hello_c  = "MOCORNG2" role=1 run-id generation rank world-size protection nonce_c eph_c
/// server → client  hello_s  = "MOCORNG2" role=2 run-id generation rank world-size protection nonce_s eph_s proof_s
/// client → server  finish_c = verdict_c proof_c
/// server → client  verdict_s
///
///   th      = SHA-256(hello_c ‖ hello_s without proof_s)
///   prk     = HKDF-Extract(salt = "moco-ring/v2", secret ‖ ECDH-P256(eph_c, eph_s))
///   proof_s = HKDF-Expand(prk, "moco-ring/v2 server proof" ‖ th)        (32 bytes)
///   proof_c = HKDF-Expand(prk, "moco-ring/v2 client proof" ‖ th)
///   k_c→s   = HKDF-Expand(prk, "moco-ring/v2 client to server" ‖ th)   (AES-256 keys)
///   k_s→c   = HKDF-Expand(prk, "moco-ring/v2 server to client" ‖ th)
/// </code>
/// Both sides contribute fresh randomness: a 32-byte nonce and an ephemeral P-256 key each. Every proof and key is a
/// PRF, under a key only holders of the secret can compute, of a role label and the hash of both hellos (both nonces,
/// both ephemeral keys, the run id, generation, ranks, world size and protection), so:
/// <list type="bullet">
/// <item>The secret never travels, and a recorded transcript replayed to either side fails: the other side's fresh
/// nonce and key change <c>th</c>, so the recorded proof no longer verifies.</item>
/// <item>No proof can be replayed or reused. The server proves first, over a transcript that holds its own fresh nonce
/// and key: a stranger who sends hellos of its choosing only ever gets proofs of transcripts that are new each time, never
/// of a transcript it chose in full, and never a client proof (the role labels differ). The client proves only to a server
/// that proved first. Proofs are compared in fixed time. A stranger who reaches the port does learn a server proof over
/// an exchange whose Diffie-Hellman half it chose, so it could test guesses of <c>secret</c> against it offline: this is
/// not a PAKE. Two things close that door: the secret must carry at least 128 bits (the host refuses a weaker one), and in
/// a cluster <c>secret</c> here is not the text of MOCO_CLUSTER_SECRET but that text bound to the cluster certificate's
/// private key (the host's <c>ClusterCertificate.BindSecret</c>), which a stranger does not hold.</item>
/// <item>A man in the middle who relays both hellos cannot compute the session keys (they need the secret), and one
/// who substitutes its own ephemeral keys changes <c>th</c>, which fails both proofs. Because the keys come from an
/// ephemeral Diffie-Hellman exchange, recorded traffic stays sealed even if the secret leaks later.</item>
/// </list>
/// Each side checks the other's run id, generation, world size, rank and protection, and a verdict other than
/// <see cref="HandshakeRefusal.None"/> tells the other side why it was refused, so both sides can name the reason. A
/// hello of another protocol version (an older MoCo release's "MOCORNG1") is refused by name. The caller bounds the
/// whole exchange in time (it closes the connection at its deadline).
/// </summary>
internal static class RingHandshake
{
    /// <summary>The protocol version, the last character of the magic.</summary>
    public const int Version = 2;

    /// <summary>The bytes of the client's second message: its verdict and its proof.</summary>
    public const int FinishBytes = 1 + ProofBytes;

    private const int NonceBytes = 32;
    private const int PublicKeyBytes = 1 + 2 * CoordinateBytes; // an uncompressed P-256 point: 0x04 ‖ X ‖ Y
    private const int CoordinateBytes = 32;
    private const int ProofBytes = 32;
    private const int KeyBytes = 32;
    private const int HashBytes = 32;
    private const byte ClientRole = 1;
    private const byte ServerRole = 2;
    private const int PrefixBytes = 8 + 1 + 2; // magic, role, run id length
    private const int FixedTailBytes = 8 + 4 + 4 + 1 + NonceBytes + PublicKeyBytes; // generation, rank, world size, protection, nonce, ephemeral key

    private static ReadOnlySpan<byte> Magic => "MOCORNG2"u8;

    private static ReadOnlySpan<byte> MagicStem => "MOCORNG"u8;

    private static ReadOnlySpan<byte> ExtractSalt => "moco-ring/v2"u8;

    private static ReadOnlySpan<byte> ServerProofLabel => "moco-ring/v2 server proof"u8;

    private static ReadOnlySpan<byte> ClientProofLabel => "moco-ring/v2 client proof"u8;

    private static ReadOnlySpan<byte> ClientToServerLabel => "moco-ring/v2 client to server"u8;

    private static ReadOnlySpan<byte> ServerToClientLabel => "moco-ring/v2 server to client"u8;

    /// <summary>The bytes of a client's hello for <paramref name="runId"/>: with <see cref="FinishBytes"/>, all the client sends before its first frame.</summary>
    public static int ClientHelloBytes(string runId) => PrefixBytes + Encoding.UTF8.GetByteCount(runId) + FixedTailBytes;

    /// <summary>Runs the connecting side's handshake and returns the verified peer and the session keys.</summary>
    /// <param name="stream">The fresh connection.</param>
    /// <param name="me">This rank's identity.</param>
    /// <param name="expectedPeerRank">The rank this side expects to reach (its successor).</param>
    /// <param name="secret">The cluster's shared secret.</param>
    /// <param name="peerAddress">The peer's address, for messages.</param>
    /// <exception cref="RingHandshakeException">Refused by either side (with a reason), or broken off.</exception>
    public static RingSession RunClient(Stream stream, RingIdentity me, int expectedPeerRank, ReadOnlySpan<byte> secret, string peerAddress)
    {
        using var ephemeral = ECDiffieHellman.Create(ECCurve.NamedCurves.nistP256);
        byte[] helloC = EncodeHello(me, ClientRole, ephemeral);
        Write(stream, helloC, peerAddress);
        var (peer, helloS) = ReadHello(stream, ServerRole, peerAddress);
        var bodyS = helloS.AsSpan(0, helloS.Length - ProofBytes);

        Span<byte> transcript = stackalloc byte[HashBytes];
        Span<byte> prk = stackalloc byte[HashBytes];
        Span<byte> expectedProofS = stackalloc byte[ProofBytes];
        try
        {
            TranscriptHash(helloC, bodyS, transcript);
            Extract(ephemeral, PublicKeyOf(bodyS), secret, prk, peerAddress);
            Expand(prk, ServerProofLabel, transcript, expectedProofS);
            var verdict = CryptographicOperations.FixedTimeEquals(helloS.AsSpan(bodyS.Length), expectedProofS)
                ? Check(me, peer, expectedPeerRank)
                : HandshakeRefusal.WrongSecret;

            byte[] finish = new byte[FinishBytes];
            finish[0] = (byte)verdict;
            if (verdict == HandshakeRefusal.None)
            {
                // prove the secret only to a peer that proved it first
                Expand(prk, ClientProofLabel, transcript, finish.AsSpan(1));
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
            return new RingSession(peer, Key(prk, ClientToServerLabel, transcript), Key(prk, ServerToClientLabel, transcript));
        }
        finally
        {
            CryptographicOperations.ZeroMemory(prk);
        }
    }

    /// <summary>Runs the accepting side's handshake and returns the verified peer and the session keys.</summary>
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
    public static RingSession RunServer(Stream stream, RingIdentity me, int expectedPeerRank, ReadOnlySpan<byte> secret, string peerAddress, Func<bool> claim)
    {
        var (peer, helloC) = ReadHello(stream, ClientRole, peerAddress);
        using var ephemeral = ECDiffieHellman.Create(ECCurve.NamedCurves.nistP256);
        byte[] helloS = EncodeHello(me, ServerRole, ephemeral, ProofBytes);
        var bodyS = helloS.AsSpan(0, helloS.Length - ProofBytes);

        Span<byte> transcript = stackalloc byte[HashBytes];
        Span<byte> prk = stackalloc byte[HashBytes];
        Span<byte> expectedProofC = stackalloc byte[ProofBytes];
        try
        {
            TranscriptHash(helloC, bodyS, transcript);
            Extract(ephemeral, PublicKeyOf(helloC), secret, prk, peerAddress);
            // the transcript holds this side's fresh nonce and key: no proof of a transcript the peer chose in full
            Expand(prk, ServerProofLabel, transcript, helloS.AsSpan(bodyS.Length));
            Write(stream, helloS, peerAddress);

            byte[] finish = new byte[FinishBytes];
            Read(stream, finish, peerAddress);
            var clientVerdict = (HandshakeRefusal)finish[0];
            if (clientVerdict != HandshakeRefusal.None)
            {
                throw Refused(clientVerdict, me, peer, peerAddress, expectedPeerRank, byPeer: true);
            }

            Expand(prk, ClientProofLabel, transcript, expectedProofC);
            var verdict = CryptographicOperations.FixedTimeEquals(finish.AsSpan(1), expectedProofC)
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
            return new RingSession(peer, Key(prk, ServerToClientLabel, transcript), Key(prk, ClientToServerLabel, transcript));
        }
        finally
        {
            CryptographicOperations.ZeroMemory(prk);
        }
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
        if (peer.Protection != me.Protection)
        {
            return HandshakeRefusal.OtherProtection;
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
                $"the peer at {address} (claiming rank {peer.Rank}) failed to prove it holds the cluster secret: a wrong secret, or a replayed, relayed or foreign handshake",
            HandshakeRefusal.OtherRun =>
                $"{who} belongs to run '{peer.RunId}', this rank to run '{me.RunId}'",
            HandshakeRefusal.OtherGeneration =>
                $"{who} is at generation {peer.Generation}, this rank at generation {me.Generation} ({(peer.Generation < me.Generation ? "the peer is stale" : "this rank is stale")})",
            HandshakeRefusal.OtherWorldSize =>
                $"{who} expects a world of {peer.WorldSize} ranks, this rank a world of {me.WorldSize}",
            HandshakeRefusal.OtherProtection =>
                $"{who} protects the data plane with {peer.Protection.Name()}, this rank with {me.Protection.Name()}: every node of a run must set the same {DataPlaneProtections.SettingKey}",
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

    private static byte[] EncodeHello(RingIdentity me, byte role, ECDiffieHellman ephemeral, int trailingBytes = 0)
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
        tail[16] = (byte)me.Protection;
        RandomNumberGenerator.Fill(tail.Slice(17, NonceBytes));
        var point = ephemeral.ExportParameters(includePrivateParameters: false).Q;
        var key = tail.Slice(17 + NonceBytes, PublicKeyBytes);
        key[0] = 0x04;
        point.X.CopyTo(key[1..]);
        point.Y.CopyTo(key[(1 + CoordinateBytes)..]);
        return hello;
    }

    /// <summary>The ephemeral public key inside a hello (without a trailing proof).</summary>
    private static ReadOnlySpan<byte> PublicKeyOf(ReadOnlySpan<byte> hello) => hello[^PublicKeyBytes..];

    private static (RingIdentity Peer, byte[] Bytes) ReadHello(Stream stream, byte role, string peerAddress)
    {
        byte[] prefix = new byte[PrefixBytes];
        Read(stream, prefix, peerAddress);
        if (!prefix.AsSpan(0, 8).SequenceEqual(Magic))
        {
            if (prefix.AsSpan(0, MagicStem.Length).SequenceEqual(MagicStem))
            {
                char version = (char)prefix[7];
                string theirs = char.IsAsciiDigit(version) ? $"version {version} (its hello starts 'MOCORNG{version}')" : $"an unknown version (byte 0x{prefix[7]:X2} after 'MOCORNG')";
                throw new RingHandshakeException(
                    $"refused: the peer at {peerAddress} speaks ring protocol {theirs}, this rank version {Version} ('MOCORNG{Version}', " +
                    "sealed frames): every node of a run must run the same MoCo release", HandshakeRefusal.OtherVersion);
            }
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
        int trailing = role == ServerRole ? ProofBytes : 0;
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
            BinaryPrimitives.ReadInt32BigEndian(tail[12..]),
            (DataPlaneProtection)tail[16]);
        return (peer, hello);
    }

    private static void TranscriptHash(ReadOnlySpan<byte> helloC, ReadOnlySpan<byte> bodyS, Span<byte> destination)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        hash.AppendData(helloC);
        hash.AppendData(bodyS);
        hash.GetHashAndReset(destination);
    }

    /// <summary>prk = HKDF-Extract(salt, secret ‖ the ephemeral Diffie-Hellman secret with <paramref name="theirs"/>).</summary>
    /// <exception cref="RingHandshakeException"><paramref name="theirs"/> is not a point of P-256.</exception>
    private static void Extract(ECDiffieHellman mine, ReadOnlySpan<byte> theirs, ReadOnlySpan<byte> secret, Span<byte> prk, string peerAddress)
    {
        byte[]? shared = null;
        byte[]? material = null;
        try
        {
            if (theirs[0] != 0x04)
            {
                throw new CryptographicException("not an uncompressed point");
            }
            using var peerKey = ECDiffieHellman.Create(new ECParameters
            {
                Curve = ECCurve.NamedCurves.nistP256,
                Q = new ECPoint { X = theirs.Slice(1, CoordinateBytes).ToArray(), Y = theirs.Slice(1 + CoordinateBytes, CoordinateBytes).ToArray() },
            });
            shared = mine.DeriveRawSecretAgreement(peerKey.PublicKey);
            material = new byte[secret.Length + shared.Length];
            secret.CopyTo(material);
            shared.CopyTo(material, secret.Length);
            HKDF.Extract(HashAlgorithmName.SHA256, material, ExtractSalt, prk);
        }
        catch (CryptographicException e)
        {
            throw new RingHandshakeException($"the peer at {peerAddress} sent an ephemeral key that is not a point of P-256 ({e.Message})", inner: e);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(shared);
            CryptographicOperations.ZeroMemory(material);
        }
    }

    /// <summary>HKDF-Expand(prk, label ‖ transcript) into <paramref name="destination"/>.</summary>
    private static void Expand(ReadOnlySpan<byte> prk, ReadOnlySpan<byte> label, ReadOnlySpan<byte> transcript, Span<byte> destination)
    {
        Span<byte> info = stackalloc byte[64];
        label.CopyTo(info);
        transcript.CopyTo(info[label.Length..]);
        HKDF.Expand(HashAlgorithmName.SHA256, prk, destination, info[..(label.Length + transcript.Length)]);
    }

    private static byte[] Key(ReadOnlySpan<byte> prk, ReadOnlySpan<byte> label, ReadOnlySpan<byte> transcript)
    {
        byte[] key = new byte[KeyBytes];
        Expand(prk, label, transcript, key);
        return key;
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
