using System.Security.Cryptography;
using MoCo.Actors.Collectives;

namespace MoCo.Actors.Training;

/// <summary>
/// How this node's workers take part in the TCP ring of a run that spans processes: where their listeners bind, the
/// address peers reach them at, and the cluster's shared secret that every connection must prove (never sent).
/// A local object, built from <c>moco.cluster</c>; never a message.
/// </summary>
/// <param name="BindAddress">The IP address the ring listeners bind (0.0.0.0 for every interface).</param>
/// <param name="AdvertisedHost">The host name or IP other nodes connect to.</param>
/// <param name="Port">The listener port; 0 picks a free one per generation.</param>
/// <param name="Secret">The cluster's key material (the secret, bound to the certificate's private key in a cluster), at least 16 bytes.</param>
public sealed record RingSettings(string BindAddress, string AdvertisedHost, int Port, ReadOnlyMemory<byte> Secret)
{
    /// <summary>Loopback with a random secret: a single process, whose workers share the secret in memory.</summary>
    public static RingSettings Loopback { get; } = new("127.0.0.1", "127.0.0.1", 0, RandomNumberGenerator.GetBytes(32));

    /// <summary>How long a rank waits for its ring neighbours to connect when a generation starts.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// What protects the ring's bytes after each handshake (<c>moco.cluster.data-plane-protection</c>): AES-256-GCM
    /// sealed frames by default; <see cref="DataPlaneProtection.None"/> only for benchmarking (the worker logs a warning).
    /// </summary>
    public DataPlaneProtection Protection { get; init; } = DataPlaneProtection.AesGcm;
}
