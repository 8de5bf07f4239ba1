using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using HealthStatus = Microsoft.Extensions.Diagnostics.HealthChecks.HealthStatus;
using Microsoft.Extensions.Logging;
using MoCo.Host.Health;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;

namespace MoCo.Host.Metrics;

/// <summary>
/// The host's HTTP endpoint on <c>moco.metrics.port</c> (all interfaces), served by Kestrel: <c>GET /metrics</c> is
/// OpenTelemetry's Prometheus exporter over <see cref="MocoMetrics"/>' meter, <c>GET /alive</c> and <c>GET /ready</c>
/// the kubelet's probes (200 with "ok: ..." or 503 with the reasons), answered by the health checks of the process's
/// Akka.Hosting host (<see cref="ProbeTags"/>: Akka.Hosting's actor-system liveness check, our cluster-membership and
/// run-state checks). Until <see cref="UseHealthChecks"/> is called, /alive passes ("process running") and /ready fails
/// ("starting"). Dispose to stop.
/// </summary>
public sealed class MetricsEndpoint : IDisposable
{
    /// <summary>Prometheus' scrape path (the PodMonitor's path).</summary>
    public const string MetricsPath = "/metrics";

    /// <summary>The liveness and startup probes' path.</summary>
    public const string AlivePath = "/alive";

    /// <summary>The readiness probe's path.</summary>
    public const string ReadyPath = "/ready";

    private readonly WebApplication _app;
    private volatile Probes _probes = Probes.Fixed(new ProbeStatus(true, "process running"), new ProbeStatus(false, "starting"));

    private MetricsEndpoint(WebApplication app, int port)
    {
        _app = app;
        Port = port;
    }

    /// <summary>The TCP port it listens on.</summary>
    public int Port { get; }

    /// <summary>Starts the endpoint of <paramref name="settings"/> for <paramref name="metrics"/>, or returns null when the port is 0.</summary>
    /// <exception cref="Configuration.ConfigurationError">The port cannot be bound; the message names it and the key (the command exits 2 with it).</exception>
    public static MetricsEndpoint? Start(MetricsSettings settings, MocoMetrics metrics) =>
        settings.Port == 0 ? null : Start(settings.Port, metrics);

    /// <summary>Starts an endpoint on <paramref name="port"/>; <paramref name="host"/> "+" listens on every interface.</summary>
    public static MetricsEndpoint Start(int port, MocoMetrics metrics, string host = "+")
    {
        if (port is < 1 or > 65535)
        {
            throw new ArgumentOutOfRangeException(nameof(port), port, "moco.metrics.port must be 1 to 65535 (or 0 for no endpoint)");
        }

        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [] });
        builder.Logging.ClearProviders(); // Kestrel's own lines would interleave with the run's console
        builder.WebHost.UseKestrel(kestrel =>
        {
            if (host == "+")
            {
                kestrel.ListenAnyIP(port);
            }
            else
            {
                kestrel.Listen(IPAddress.Parse(host), port);
            }
        });
        builder.Services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.AddService("moco", serviceVersion: typeof(MetricsEndpoint).Assembly.GetName().Version?.ToString()))
            .WithMetrics(meters => meters
            .AddMeter(metrics.Meter.Name)
            .AddPrometheusExporter(prometheus =>
            {
                prometheus.ScrapeEndpointPath = MetricsPath;
                prometheus.ScrapeResponseCacheDurationMilliseconds = 0; // a record shows in the very next scrape
            }));
        var app = builder.Build();
        var endpoint = new MetricsEndpoint(app, port);
        app.MapPrometheusScrapingEndpoint(MetricsPath);
        app.MapGet(AlivePath, context => endpoint.AnswerAsync(context, ProbeTags.Liveness));
        app.MapGet(ReadyPath, context => endpoint.AnswerAsync(context, ProbeTags.Readiness));
        try
        {
            app.StartAsync().GetAwaiter().GetResult();
        }
        catch (IOException e)
        {
            ((IDisposable)app).Dispose();
            throw new Configuration.ConfigurationError($"cannot serve metrics on port {port} (moco.metrics.port): {e.Message}", e);
        }

        return endpoint;
    }

    /// <summary>
    /// /alive and /ready answer from now on with the health checks registered in <paramref name="akkaHost"/>'s services
    /// (see <see cref="ProbeTags"/>): those tagged <see cref="ProbeTags.Liveness"/> and <see cref="ProbeTags.Readiness"/>.
    /// </summary>
    public void UseHealthChecks(IServiceProvider akkaHost)
    {
        var service = akkaHost.GetRequiredService<HealthCheckService>();
        _probes = new Probes((tag, cancel) => service.CheckHealthAsync(r => r.Tags.Contains(tag), cancel));
    }

    /// <summary>The process lives on without an actor system (a complete run, a node between runs): alive, not ready.</summary>
    /// <param name="reason">What the probes' answers say.</param>
    public void UseIdle(string reason) => _probes = Probes.Fixed(new ProbeStatus(true, "idle: " + reason), new ProbeStatus(false, "idle: " + reason));

    /// <inheritdoc />
    public void Dispose()
    {
        try
        {
            _app.StopAsync().Wait(TimeSpan.FromSeconds(5));
        }
        catch (AggregateException)
        {
        }
        ((IDisposable)_app).Dispose();
    }

    private async Task AnswerAsync(HttpContext context, string tag)
    {
        HealthReport report;
        try
        {
            report = await _probes.Check(tag, context.RequestAborted).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            report = new HealthReport(new Dictionary<string, HealthReportEntry>
            {
                ["probe"] = new(HealthStatus.Unhealthy, "check failed: " + e.Message, TimeSpan.Zero, e, null),
            }, TimeSpan.Zero);
        }

        var (status, body) = Describe(report);
        context.Response.StatusCode = status;
        context.Response.ContentType = "text/plain; charset=utf-8";
        await context.Response.WriteAsync(body, context.RequestAborted).ConfigureAwait(false);
    }

    /// <summary>
    /// A probe's answer: 200 "ok: " and every check's description when none is unhealthy (degraded passes), else 503
    /// "not ready: " and the unhealthy checks' descriptions, joined by "; ".
    /// </summary>
    public static (int Status, string Body) Describe(HealthReport report)
    {
        static string Text(KeyValuePair<string, HealthReportEntry> e) => e.Value.Description ?? e.Key;
        bool healthy = report.Status != HealthStatus.Unhealthy;
        var parts = healthy
            ? report.Entries.OrderBy(e => e.Key, StringComparer.Ordinal).Select(Text)
            : report.Entries.Where(e => e.Value.Status == HealthStatus.Unhealthy)
                .OrderBy(e => e.Key, StringComparer.Ordinal).Select(Text);
        var text = string.Join("; ", parts);
        return healthy ? (200, $"ok: {text}\n") : (503, $"not ready: {text}\n");
    }

    /// <summary>Where the probes' reports come from: a tag's checks.</summary>
    private sealed record Probes(Func<string, CancellationToken, Task<HealthReport>> Check)
    {
        public static Probes Fixed(ProbeStatus alive, ProbeStatus ready) => new((tag, _) =>
        {
            var s = tag == ProbeTags.Liveness ? alive : ready;
            var entry = new HealthReportEntry(s.Healthy ? HealthStatus.Healthy : HealthStatus.Unhealthy,
                s.Reason, TimeSpan.Zero, null, null);
            return Task.FromResult(new HealthReport(new Dictionary<string, HealthReportEntry> { ["process"] = entry }, TimeSpan.Zero));
        });
    }
}
