using System.Net;
using MoCo.Actors.Collectives;
using static MoCo.Actors.Tests.Collectives.Messages;

namespace MoCo.Actors.Tests.Collectives;

/// <summary>The ring's options: endpoints as the recorder publishes them, validation, and a secret that never prints.</summary>
public sealed class TcpRingOptionsTests
{
    [Fact]
    public void Endpoints_parse_from_host_and_port()
    {
        Assert.Equal(new IPEndPoint(IPAddress.Parse("10.1.2.3"), 7000), TcpRingOptions.ParseEndpoint("10.1.2.3:7000"));
        Assert.Equal(new IPEndPoint(IPAddress.IPv6Loopback, 80), TcpRingOptions.ParseEndpoint("[::1]:80"));
        Assert.Equal(new DnsEndPoint("worker-1.moco", 7000), TcpRingOptions.ParseEndpoint("worker-1.moco:7000"));
    }

    [Theory]
    [InlineData("worker-1")]
    [InlineData("worker-1:")]
    [InlineData(":7000")]
    [InlineData("worker-1:0")]
    [InlineData("worker-1:70000")]
    [InlineData("worker-1:http")]
    public void Endpoints_without_a_valid_port_are_refused(string text)
    {
        var e = Assert.Throws<FormatException>(() => TcpRingOptions.ParseEndpoint(text));
        AssertMentions(e.Message, text);
    }

    [Fact]
    public void Options_refuse_a_short_secret_and_a_rank_outside_the_world()
    {
        var endpoints = new EndPoint[] { new IPEndPoint(IPAddress.Loopback, 1), new IPEndPoint(IPAddress.Loopback, 2) };
        var shortSecret = Assert.Throws<ArgumentException>(() => new TcpRingOptions(0, endpoints, "run", 1, new byte[8]).Validate());
        AssertMentions(shortSecret.Message, "at least 16");
        var outside = Assert.Throws<ArgumentException>(() => new TcpRingOptions(2, endpoints, "run", 1, LocalRing.Secret).Validate());
        AssertMentions(outside.Message, "rank 2 is outside a world of 2");
    }

    [Fact]
    public void Options_never_print_the_secret()
    {
        var secret = "0123456789abcdef-secret"u8.ToArray();
        var options = new TcpRingOptions(0, [new IPEndPoint(IPAddress.Loopback, 1)], "run", 1, secret);

        string text = options.ToString();

        Assert.DoesNotContain("0123456789abcdef", text);
        AssertMentions(text, $"Secret = ({secret.Length} bytes)");
    }

    [Theory]
    [InlineData("aes-gcm", DataPlaneProtection.AesGcm)]
    [InlineData(" AES-GCM ", DataPlaneProtection.AesGcm)]
    [InlineData("none", DataPlaneProtection.None)]
    public void Protection_parses_from_its_setting(string text, DataPlaneProtection expected)
    {
        Assert.Equal(expected, DataPlaneProtections.Parse(text));
        Assert.Equal(DataPlaneProtection.AesGcm, new TcpRingOptions(0, [new IPEndPoint(IPAddress.Loopback, 1)], "run", 1, LocalRing.Secret).Protection);
    }

    [Theory]
    [InlineData("aes")]
    [InlineData("")]
    [InlineData("tls")]
    public void An_unknown_protection_is_refused_naming_the_key(string text)
    {
        var e = Assert.Throws<FormatException>(() => DataPlaneProtections.Parse(text));
        AssertMentions(e.Message, "moco.cluster.data-plane-protection must be aes-gcm or none");
        AssertMentions(e.Message, $"'{text}'");
    }
}
