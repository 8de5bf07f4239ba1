using System.Net;
using System.Net.Sockets;
using OpenTelemetry;
using OpenTelemetry.Metrics;

namespace MoCo.Host.Metrics;

/// <summary>
/// Serves the instruments of <see cref="MocoMetrics.MeterName"/> as Prometheus text at <c>GET /metrics</c>
/// (OpenTelemetry's Prometheus HttpListener exporter), on all interfaces. Dispose to stop.
/// </summary>
public sealed class PrometheusEndpoint : IDisposable
{
    /// <summary>The scrape path (the PodMonitor's path).</summary>
    public const string Path = "/metrics";

    private readonly MeterProvider _provider;

    private PrometheusEndpoint(MeterProvider provider, int port)
    {
        _provider = provider;
        Port = port;
    }

    /// <summary>The TCP port it listens on.</summary>
    public int Port { get; }

    /// <summary>Starts the endpoint of <paramref name="settings"/>, or returns null when its port is 0.</summary>
    /// <exception cref="InvalidOperationException">The port cannot be bound; the message names it.</exception>
    public static PrometheusEndpoint? Start(MetricsSettings settings) =>
        settings.Port == 0 ? null : Start(settings.Port, "+");

    /// <summary>Starts an endpoint on <paramref name="port"/>; <paramref name="host"/> "+" listens on every interface.</summary>
    public static PrometheusEndpoint Start(int port, string host = "+")
    {
        if (port is < 1 or > 65535)
        {
            throw new ArgumentOutOfRangeException(nameof(port), port, "moco.metrics.port must be 1 to 65535 (or 0 for no endpoint)");
        }
        try
        {
            var provider = Sdk.CreateMeterProviderBuilder()
                .AddMeter(MocoMetrics.MeterName)
                .AddPrometheusHttpListener(options =>
                {
                    options.Host = host;
                    options.Port = port;
                    options.ScrapeEndpointPath = Path;
                    // every scrape shows the latest values (Prometheus scrapes every few seconds at most)
                    options.ScrapeResponseCacheDurationMilliseconds = 0;
                })
                .Build();
            return new PrometheusEndpoint(provider, port);
        }
        catch (Exception e) when (e is HttpListenerException or SocketException or InvalidOperationException)
        {
            throw new InvalidOperationException($"cannot serve metrics on port {port} (moco.metrics.port): {e.Message}", e);
        }
    }

    /// <inheritdoc />
    public void Dispose() => _provider.Dispose();
}
