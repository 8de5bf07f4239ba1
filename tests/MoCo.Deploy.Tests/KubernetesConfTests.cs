using Akka.Configuration;
using Akka.Configuration.Hocon;
using MoCo.Host.Configuration;
using MoCo.Host.Metrics;
using MoCo.Model.Training;

namespace MoCo.Deploy.Tests;

/// <summary>hocon/kubernetes.conf: readable by the host, and every Akka key in it is one the Akka packages know.</summary>
public sealed class KubernetesConfTests
{
    private static Config File() => SettingsReader.ParseFile(Repository.PathOf("hocon", "kubernetes.conf"));

    [Fact]
    public void Host_reads_its_sections_without_an_unknown_key()
    {
        var config = File();
        var source = "hocon/kubernetes.conf";
        var run = SettingsReader.Read<RunConfig>(config, "moco.run", source);
        run.Validate();
        Assert.Equal("synthetic", run.Data); // the quickstart, which needs no data volume
        Assert.Equal("/var/lib/moco/runs", SettingsReader.Read<HostSettings>(config, "moco.host", source).RunsRoot);
        Assert.Equal(9464, SettingsReader.Read<MetricsSettings>(config, "moco.metrics", source).Port);
        var cluster = SettingsReader.Read<ClusterSettings>(config, "moco.cluster", source).Validate();
        Assert.Equal(("0.0.0.0", 4053, 2, 4600), (cluster.Hostname, cluster.Port, cluster.MinWorkers, cluster.DataPlanePort));
        SettingsReader.Read<JournalSettings>(config, "moco.journal", source).Validate();
        SettingsReader.CheckSections(config, "moco", Presets.Sections, source);
    }

    [Fact]
    public void Job_configuration_is_the_kubernetes_one_with_pods_that_end_with_their_run()
    {
        // hocon/kubernetes-job.conf (k8s/job) changes only what a Job's pod needs: a completed run found on start exits
        var job = SettingsReader.ParseFile(Repository.PathOf("hocon", "kubernetes-job.conf"));
        var source = "hocon/kubernetes-job.conf";
        SettingsReader.CheckSections(job, "moco", Presets.Sections, source);
        Assert.False(SettingsReader.Read<HostSettings>(job, "moco.host", source).IdleWhenComplete);
        Assert.True(SettingsReader.Read<HostSettings>(File(), "moco.host", "hocon/kubernetes.conf").IdleWhenComplete); // the StatefulSets' trainer idles
        // everything else as kubernetes.conf: the run, the ports, min-workers, Akka's settings
        var different = new List<string>();
        foreach (var path in LeafPaths(job.Root, "").Select(p => p.TrimStart('.')).Concat(LeafPaths(File().Root, "").Select(p => p.TrimStart('.'))).Distinct())
        {
            if (path != "moco.host.idle-when-complete" && (!job.HasPath(path) || !File().HasPath(path) || job.GetValue(path).ToString() != File().GetValue(path).ToString()))
            {
                different.Add(path);
            }
        }
        Assert.True(different.Count == 0, "kubernetes-job.conf differs from kubernetes.conf in " + string.Join(", ", different));
    }

    [Fact]
    public void Every_akka_key_exists_in_the_reference_configuration_of_its_package()
    {
        var reference = AkkaReference.All;
        var unknown = new List<string>();
        foreach (var path in LeafPaths(File().GetValue("akka"), "akka"))
        {
            if (!reference.HasPath(path))
            {
                unknown.Add(path);
            }
        }
        Assert.True(unknown.Count == 0, "keys no Akka package reads (a typo, or a key of another version): " + string.Join(", ", unknown));
    }

    [Fact]
    public void Key_check_finds_a_misspelt_key_and_the_keys_of_packages_the_host_does_not_use()
    {
        var misspelt = ConfigurationFactory.ParseString("akka.cluster.split-brain-resolver.keep-oldest.down-when-alone = off");
        var paths = LeafPaths(misspelt.GetValue("akka"), "akka").ToList();
        Assert.Equal(["akka.cluster.split-brain-resolver.keep-oldest.down-when-alone"], paths);
        Assert.False(AkkaReference.All.HasPath(paths[0]));
        Assert.True(AkkaReference.All.HasPath("akka.cluster.split-brain-resolver.keep-oldest.down-if-alone"));
        // Akka.Management and Akka.Discovery are not referenced: their keys would configure nothing
        Assert.False(AkkaReference.All.HasPath("akka.management.http.port"));
        Assert.False(AkkaReference.All.HasPath("akka.discovery.method"));
    }

    [Fact]
    public void Split_brain_resolver_keeps_the_side_of_the_trainer()
    {
        var config = File().WithFallback(AkkaReference.All);
        Assert.Equal("Akka.Cluster.SBR.SplitBrainResolverProvider, Akka.Cluster", config.GetString("akka.cluster.downing-provider-class"));
        Assert.NotNull(Type.GetType(config.GetString("akka.cluster.downing-provider-class")));
        // the oldest member with the trainer's role, the role only `moco train` has: the trainer, whoever joined when
        Assert.Equal("keep-oldest", config.GetString("akka.cluster.split-brain-resolver.active-strategy"));
        Assert.Equal(ClusterSettings.TrainerRole, config.GetString("akka.cluster.split-brain-resolver.keep-oldest.role"));
        Assert.NotEqual(ClusterSettings.TrainerRole, MoCo.Actors.Training.TrainingDirectorActor.WorkerRole);
        // a trainer cut off from every worker stays up; the workers down themselves and rejoin after a restart
        Assert.False(config.GetBoolean("akka.cluster.split-brain-resolver.keep-oldest.down-if-alone"));
        Assert.True(config.GetBoolean("akka.cluster.run-coordinated-shutdown-when-down"));
    }

    [Fact]
    public void Neither_cluster_bootstrap_nor_discovery_is_configured()
    {
        // the workers join the trainer by name (--join); nothing reads these sections (k8s/README.md, "Why no cluster bootstrap")
        var config = File();
        Assert.False(config.HasPath("akka.management"));
        Assert.False(config.HasPath("akka.discovery"));
        var cluster = SettingsReader.Read<ClusterSettings>(config, "moco.cluster", "hocon/kubernetes.conf");
        Assert.Empty(cluster.SeedAddresses()); // the trainer joins itself; workers pass --join
    }

    private static IEnumerable<string> LeafPaths(HoconValue value, string path)
    {
        if (value.IsObject())
        {
            foreach (var (key, child) in value.GetObject().Items)
            {
                foreach (var leaf in LeafPaths(child, path + "." + key))
                {
                    yield return leaf;
                }
            }
        }
        else
        {
            yield return path;
        }
    }
}
