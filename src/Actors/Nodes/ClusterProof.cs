using System.Security.Cryptography;
using System.Text;

namespace MoCo.Actors.Nodes;

/// <summary>
/// How a node proves to the run's director that it holds the cluster's shared secret without sending it:
/// HMAC-SHA256 over the run id, the node's address and a fresh nonce of the director's. A node that cannot prove it
/// gets no workers and is downed (it can join the Akka cluster's gossip, never the run or its data plane).
/// </summary>
public static class ClusterProof
{
    /// <summary>Bytes of a nonce.</summary>
    public const int NonceBytes = 32;

    /// <summary>A fresh nonce.</summary>
    public static byte[] NewNonce() => RandomNumberGenerator.GetBytes(NonceBytes);

    /// <summary>The proof for (<paramref name="runId"/>, <paramref name="node"/>, <paramref name="nonce"/>) under <paramref name="secret"/>.</summary>
    public static byte[] Sign(ReadOnlySpan<byte> secret, string runId, string node, ReadOnlySpan<byte> nonce)
    {
        var message = Encoding.UTF8.GetBytes($"moco-offer\n{runId}\n{node}\n").Concat(nonce.ToArray()).ToArray();
        return HMACSHA256.HashData(secret, message);
    }

    /// <summary>Whether <paramref name="proof"/> is the proof for these values (constant-time comparison).</summary>
    public static bool Verify(ReadOnlySpan<byte> secret, string runId, string node, ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> proof)
    {
        return CryptographicOperations.FixedTimeEquals(Sign(secret, runId, node, nonce), proof);
    }
}
