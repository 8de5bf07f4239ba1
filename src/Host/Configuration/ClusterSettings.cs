using System.Globalization;

namespace MoCo.Host.Configuration;

/// <summary>The <c>moco.cluster</c> section: how this process takes part in the Akka.NET cluster that runs a run.</summary>
public sealed record ClusterSettings
{
    /// <summary>The actor system's name; every node of a cluster must use the same.</summary>
    public const string SystemName = "moco";

    /// <summary>The cluster role of processes that host workers (and the run recorder singleton).</summary>
    public const string TrainerRole = MoCo.Actors.Training.TrainingDirectorActor.TrainerRole;

    /// <summary>The address remoting binds to.</summary>
    public string Hostname { get; init; } = "127.0.0.1";

    /// <summary>The address other nodes use to reach this one, when it differs from <see cref="Hostname"/> (a pod IP, NAT); empty for the same.</summary>
    public string PublicHostname { get; init; } = "";

    /// <summary>The remoting port; 0 picks a free one (a single node needs no fixed port).</summary>
    public int Port { get; init; }

    /// <summary>Comma-separated <c>host:port</c> of the nodes to join; empty: this node forms a new cluster by joining itself.</summary>
    public string SeedNodes { get; init; } = "";

    /// <summary>Workers (cluster members offering devices) that must be Up before a run starts.</summary>
    public int MinWorkers { get; init; } = 1;

    /// <summary>TCP port of the data plane's listener (the ring) on this node; 0 picks a free one per generation.</summary>
    public int DataPlanePort { get; init; }

    /// <summary>
    /// What protects the TCP ring's bytes after each connection's handshake: <c>aes-gcm</c> (the default; every header
    /// and segment sealed with AES-256-GCM under per-connection keys) or <c>none</c> (in the clear, for benchmarking
    /// only: a warning is printed). Every node of a run must set the same; <see cref="Protection"/> reads it.
    /// </summary>
    public string DataPlaneProtection { get; init; } = "aes-gcm";

    /// <summary>
    /// The cluster's shared secret (at least <see cref="MinSecretBits"/> bits by <see cref="EstimatedSecretBits"/>; from <c>MOCO_CLUSTER_SECRET</c>, never a file that is
    /// committed): the data plane's connections prove they hold it. Empty: a random secret for this process alone,
    /// enough for a single node.
    /// </summary>
    public string Secret { get; init; } = "";

    /// <summary>
    /// A PEM file with the cluster's certificate and private key (from <c>MOCO_CLUSTER_CERTIFICATE</c>; <c>moco cert</c>
    /// makes one): remoting then runs over TLS, every node presents it and accepts only peers that present the same
    /// (mutual authentication pinned to its thumbprint). Required when other processes may take part or remoting binds
    /// to more than the loopback interface; empty: plain TCP on loopback, for a single process.
    /// </summary>
    public string Certificate { get; init; } = "";

    /// <summary>Whether remoting runs over TLS (a certificate is set).</summary>
    public bool Tls => !string.IsNullOrWhiteSpace(Certificate);

    /// <summary>The scheme of this cluster's addresses: <c>akka.ssl.tcp</c> over TLS, else <c>akka.tcp</c>.</summary>
    public string Scheme => Tls ? "akka.ssl.tcp" : "akka.tcp";

    /// <summary>
    /// The least strength a cluster secret must show, in bits (<see cref="EstimatedSecretBits"/>): a guess then costs 2^128
    /// trials, whatever an attacker recorded (the wire's HMACs, the membership proofs, the ring's handshakes).
    /// </summary>
    public const int MinSecretBits = 128;

    /// <summary>
    /// An upper estimate of a secret's strength: its length times log2 of the alphabet its characters are drawn from (16
    /// when every character is a hexadecimal digit; else 26 lower-case, 26 upper-case, 10 digits and 33 others, summed
    /// over the classes it uses); 0 for a degenerate secret of fewer than 8 distinct characters. A random secret of that
    /// alphabet reaches it; a chosen one (a word repeated, a phrase) is weaker than it says, so the rule catches short and
    /// degenerate secrets but cannot vouch for a chosen one: make secrets with a random generator.
    /// </summary>
    /// <param name="secret">The secret's text.</param>
    public static double EstimatedSecretBits(string secret) =>
        secret.Distinct().Count() < 8 ? 0 : secret.Length * Math.Log2(SecretAlphabet(secret));

    /// <summary>The size of the alphabet <see cref="EstimatedSecretBits"/> assumes for <paramref name="secret"/>.</summary>
    private static int SecretAlphabet(string secret)
    {
        if (secret.All(Uri.IsHexDigit))
        {
            return secret.All(char.IsAsciiDigit) ? 10 : 16;
        }

        return (secret.Any(char.IsAsciiLetterLower) ? 26 : 0) + (secret.Any(char.IsAsciiLetterUpper) ? 26 : 0)
            + (secret.Any(char.IsAsciiDigit) ? 10 : 0) + (secret.Any(c => !char.IsAsciiLetterOrDigit(c)) ? 33 : 0);
    }

