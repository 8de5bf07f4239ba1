using MoCo.Host.Configuration;
using MoCo.Model.Training;

namespace MoCo.Host.Tests;

/// <summary>The <c>moco.host</c> section as the commands read it.</summary>
public sealed class HostSettingsTests
{
    [Theory]
    [InlineData(null, 25.0, true)]  // quickstart.conf: DDP's default
    [InlineData("off", 0.0, false)]
    [InlineData("0", 0.0, false)]
    [InlineData("4.5", 4.5, true)]
    public void Bucket_mib_must_come_from_the_preset_and_yield_to_a_flag(string? flag, double mib, bool enabled)
    {
        var (config, source) = Presets.Load("quickstart", null);
        if (flag is not null)
        {
            config = Presets.WithOverrides(config, "moco.host", new Dictionary<string, string> { ["bucket-mib"] = flag });
        }
        var bucketing = SettingsReader.Read<HostSettings>(config, "moco.host", source).Bucketing;
        Assert.Equal(mib, bucketing.BucketMib);
        Assert.Equal(enabled, bucketing.Enabled);
        Assert.Equal(enabled, bucketing.Overlap);
    }

    [Theory]
    [InlineData("lots")]
    [InlineData("-1")]
    public void Bucket_mib_must_refuse_what_is_neither_off_nor_a_size(string flag)
    {
        var (config, source) = Presets.Load("quickstart", null);
        config = Presets.WithOverrides(config, "moco.host", new Dictionary<string, string> { ["bucket-mib"] = flag });
        var host = SettingsReader.Read<HostSettings>(config, "moco.host", source);
        var e = Assert.Throws<ArgumentException>(() => host.Validate());
        Assert.Contains("bucket-mib", e.Message);
    }

    [Theory]
    [InlineData(null, 60)] // quickstart.conf
    [InlineData("5", 5)]
    public void Takeover_wait_must_come_from_the_preset_and_yield_to_an_override(string? value, int seconds)
    {
        var (config, source) = Presets.Load("quickstart", null);
        if (value is not null)
        {
            config = Presets.WithOverrides(config, "moco.host", new Dictionary<string, string> { ["takeover-wait-seconds"] = value });
        }
        var host = SettingsReader.Read<HostSettings>(config, "moco.host", source).Validate();
        Assert.Equal(TimeSpan.FromSeconds(seconds), host.TakeoverWait);
    }

    [Theory]
    [InlineData("0")]
    [InlineData("-5")]
    public void Takeover_wait_must_refuse_less_than_a_second(string value)
    {
        var (config, source) = Presets.Load("quickstart", null);
        config = Presets.WithOverrides(config, "moco.host", new Dictionary<string, string> { ["takeover-wait-seconds"] = value });
        var host = SettingsReader.Read<HostSettings>(config, "moco.host", source);
        var e = Assert.Throws<ArgumentException>(() => host.Validate());
        Assert.Contains("takeover-wait-seconds", e.Message);
    }
}
