using Akka.Configuration;

namespace MoCo.Deploy.Tests;

/// <summary>
/// The reference configurations of the Akka packages the host runs with (what a key in hocon/ must exist in). The
/// host uses neither Akka.Management nor Akka.Discovery (k8s/README.md, "Why no cluster bootstrap"), so a key of
/// theirs in hocon/ is unknown too.
/// </summary>
public static class AkkaReference
{
    /// <summary>Akka.Cluster's reference.conf (it has no public accessor); it holds the split-brain resolver's keys.</summary>
    public static Config Cluster => ConfigurationFactory.FromResource<Akka.Cluster.Cluster>("Akka.Cluster.Configuration.Cluster.conf");

    /// <summary>Akka.Remote's reference.conf.</summary>
    public static Config Remote => ConfigurationFactory.FromResource<Akka.Remote.RemoteSettings>("Akka.Remote.Configuration.Remote.conf");

    /// <summary>Akka.Cluster.Tools' (the singleton manager and proxy, where the run recorder lives).</summary>
    public static Config ClusterTools => Akka.Cluster.Tools.Singleton.ClusterSingleton.DefaultConfig();

    /// <summary>Everything above over Akka's own defaults.</summary>
    public static Config All => ClusterTools.WithFallback(Cluster).WithFallback(Remote).WithFallback(ConfigurationFactory.Default());
}
