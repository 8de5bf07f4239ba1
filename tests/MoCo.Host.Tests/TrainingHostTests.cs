using Akka.Actor;
using Akka.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using MoCo.Host.Configuration;
using MoCo.Host.Hosting;

namespace MoCo.Host.Tests;

/// <summary>What the actor system of <c>moco train</c> is configured with, once Akka.Hosting has layered everything.</summary>
public sealed class TrainingHostTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("moco-host-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task The_trainers_system_is_a_cluster_node_with_the_presets_tuning_over_akkas_defaults()
    {
        var (preset, source) = Presets.Load("quickstart", null);
        var cluster = SettingsReader.Read<ClusterSettings>(preset, "moco.cluster", source);
        var journal = SettingsReader.Read<JournalSettings>(preset, "moco.journal", source);
        using var host = TrainingHost.Build(cluster, journal, "run-config", _dir, preset);
        await host.StartAsync();
        try
        {
            var system = host.Services.GetRequiredService<ActorSystem>();
            var config = system.Settings.Config;
            Assert.IsType<Akka.Cluster.ClusterActorRefProvider>(((ExtendedActorSystem)system).Provider);
            Assert.Equal(["trainer"], config.GetStringList("akka.cluster.roles"));
            // the preset's split-brain resolver and singleton settings win over the libraries' defaults...
            Assert.Contains("SplitBrainResolverProvider", config.GetString("akka.cluster.downing-provider-class"));
            Assert.Equal("keep-majority", config.GetString("akka.cluster.split-brain-resolver.active-strategy"));
            Assert.False(config.GetBoolean("akka.cluster.singleton-proxy.log-singleton-identification-failure"));
            // ...which are still there underneath (keys the preset does not set)
            Assert.False(string.IsNullOrEmpty(config.GetString("akka.cluster.singleton.singleton-name")));
            Assert.True(config.GetTimeSpan("akka.cluster.failure-detector.acceptable-heartbeat-pause") > TimeSpan.Zero);
            // the serializers of ours, whatever the order of the layers
            Assert.Equal("moco-wire", config.GetString("akka.actor.serialization-bindings.\"MoCo.Actors.IWireMessage, MoCo.Actors\""));
            Assert.False(config.GetBoolean("akka.actor.serialization-settings.allow-unregistered-types"));
        }
        finally
        {
            await host.StopAsync();
        }
    }
}
