using Akka.Actor;
using Akka.Cluster;
using Akka.Cluster.Tools.Singleton;
using Akka.Configuration;
using Akka.Hosting;
using Akka.Persistence.Sql.Hosting;
using Akka.Remote.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using MoCo.Actors.Persistence;
using MoCo.Actors.Run;
using MoCo.Actors.Serialization;
using MoCo.Actors.Training;
using MoCo.Host.Configuration;
using MoCo.Host.Health;
using ClusterSettings = MoCo.Host.Configuration.ClusterSettings;

namespace MoCo.Host.Hosting;

/// <summary>
/// The Akka.Hosting wiring of a process that trains: remoting, clustering, the run journal (Akka.Persistence.Sql) and the
/// run recorder as a cluster singleton under <c>Backoff.OnStop</c>, as typed code; tuning (dispatchers,
/// serialization, split-brain resolver) comes from HOCON. Without seed nodes the process joins itself and forms a
/// one-node cluster, which is what <c>moco train</c> does by default.
/// </summary>
public static class TrainingHost
{
    /// <summary>Builds (does not start) the host of a run.</summary>
    /// <param name="cluster">Remoting and seed nodes.</param>
    /// <param name="journal">Where events go; <paramref name="runDirectory"/>'s SQLite file when no connection string is set.</param>
    /// <param name="runId">The run whose recorder the singleton hosts.</param>
    /// <param name="runDirectory">The run directory.</param>
    /// <param name="tuning">HOCON that takes precedence over the defaults (log levels, the akka.cluster section of the preset).</param>
    /// <param name="run">The run's state for the readiness probe (null: none).</param>
    public static IHost Build(ClusterSettings cluster, JournalSettings journal, string runId, string runDirectory, Config tuning, Health.RunHealth? run = null)
    {
        cluster.Validate();
        journal.Validate();
        var seeds = cluster.SeedAddresses();
        var (connectionString, provider) = JournalConnection(journal, runDirectory);
        var builder = NewBuilder();
        builder.Services.AddAkka(ClusterSettings.SystemName, (akka, _) =>
        {
            akka.AddHocon(Tuning(tuning, cluster), HoconAddMode.Prepend)
                .WithRemoting(Remoting(cluster))
                .WithActorRefProvider(ProviderSelection.Cluster.Instance)
                .AddHocon(Clustering([ClusterSettings.TrainerRole], seeds), HoconAddMode.Prepend)
                .AddHocon(ClusterDefaults, HoconAddMode.Append)
                .WithSqlPersistence(connectionString, provider)
                .WithProbes(run)
                .WithProcessLogging()
                .WithActors((system, registry) =>
                {
                    // the run recorder as a cluster singleton on the trainer role, and its proxy
                    var recorder = TrainingDirectorActor.UnderBackoff(RunRecorderActor.Props(runId, new RunRecorderSettings(journal.SnapshotEvery)), "run-recorder");
                    system.ActorOf(ClusterSingletonManager.Props(recorder, PoisonPill.Instance,
                        ClusterSingletonManagerSettings.Create(system).WithRole(ClusterSettings.TrainerRole).WithSingletonName("run-recorder")
                            .WithRemovalMargin(DirectorSingleton.RemovalMargin)), "run-recorder");
                    var proxy = system.ActorOf(ClusterSingletonProxy.Props("/user/run-recorder",
                        ClusterSingletonProxySettings.Create(system).WithRole(ClusterSettings.TrainerRole).WithSingletonName("run-recorder")), "run-recorder-proxy");
                    registry.Register<RunRecorderKey>(proxy);
                })
                .AddStartup((system, _) =>
                {
                    if (seeds.Count == 0)
                    {
                        var self = Akka.Cluster.Cluster.Get(system);
                        self.Join(self.SelfAddress);
                    }
                });
        });
        return builder.Build();
    }

    /// <summary>
    /// Builds (does not start) the host of a worker node (<c>moco node</c>): remoting and clustering with role
    /// <c>worker</c>, joining <paramref name="cluster"/>'s seed nodes; no journal and no recorder (they live on the
    /// node that runs <c>moco train</c>).
    /// </summary>
    /// <param name="cluster">Remoting and the seed nodes to join (at least one).</param>
    /// <param name="tuning">HOCON that takes precedence over the defaults.</param>
    public static IHost BuildNode(ClusterSettings cluster, Config tuning)
    {
        cluster.Validate();
        var seeds = cluster.SeedAddresses();
        if (seeds.Count == 0)
        {
            throw new ConfigurationError("moco node needs a node to join: --join HOST:PORT (or moco.cluster.seed-nodes)");
        }

        var builder = NewBuilder();
        builder.Services.AddAkka(ClusterSettings.SystemName, (akka, _) =>
        {
            akka.AddHocon(Tuning(tuning, cluster), HoconAddMode.Prepend)
                .WithRemoting(Remoting(cluster))
                .WithActorRefProvider(ProviderSelection.Cluster.Instance)
                .AddHocon(Clustering([TrainingDirectorActor.WorkerRole], seeds), HoconAddMode.Prepend)
                .AddHocon(ClusterDefaults, HoconAddMode.Append)
                .WithProbes(null)
                .WithProcessLogging();
        });
        return builder.Build();
    }

