using Akka.Configuration;
using Akka.Discovery.KubernetesApi;
using Akka.Management.Dsl;

namespace MoCo.Deploy.Tests;

/// <summary>The reference configurations of the Akka packages the host runs with (what a key in hocon/ must exist in).</summary>
public static class AkkaReference
{
    /// <summary>Akka.Cluster's reference.conf (it has no public accessor).</summary>
    public static Config Cluster => ConfigurationFactory.FromResource<Akka.Cluster.Cluster>("Akka.Cluster.Configuration.Cluster.conf");

    /// <summary>Akka.Remote's reference.conf.</summary>
    public static Config Remote => ConfigurationFactory.FromResource<Akka.Remote.RemoteSettings>("Akka.Remote.Configuration.Remote.conf");

    /// <summary>Akka.Management's: the HTTP server and cluster bootstrap.</summary>
    public static Config Management => AkkaManagementProvider.DefaultConfiguration();

    /// <summary>Akka.Discovery.KubernetesApi's.</summary>
    public static Config KubernetesDiscovery => Akka.Discovery.KubernetesApi.KubernetesDiscovery.DefaultConfiguration();

    /// <summary>Akka.Discovery's (the discovery method, config and aggregate discovery).</summary>
    public static Config Discovery => ConfigurationFactory.FromResource<Akka.Discovery.Discovery>("Akka.Discovery.Resources.reference.conf");

    /// <summary>Akka.Cluster.Tools' (the singleton manager and proxy, where the run coordinator lives).</summary>
    public static Config ClusterTools => Akka.Cluster.Tools.Singleton.ClusterSingletonManager.DefaultConfig();

    /// <summary>Everything above over Akka's own defaults.</summary>
    public static Config All => Management.WithFallback(ClusterTools).WithFallback(KubernetesDiscovery).WithFallback(Discovery).WithFallback(Cluster).WithFallback(Remote).WithFallback(ConfigurationFactory.Default());
}
