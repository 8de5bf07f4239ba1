namespace MoCo.Host.Metrics;

/// <summary>The <c>moco.metrics</c> section: where this process serves its Prometheus endpoint.</summary>
public sealed record MetricsSettings
{
    /// <summary>TCP port of <c>GET /metrics</c> on all interfaces; 0: no endpoint.</summary>
    public int Port { get; init; }
}
