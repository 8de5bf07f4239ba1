using System.Globalization;
using System.Text.Json;
using Akka.Actor;
using Akka.Actor.Setup;
using Akka.Configuration;
using Akka.Remote.Transport.DotNetty;
using MoCo.Actors.Persistence;
using MoCo.Actors.Serialization;
using MoCo.Host.Hosting;
using Xunit.Abstractions;

namespace MoCo.Host.Tests.MultiProcess;

/// <summary>
/// A trainer started as a cluster (port, secret, certificate) and strangers that try every message type of ours on every
/// actor of it: without the certificate they cannot associate (TLS, pinned); with the certificate but without the secret
/// they can associate and even join, but every message is refused (no JSON, journal types only through the journal's
/// allow-list, wire types only with the cluster's HMAC), and the member is downed within the proof timeout. The run
/// goes on and ends as an undisturbed run does.
/// </summary>
public sealed class SecurityTests(ITestOutputHelper output) : IDisposable
{
    private const string Secret = "security-test-secret-0123456789";
    private static readonly TimeSpan Bound = TimeSpan.FromMinutes(3);
    private readonly MocoProcessGroup _processes = new(output, "moco-security-");

    public void Dispose() => _processes.Dispose();

    [Fact]
    public async Task Strangers_without_the_certificate_or_without_the_secret_must_not_get_a_single_message_accepted()
    {
        int port = MocoProcess.FreePort();
        var runDir = Path.Combine(_processes.Directory, "run");
        // 40 epochs of 8 tiny steps (about 30 s on 2 cores): the run must outlast both strangers and the insider's 10 s
        // proof time; 3 epochs finished first on a quiet machine
        var train = _processes.Start("train", ["train", "--data", "synthetic:256", "--epochs", "40", "--batch-size", "32", "--moco-k", "64", "--width", "4",
            "--moco-dim", "16", "--bn-splits", "4", "--knn-every", "0", "--knn-at-start", "false", "--threads", "1", "--loader-threads", "1",
            "--port", port.ToString(CultureInfo.InvariantCulture), "--run-dir", runDir], ("MOCO_CLUSTER_SECRET", Secret));
        await train.WaitForAsync("1 worker\\(s\\), generation 1", Bound);
        string trainer = $"akka.ssl.tcp://moco@127.0.0.1:{port}";
        var messages = MessageCatalog.Every();
        output.WriteLine($"{messages.Count} message types: {string.Join(", ", messages.Select(m => m.GetType().Name))}");

        // 1. no certificate at all (plain TCP), and a certificate of its own (TLS, pinning itself): no association
        using (var plain = Stranger(certificate: null, pin: null, joinAs: null))
        {
            await SendEverything(plain, $"akka.tcp://moco@127.0.0.1:{port}", messages);
        }

        var (strangerPem, strangerCertificate) = ClusterCertificate.Create("stranger", 1);
        var strangerPath = Path.Combine(_processes.Directory, "stranger.pem");
        await File.WriteAllTextAsync(strangerPath, strangerPem);
        using (var own = Stranger(X509(strangerPath), strangerCertificate.Thumbprint, joinAs: null))
        {
            await SendEverything(own, trainer, messages);
        }

        await train.WaitForAsync("Certificate pinning failed|Rejected incoming connection|TLS handshake failed", TimeSpan.FromSeconds(30));

        // 2. the cluster's certificate but not its secret: it associates, joins as a worker, and sends every message
        // through every serializer it could choose; it is downed when its proof time is up
        var cluster = X509(_processes.Certificate);
        using (var insider = Stranger(cluster, cluster.Thumbprint, joinAs: trainer))
        {
            await SendEverything(insider, trainer, messages);
            await train.WaitForAsync("did not prove it holds the cluster's secret within", Bound);
        }

        // the 40-epoch run takes about 30 s on 2 quiet cores; beside the other test assemblies it took over 3 minutes once
        Assert.Equal(0, await train.WaitForExitAsync(Bound * 2));
        Assert.Contains("done: 320 steps", train.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("interrupt requested", train.Output, StringComparison.Ordinal);
        Assert.Matches("refused a message|accepts no JSON|Unsafe Type|HMAC", train.Output);
        var history = _processes.History(runDir);
        Assert.Equal("completed", history.GetProperty("status").GetString(), ignoreCase: true);
        Assert.Equal(320, history.GetProperty("lastStep").GetInt64());
        Assert.Equal(40, history.GetProperty("epochs").EnumerateArray().Count());
        Assert.Single(history.GetProperty("generations").EnumerateArray());
        Assert.False(Directory.Exists("/tmp/intruder"), "a message made the trainer write where it said");
    }

    private static System.Security.Cryptography.X509Certificates.X509Certificate2 X509(string path) =>
        System.Security.Cryptography.X509Certificates.X509Certificate2.CreateFromPemFile(path);

    /// <summary>
    /// Sends each message three ways to every user actor of the trainer (wildcard selections: the director, its workers,
    /// the checkpointer, the recorder singleton and its proxy): as Akka's JSON, through an unrestricted Hyperion (the
    /// journal serializer's id) and through the wire serializer under a key that is not the cluster's.
    /// </summary>
    private async Task SendEverything(ActorSystem[] systems, string trainer, IReadOnlyList<object> messages)
    {
        foreach (var system in systems)
        {
            foreach (var path in new[] { "/user/*", "/user/*/*", "/user/*/*/*", "/system/*" })
            {
                var selection = system.ActorSelection(trainer + path);
                foreach (var message in messages)
                {
                    selection.Tell(message, ActorRefs.NoSender);
                }
            }
        }

        await Task.Delay(TimeSpan.FromSeconds(3));
        output.WriteLine($"sent {messages.Count} messages x 4 paths x {systems.Length} serializers to {trainer}");
    }

    private Task SendEverything(StrangerSystems strangers, string trainer, IReadOnlyList<object> messages) => SendEverything(strangers.Systems, trainer, messages);

    /// <summary>Three actor systems of the stranger, one per serializer it may pick for our types.</summary>
    private static StrangerSystems Stranger(System.Security.Cryptography.X509Certificates.X509Certificate2? certificate, string? pin, string? joinAs)
    {
        var bindings = new[]
        {
            // Akka's default for types without a binding: JSON
            "",
            // an unrestricted Hyperion under the id our journal serializer has
            """
            akka.actor.serializers.hyperion = "Akka.Serialization.HyperionSerializer, Akka.Serialization.Hyperion"
            akka.actor.serialization-bindings { "MoCo.Actors.IMocoMessage, MoCo.Actors" = hyperion }
            """,
            // our wire serializer with a key that is not the cluster's (no allow-list on the sender's side)
            $$"""
            akka.actor.serializers.moco-wire = "MoCo.Actors.Serialization.MocoWireSerializer, MoCo.Actors"
            akka.actor.serialization-bindings { "MoCo.Actors.IMocoMessage, MoCo.Actors" = moco-wire }
            akka.actor.serialization-settings.moco-wire.key = "{{Convert.ToBase64String(new byte[MocoWireSerializer.KeyBytes])}}"
            """,
        };
        var systems = bindings.Select((binding, i) =>
        {
            var hocon = $$"""
                akka.loglevel = WARNING
                akka.actor.provider = {{(joinAs is not null && i == 0 ? "cluster" : "remote")}}
                akka.cluster.roles = [worker]
                akka.remote.dot-netty.tcp { hostname = 127.0.0.1, port = 0, enable-ssl = {{(certificate is null ? "false" : "true")}} }
                {{binding}}
                """;
            var setup = BootstrapSetup.Create().WithConfig(ConfigurationFactory.ParseString(hocon));
            var system = certificate is null
                ? ActorSystem.Create("moco", setup)
                : ActorSystem.Create("moco", setup.And(new DotNettySslSetup(certificate, false, true, CertificateValidation.PinnedCertificate([pin!]))));
            if (joinAs is not null && i == 0)
            {
                Akka.Cluster.Cluster.Get(system).Join(Address.Parse(joinAs));
            }

            return system;
        }).ToArray();
        return new StrangerSystems(systems);
    }

    private sealed class StrangerSystems(ActorSystem[] systems) : IDisposable
    {
        public ActorSystem[] Systems { get; } = systems;

        public void Dispose()
        {
            Task.WaitAll(Systems.Select(s => s.Terminate()).ToArray(), TimeSpan.FromSeconds(20));
        }
    }
}
