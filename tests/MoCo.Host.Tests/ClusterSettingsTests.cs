using MoCo.Actors.Collectives;
using MoCo.Host.Configuration;
using MoCo.Host.Hosting;

namespace MoCo.Host.Tests;

/// <summary>The <c>moco.cluster</c> section's data-plane protection as the commands read it.</summary>
public sealed class ClusterSettingsTests
{
    [Fact]
    public void Data_plane_protection_is_aes_gcm_from_the_preset_and_reaches_the_data_plane()
    {
        var (config, source) = Presets.Load("quickstart", null);
        var cluster = SettingsReader.Read<ClusterSettings>(config, "moco.cluster", source).Validate();

        Assert.Equal(DataPlaneProtection.AesGcm, cluster.Protection());
        Assert.Null(cluster.ProtectionWarning());
        Assert.Equal(DataPlaneProtection.AesGcm, TrainingHost.DataPlane(cluster, multiNode: false).Protection);
    }

    [Fact]
    public void Data_plane_protection_none_comes_from_the_environment_and_warns()
    {
        var (config, source) = Presets.Load("quickstart", null);
        config = Presets.WithEnvironment(config, new Dictionary<string, string> { ["MOCO_CLUSTER_DATA_PLANE_PROTECTION"] = "none" });
        var cluster = SettingsReader.Read<ClusterSettings>(config, "moco.cluster", source).Validate() with { Secret = "0123456789abcdef0123" };

        Assert.Equal(DataPlaneProtection.None, TrainingHost.DataPlane(cluster, multiNode: true).Protection);
        Assert.Contains("moco.cluster.data-plane-protection = none", cluster.ProtectionWarning());
        Assert.Contains("only to benchmark", cluster.ProtectionWarning());
    }

    [Fact]
    public void An_unknown_data_plane_protection_is_refused_naming_the_key()
    {
        var (config, source) = Presets.Load("quickstart", null);
        config = Presets.WithOverrides(config, "moco.cluster", new Dictionary<string, string> { ["data-plane-protection"] = "chacha" });
        var cluster = SettingsReader.Read<ClusterSettings>(config, "moco.cluster", source);

        var e = Assert.Throws<ConfigurationError>(() => cluster.Validate());
        Assert.Contains("moco.cluster.data-plane-protection must be aes-gcm or none", e.Message);
        Assert.Contains("'chacha'", e.Message);
        Assert.Throws<ConfigurationError>(() => TrainingHost.DataPlane(cluster, multiNode: false));
    }
}
