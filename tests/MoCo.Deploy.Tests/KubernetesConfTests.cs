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
    public void Key_check_finds_a_misspelt_key()
    {
        var misspelt = ConfigurationFactory.ParseString("akka.management.cluster.bootstrap.contact-point-discovery.required-contact-points = 2");
        var paths = LeafPaths(misspelt.GetValue("akka"), "akka").ToList();
        Assert.Equal(["akka.management.cluster.bootstrap.contact-point-discovery.required-contact-points"], paths);
        Assert.False(AkkaReference.All.HasPath(paths[0]));
        Assert.True(AkkaReference.All.HasPath("akka.management.cluster.bootstrap.contact-point-discovery.required-contact-point-nr"));
    }

    [Fact]
    public void Split_brain_resolver_keeps_the_majority()
    {
        var config = File().WithFallback(AkkaReference.All);
        Assert.Equal("Akka.Cluster.SBR.SplitBrainResolverProvider, Akka.Cluster", config.GetString("akka.cluster.downing-provider-class"));
        Assert.Equal("keep-majority", config.GetString("akka.cluster.split-brain-resolver.active-strategy"));
        Assert.NotNull(Type.GetType(config.GetString("akka.cluster.downing-provider-class")));
    }

    [Fact]
    public void Discovery_and_bootstrap_use_the_kubernetes_api()
    {
        var config = File().WithFallback(AkkaReference.All);
        Assert.Equal("kubernetes-api", config.GetString("akka.discovery.method"));
        // bootstrap rides on akka.discovery.method, so one key switches both (a loopback test uses config discovery)
        Assert.Equal("akka.discovery", config.GetString("akka.management.cluster.bootstrap.contact-point-discovery.discovery-method"));
        Assert.NotNull(Type.GetType(config.GetString("akka.discovery.kubernetes-api.class")));
        Assert.Equal(config.GetInt("moco.cluster.min-workers"), config.GetInt("akka.management.cluster.bootstrap.contact-point-discovery.required-contact-point-nr"));
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
