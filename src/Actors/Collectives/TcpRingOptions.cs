using System.Globalization;
using System.Net;
using System.Text;

namespace MoCo.Actors.Collectives;

/// <summary>
/// Everything one rank needs to join a TCP ring of one generation: who it is, where every rank listens, which run
/// and generation the ring belongs to, the cluster's shared secret, and the time limits. Immutable; built by the
/// recorder's rendezvous once every rank has published the endpoint of its <see cref="TcpRingListener"/>.
/// </summary>
/// <param name="Rank">This rank, 0 ≤ rank &lt; <c>Endpoints.Count</c>.</param>
/// <param name="Endpoints">Where each rank listens, in rank order (an <see cref="IPEndPoint"/> or a <see cref="DnsEndPoint"/>).</param>
/// <param name="RunId">The run the ring serves; a peer of another run is refused.</param>
/// <param name="Generation">The membership generation; a peer of an older or newer generation is refused.</param>
/// <param name="Secret">
/// The cluster's shared secret. Never sent: peers prove they hold it over fresh nonces and ephemeral keys, and derive each
/// connection's session keys from it (<see cref="RingHandshake"/>).
/// </param>
public sealed record TcpRingOptions(
    int Rank,
    IReadOnlyList<EndPoint> Endpoints,
    string RunId,
    long Generation,
    ReadOnlyMemory<byte> Secret)
{
    /// <summary>The smallest secret accepted: 16 bytes (128 bits).</summary>
    public const int MinSecretBytes = 16;

    /// <summary>The longest run id, in UTF-8 bytes, that fits a handshake.</summary>
    public const int MaxRunIdBytes = 256;

    /// <summary>
    /// The default segment size, from <c>moco-bench allreduce --chunks ...</c> (bench/README.md) with 2 and 3 local
    /// processes and 1..64 MiB tensors: 64..256 KiB segments were slower and cost more CPU per call (more system
    /// calls and wake-ups per byte); 512 KiB..4 MiB were within noise of each other, and 512 KiB, the smallest of
    /// them, keeps the pipeline finest for small tensors (a block travels in several segments sooner).
    /// </summary>
    public const int DefaultChunkBytes = 512 * 1024;

    /// <summary>How long <see cref="TcpRingCollective.Connect"/> keeps trying to reach the successor and waits for the predecessor (peers start at different moments).</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// The longest one collective call may take, waiting for late peers included; past it the call throws
    /// <see cref="MoCo.Model.Collectives.CollectiveException"/> naming the peer it was waiting for.
    /// </summary>
    public TimeSpan OperationTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>How long an accepted connection has to complete its handshake before it is dropped (a stranger that sends nothing).</summary>
    public TimeSpan HandshakeTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>The size of the segments that travel the ring back to back, so that sending, receiving and reducing overlap.</summary>
    public int ChunkBytes { get; init; } = DefaultChunkBytes;

    /// <summary>
    /// What protects the bytes after each connection's handshake: <see cref="DataPlaneProtection.AesGcm"/> (the default)
    /// seals every header and segment; <see cref="DataPlaneProtection.None"/> sends them in the clear, for benchmarking
    /// only. Every rank of a ring must choose the same (the handshake refuses a peer that does not).
    /// </summary>
    public DataPlaneProtection Protection { get; init; } = DataPlaneProtection.AesGcm;

    /// <summary>The number of ranks.</summary>
    public int WorldSize => Endpoints.Count;

    /// <summary>Parses <c>host:port</c> (or <c>[v6]:port</c>) into an endpoint; a literal address gives an <see cref="IPEndPoint"/>, a name a <see cref="DnsEndPoint"/>.</summary>
    /// <exception cref="FormatException">The text is not <c>host:port</c> with a port in 1..65535.</exception>
    public static EndPoint ParseEndpoint(string text)
    {
        int colon = text.LastIndexOf(':');
        if (colon <= 0 || colon == text.Length - 1
            || !int.TryParse(text.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out int port)
            || port is < 1 or > IPEndPoint.MaxPort)
        {
            throw new FormatException($"'{text}' is not host:port with a port in 1..65535");
        }
        string host = text[..colon];
        if (host.StartsWith('[') && host.EndsWith(']'))
        {
            host = host[1..^1];
        }
        return IPAddress.TryParse(host, out var address) ? new IPEndPoint(address, port) : new DnsEndPoint(host, port);
    }

    /// <summary>Throws when the options cannot form a ring.</summary>
    /// <exception cref="ArgumentException">Names the first problem.</exception>
    public void Validate()
    {
        if (Endpoints is null || Endpoints.Count == 0)
        {
            throw new ArgumentException("a ring needs the endpoint of at least one rank");
        }
        if (Rank < 0 || Rank >= Endpoints.Count)
        {
            throw new ArgumentException($"rank {Rank} is outside a world of {Endpoints.Count}");
        }
        for (int r = 0; r < Endpoints.Count; r++)
        {
            if (Endpoints[r] is not (IPEndPoint or DnsEndPoint))
            {
                throw new ArgumentException($"the endpoint of rank {r} must be an IP or DNS endpoint, not {Endpoints[r]?.GetType().Name ?? "null"}");
            }
        }
        if (string.IsNullOrEmpty(RunId) || Encoding.UTF8.GetByteCount(RunId) > MaxRunIdBytes)
        {
            throw new ArgumentException($"the run id must have 1..{MaxRunIdBytes} UTF-8 bytes");
        }
        if (Secret.Length < MinSecretBytes)
        {
            throw new ArgumentException($"the cluster secret has {Secret.Length} bytes; at least {MinSecretBytes} are needed");
        }
        if (ConnectTimeout <= TimeSpan.Zero || OperationTimeout <= TimeSpan.Zero || HandshakeTimeout <= TimeSpan.Zero)
        {
            throw new ArgumentException("the connect, operation and handshake timeouts must be positive");
        }
        if (ChunkBytes < 1024 || ChunkBytes > 64 * 1024 * 1024)
        {
            throw new ArgumentException($"the chunk size must be within 1 KiB..64 MiB, not {ChunkBytes} bytes");
        }
        if (Protection is not (DataPlaneProtection.AesGcm or DataPlaneProtection.None))
        {
            throw new ArgumentException($"the data plane's protection must be aes-gcm or none, not {Protection.Name()}");
        }
        if (Protection == DataPlaneProtection.AesGcm && !System.Security.Cryptography.AesGcm.IsSupported)
        {
            throw new ArgumentException("the data plane's protection is aes-gcm, but this platform's cryptography library has no AES-GCM");
        }
    }

    /// <summary>Leaves the secret out of the text (records print every property otherwise).</summary>
    private bool PrintMembers(StringBuilder builder)
    {
        builder.Append(CultureInfo.InvariantCulture, $"Rank = {Rank}, WorldSize = {WorldSize}, RunId = {RunId}, Generation = {Generation}, ");
        builder.Append(CultureInfo.InvariantCulture, $"Endpoints = [{string.Join(", ", Endpoints ?? [])}], Secret = ({Secret.Length} bytes), ");
        builder.Append(CultureInfo.InvariantCulture, $"ConnectTimeout = {ConnectTimeout}, OperationTimeout = {OperationTimeout}, HandshakeTimeout = {HandshakeTimeout}, ChunkBytes = {ChunkBytes}, ");
        builder.Append(CultureInfo.InvariantCulture, $"Protection = {Protection.Name()}");
        return true;
    }
}
