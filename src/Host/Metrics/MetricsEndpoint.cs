using System.Net;
using System.Text;
using MoCo.Host.Health;

namespace MoCo.Host.Metrics;

/// <summary>
/// The host's own small HTTP server on <c>moco.metrics.port</c> (all interfaces): <c>GET /metrics</c> serves
/// <see cref="MocoMetrics"/> as Prometheus text, <c>GET /alive</c> and <c>GET /ready</c> the kubelet's probes (200 with
/// "ok: ..." or 503 with the reason). Until <see cref="UseHealthChecks"/> is called, /alive passes ("process running")
/// and /ready fails ("starting"). Dispose to stop.
/// </summary>
public sealed class MetricsEndpoint : IDisposable
{
    /// <summary>Prometheus' scrape path (the PodMonitor's path).</summary>
    public const string MetricsPath = "/metrics";

    /// <summary>The liveness and startup probes' path.</summary>
    public const string AlivePath = "/alive";

    /// <summary>The readiness probe's path.</summary>
    public const string ReadyPath = "/ready";

    private readonly HttpListener _listener;
    private readonly PrometheusExposition _exposition;
    private readonly Task _serving;
    private volatile HealthChecks _checks = new(() => new HealthStatus(true, "process running"), () => new HealthStatus(false, "starting"));

    private MetricsEndpoint(HttpListener listener, PrometheusExposition exposition, int port)
    {
        _listener = listener;
        _exposition = exposition;
        Port = port;
        _serving = Task.Run(ServeAsync);
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
        var listener = new HttpListener();
        listener.Prefixes.Add($"http://{host}:{port}/");
        try
        {
            listener.Start();
        }
        catch (HttpListenerException e)
        {
            listener.Close();
            throw new Configuration.ConfigurationError($"cannot serve metrics on port {port} (moco.metrics.port): {e.Message}", e);
        }
        return new MetricsEndpoint(listener, new PrometheusExposition(metrics.Meter), port);
    }

    /// <summary>
    /// The checks /alive and /ready answer from now on, e.g. <c>() =&gt; HealthChecks.Alive(system)</c> and
    /// <c>() =&gt; HealthChecks.Ready(system)</c> once the actor system exists.
    /// </summary>
    public void UseHealthChecks(Func<HealthStatus> alive, Func<HealthStatus> ready) => _checks = new HealthChecks(alive, ready);

    /// <summary>The process lives on without an actor system (a complete run, a node between runs): alive, not ready.</summary>
    /// <param name="reason">What the probes' answers say.</param>
    public void UseIdle(string reason) => UseHealthChecks(() => new HealthStatus(true, "idle: " + reason), () => new HealthStatus(false, "idle: " + reason));

    /// <inheritdoc />
    public void Dispose()
    {
        _listener.Close();
        try
        {
            _serving.Wait(TimeSpan.FromSeconds(5));
        }
        catch (AggregateException)
        {
        }
        _exposition.Dispose();
    }

    private async Task ServeAsync()
    {
        while (_listener.IsListening)
        {
            HttpListenerContext context;
            try
            {
                context = await _listener.GetContextAsync().ConfigureAwait(false);
            }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException)
            {
                return; // closed
            }
            try
            {
                Answer(context);
            }
            catch (Exception e) when (e is HttpListenerException or IOException or ObjectDisposedException)
            {
                // the client went away; the next request is served as usual
            }
        }
    }

    private void Answer(HttpListenerContext context)
    {
        var request = context.Request;
        var response = context.Response;
        int status;
        string body;
        string contentType = "text/plain; charset=utf-8";
        if (request.HttpMethod is not ("GET" or "HEAD"))
        {
            (status, body) = (405, "only GET\n");
        }
        else
        {
            switch (request.Url?.AbsolutePath)
            {
                case MetricsPath:
                    (status, body) = (200, _exposition.Write());
                    contentType = "text/plain; version=0.0.4; charset=utf-8";
                    break;
                case AlivePath:
                    (status, body) = Health(_checks.Alive);
                    break;
                case ReadyPath:
                    (status, body) = Health(_checks.Ready);
                    break;
                default:
                    (status, body) = (404, $"not found: serves {MetricsPath}, {AlivePath}, {ReadyPath}\n");
                    break;
            }
        }
        var bytes = Encoding.UTF8.GetBytes(body);
        response.StatusCode = status;
        response.ContentType = contentType;
        response.ContentLength64 = bytes.Length;
        if (request.HttpMethod != "HEAD")
        {
            response.OutputStream.Write(bytes);
        }
        response.Close();
    }

    private static (int, string) Health(Func<HealthStatus> check)
    {
        HealthStatus status;
        try
        {
            status = check();
        }
        catch (Exception e)
        {
            status = new HealthStatus(false, $"check failed: {e.Message}");
        }
        return status.Healthy ? (200, $"ok: {status.Reason}\n") : (503, $"not ready: {status.Reason}\n");
    }

    private sealed record HealthChecks(Func<HealthStatus> Alive, Func<HealthStatus> Ready);
}