    /// <summary>
    /// This node's roles and its seed nodes, as HOCON (Akka.Cluster.Hosting would bring cluster sharding and its
    /// LightningDB store, which nothing here uses).
    /// </summary>
    private static Config Clustering(IReadOnlyList<string> roles, IReadOnlyList<string> seeds) =>
        ConfigurationFactory.ParseString($$"""
            akka.cluster.roles = [{{string.Join(", ", roles.Select(r => $"\"{r}\""))}}]
            akka.cluster.seed-nodes = [{{string.Join(", ", seeds.Select(s => $"\"{s}\""))}}]
            """);

    /// <summary>The cluster's and the singleton's defaults, under everything else (the preset tunes both).</summary>
    private static Config ClusterDefaults =>
        ClusterSingleton.DefaultConfig().WithFallback(ConfigurationFactory.FromResource<Akka.Cluster.Cluster>("Akka.Cluster.Configuration.Cluster.conf"));

    /// <summary>
    /// A host builder whose lifetime ignores signals: the commands handle SIGTERM and Ctrl-C themselves (stop at the end
    /// of a chunk; tell the director before leaving). The default console lifetime would stop the actor system under
    /// the running training instead.
    /// </summary>
    private static HostApplicationBuilder NewBuilder()
    {
        var builder = Microsoft.Extensions.Hosting.Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Services.AddSingleton<IHostLifetime, CommandLifetime>();
        builder.Services.AddHealthChecks(); // the service that runs Akka.Hosting's checks for the probes (Metrics.MetricsEndpoint)
        return builder;
    }

    /// <summary>
    /// Akka.NET 1.5.74 (net6.0 and later) takes SIGTERM itself when <c>run-by-clr-shutdown-hook</c> is on: it starts
    /// coordinated shutdown at once, under a run that is finishing its chunk (the run recorder stops first and the
    /// run ends as failed). The commands own SIGTERM: <c>moco train</c> stops at the end of the chunk, checkpoints and
    /// then stops the actor system; <c>moco node</c> leaves the cluster. So the hook is off whatever the HOCON says.
    /// </summary>
    private const string SignalsAreOurs = "akka.coordinated-shutdown.run-by-clr-shutdown-hook = off";

    /// <summary>Akka's own logging: warnings and errors only (the commands print the run's progress themselves).</summary>
    private const string QuietLogs = "akka.loglevel = WARNING\nakka.stdout-loglevel = WARNING";

    /// <summary>
    /// Akka's log events go into the process's one logging path (<see cref="Logging.ProcessLogging"/>): text or JSON
    /// lines by <c>--log-format</c>, at warning and above (the commands print the run's progress themselves).
    /// </summary>
    private static AkkaConfigurationBuilder WithProcessLogging(this AkkaConfigurationBuilder akka) =>
        akka.ConfigureLoggers(loggers =>
        {
            loggers.LogLevel = Akka.Event.LogLevel.WarningLevel;
            loggers.ClearLoggers();
            loggers.AddLoggerFactory(Logging.ProcessLogging.Factory);
        });

    /// <summary>The lifetime of a host that its command starts and stops.</summary>
    private sealed class CommandLifetime : IHostLifetime
    {
        public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }

    /// <summary>
    /// The HOCON every process of ours needs under the caller's: worker and checkpointer dispatchers, and the serializers
    /// (<see cref="RunJournal.Serialization"/>) with the message key derived from the cluster's secret, the same on every
    /// node (a random one when there is no secret: a single process).
    /// </summary>
    private static Config Tuning(Config tuning, ClusterSettings cluster)
    {
        var key = string.IsNullOrEmpty(cluster.Secret)
            ? System.Security.Cryptography.RandomNumberGenerator.GetBytes(MocoWireSerializer.KeyBytes)
            : MocoWireSerializer.DeriveKey(ClusterKeyMaterial(cluster));
        return ConfigurationFactory.ParseString(SignalsAreOurs + "\n" + QuietLogs).WithFallback(tuning).WithFallback(TrainingSystem.Dispatchers)
            .WithFallback(ConfigurationFactory.ParseString(RunJournal.Serialization(key)));
    }

    /// <summary>
    /// What every key of the cluster derives from (the wire's HMAC key, the membership proofs, the ring's handshake): the
    /// secret alone without a certificate (a single process on loopback); with the cluster's certificate, the secret bound
    /// to the certificate's private key (<see cref="ClusterCertificate.BindSecret"/>), so that a proof recorded by a
    /// stranger who reached the data plane's port is of no use for guessing the secret without that key too.
    /// </summary>
    /// <param name="cluster">The cluster settings; its secret is not empty.</param>
    public static byte[] ClusterKeyMaterial(ClusterSettings cluster)
    {
        var secret = System.Text.Encoding.UTF8.GetBytes(cluster.Secret);
        if (!cluster.Tls)
        {
            return secret;
        }

        using var certificate = ClusterCertificate.Load(cluster.Certificate);
        return ClusterCertificate.BindSecret(secret, certificate);
    }