    /// <summary>Throws <see cref="ConfigurationError"/> naming the first unusable key.</summary>
    /// <returns>This.</returns>
    public ClusterSettings Validate()
    {
        if (Port is < 0 or > 65535)
        {
            throw new ConfigurationError($"moco.cluster.port must be in 0..65535, not {Port}");
        }

        if (string.IsNullOrWhiteSpace(Hostname))
        {
            throw new ConfigurationError("moco.cluster.hostname must not be empty");
        }

        if (MinWorkers < 1)
        {
            throw new ConfigurationError($"moco.cluster.min-workers must be at least 1, not {MinWorkers}");
        }

        if (DataPlanePort is < 0 or > 65535)
        {
            throw new ConfigurationError($"moco.cluster.data-plane-port must be in 0..65535, not {DataPlanePort}");
        }

        _ = Protection();

        if (Secret.StartsWith("CHANGE-ME", StringComparison.Ordinal))
        {
            throw new ConfigurationError("moco.cluster.secret is still the placeholder of k8s/base/secrets.env; set a real secret (e.g. `openssl rand -hex 32`)");
        }

        if (Secret.Length > 0 && EstimatedSecretBits(Secret) < MinSecretBits)
        {
            throw new ConfigurationError($"moco.cluster.secret is too weak: about {EstimatedSecretBits(Secret):F0} bits ({Secret.Length} characters over an alphabet of "
                + $"{SecretAlphabet(Secret)}), at least {MinSecretBits} are needed, so that a recorded proof cannot be matched by guessing; use e.g. `openssl rand -hex 32`");
        }

        _ = SeedAddresses();
        return this;
    }

    /// <summary>
    /// Throws <see cref="ConfigurationError"/> unless this process can let others in safely: a process that other
    /// processes may join (<paramref name="multiNode"/>) or that binds remoting beyond loopback needs the cluster's
    /// secret (which authenticates the run's messages and the data plane) and its certificate (TLS for remoting).
    /// </summary>
    /// <param name="multiNode">Whether other processes take part.</param>
    /// <returns>This.</returns>
    public ClusterSettings RequireCredentials(bool multiNode)
    {
        bool exposed = !Hosting.ClusterCertificate.IsLoopback(Hostname);
        if (!multiNode && !exposed)
        {
            return this;
        }

        string why = multiNode ? "a run of several processes" : $"remoting on {Hostname} (beyond loopback)";
        if (string.IsNullOrEmpty(Secret))
        {
            throw new ConfigurationError($"{why} needs the cluster's shared secret on every node: set MOCO_CLUSTER_SECRET (random, at least 128 bits: e.g. `openssl rand -hex 32`)");
        }

        if (!Tls)
        {
            throw new ConfigurationError($"{why} needs the cluster's certificate on every node: make one with `moco cert --out cluster.pem`, give the file to every node "
                + $"and set {Hosting.ClusterCertificate.Variable}=/path/to/cluster.pem (remoting then runs over TLS and refuses any process without it)");
        }

        return this;
    }

    /// <summary>The data plane's protection, read from <see cref="DataPlaneProtection"/>.</summary>
    /// <exception cref="ConfigurationError">The value is neither <c>aes-gcm</c> nor <c>none</c> (the message names the key).</exception>
    public Actors.Collectives.DataPlaneProtection Protection()
    {
        try
        {
            return Actors.Collectives.DataPlaneProtections.Parse(DataPlaneProtection);
        }
        catch (FormatException e)
        {
            throw new ConfigurationError(e.Message);
        }
    }

    /// <summary>
    /// The warning to print at start-up when the data plane is unprotected (<c>none</c>), or null. Only for benchmarks:
    /// anyone on the path between nodes can read and alter the gradients and weights.
    /// </summary>
    public string? ProtectionWarning() => Protection() == Actors.Collectives.DataPlaneProtection.None
        ? $"warning: {Actors.Collectives.DataPlaneProtections.SettingKey} = none: the TCP ring's tensors travel in the clear with no integrity check "
            + "(peers are still authenticated); anyone on the path can read or alter gradients and weights. Use it only to benchmark; the default is aes-gcm"
        : null;

    /// <summary>The host other nodes reach this one at.</summary>
    public string PublicHostnameOrHostname() => string.IsNullOrWhiteSpace(PublicHostname) ? Hostname : PublicHostname;

    /// <summary>The seed nodes as Akka addresses (<c>akka.tcp://moco@host:port</c>, <c>akka.ssl.tcp://...</c> over TLS).</summary>
    public IReadOnlyList<string> SeedAddresses()
    {
        var seeds = new List<string>();
        foreach (var part in SeedNodes.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            int colon = part.LastIndexOf(':');
            if (colon <= 0 || !int.TryParse(part[(colon + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out int port) || port is < 1 or > 65535)
            {
                throw new ConfigurationError($"moco.cluster.seed-nodes: '{part}' is not host:port");
            }

            seeds.Add($"{Scheme}://{SystemName}@{part[..colon]}:{port}");
        }

        return seeds;
    }
}