    /// <summary>
    /// Remoting: plain TCP for a single process on loopback; with the cluster's certificate, TLS with mutual
    /// authentication pinned to the certificate's thumbprint, so that a process without it cannot associate at all
    /// (Akka logs the refused handshake: "Certificate pinning failed ... Rejected incoming connection").
    /// </summary>
    private static RemoteOptions Remoting(ClusterSettings cluster)
    {
        var options = new RemoteOptions
        {
            HostName = cluster.Hostname,
            PublicHostName = string.IsNullOrWhiteSpace(cluster.PublicHostname) ? null : cluster.PublicHostname,
            Port = cluster.Port,
        };
        if (!cluster.Tls)
        {
            return options;
        }

        var certificate = ClusterCertificate.Load(cluster.Certificate);
        options.EnableSsl = true;
        options.Ssl = new SslOptions
        {
            X509Certificate = certificate,
            // the chain of a self-signed cluster certificate cannot be built from the system's roots: the pin decides
            SuppressValidation = false,
            RequireMutualAuthentication = true,
            ValidateCertificateHostname = false,
            CustomValidator = Akka.Remote.Transport.DotNetty.CertificateValidation.PinnedCertificate([certificate.Thumbprint]),
        };
        return options;
    }

    /// <summary>
    /// The data plane of this node's workers: listeners bound where remoting binds, advertised at the public host name,
    /// on <c>data-plane-port</c>, authenticated by the cluster's secret and protected as <c>data-plane-protection</c> says. A process that may share its run with other
    /// processes needs <c>MOCO_CLUSTER_SECRET</c>; a single process gets a random one.
    /// </summary>
    /// <param name="cluster">The cluster settings.</param>
    /// <param name="multiNode">Whether other processes take part (then the secret is required).</param>
    public static RingSettings DataPlane(ClusterSettings cluster, bool multiNode)
    {
        if (string.IsNullOrEmpty(cluster.Secret))
        {
            if (multiNode)
            {
                throw new ConfigurationError("a run of several processes needs the cluster's shared secret on every node: "
                    + "set MOCO_CLUSTER_SECRET (random, at least 128 bits: e.g. `openssl rand -hex 32`)");
            }

            return RingSettings.Loopback with { Protection = cluster.Protection() };
        }

        var advertised = cluster.PublicHostnameOrHostname();
        if (advertised == "0.0.0.0")
        {
            throw new ConfigurationError("moco.cluster.hostname is 0.0.0.0: set moco.cluster.public-hostname (MOCO_CLUSTER_PUBLIC_HOSTNAME) to the address other nodes reach this one at");
        }

        return new RingSettings(cluster.Hostname, advertised, cluster.DataPlanePort, ClusterKeyMaterial(cluster))
        {
            Protection = cluster.Protection(),
        };
    }

    /// <summary>The connection string and linq2db provider of the journal.</summary>
    /// <param name="journal">The journal settings.</param>
    /// <param name="runDirectory">The run directory (for the SQLite default).</param>
    public static (string ConnectionString, string Provider) JournalConnection(JournalSettings journal, string runDirectory)
    {
        if (string.IsNullOrWhiteSpace(journal.ConnectionString))
        {
            Directory.CreateDirectory(runDirectory);
            return (RunJournal.SqliteConnectionString(Path.Combine(runDirectory, RunJournal.DatabaseFileName)), RunJournal.SqliteProvider);
        }

        if (!RunJournal.IsPostgreSqlConnectionString(journal.ConnectionString))
        {
            throw new ConfigurationError("moco.journal.connection-string is not a PostgreSQL connection string (Host=...;Database=...; or postgres://...); "
                + "leave it empty for the SQLite file in the run directory");
        }

        return (RunJournal.NormalizePostgreSqlConnectionString(journal.ConnectionString), RunJournal.PostgreSqlProvider);
    }

    /// <summary>Waits until this node is an Up member of the cluster.</summary>
    /// <param name="system">The actor system.</param>
    /// <param name="timeout">How long to wait.</param>
    /// <exception cref="ConfigurationError">The node did not come up in time (seed nodes unreachable, a port taken).</exception>
    public static void AwaitMemberUp(ActorSystem system, TimeSpan timeout)
    {
        var up = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var cluster = Akka.Cluster.Cluster.Get(system);
        cluster.RegisterOnMemberUp(() => up.TrySetResult());
        if (!up.Task.Wait(timeout))
        {
            throw new ConfigurationError($"this node ({cluster.SelfAddress}) did not become an Up member of the cluster within {timeout.TotalSeconds:F0} s; "
                + "check moco.cluster.seed-nodes and that the seed nodes are reachable");
        }
    }

    /// <summary>The registry key of the run recorder singleton's proxy.</summary>
    public sealed class RunRecorderKey
    {
    }
}
