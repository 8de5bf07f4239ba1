using Akka.Actor;
using Akka.Http.Dsl;
using Akka.Management.Dsl;
using Ceen;
using Route = System.ValueTuple<string, Akka.Http.Dsl.HttpModuleBase>;

namespace MoCo.Host.Health;

/// <summary>
/// Adds <c>GET /alive</c> and <c>GET /ready</c> to Akka.Management's HTTP server (Akka.Management for .NET
/// serves no health checks of its own). Registered by configuration, not code:
/// <c>akka.management.http.routes.moco-health = "MoCo.Host.Health.HealthRouteProvider, moco"</c>
/// (hocon/kubernetes.conf); the StatefulSet's probes call these paths on the port named <c>management</c>.
/// </summary>
public sealed class HealthRouteProvider : IManagementRouteProvider
{
    /// <summary>The liveness probe's path.</summary>
    public const string AlivePath = "/alive";

    /// <summary>The readiness probe's path.</summary>
    public const string ReadyPath = "/ready";

    /// <summary>The two routes; Akka.Management calls this once when its server starts.</summary>
    public Route[] Routes(ManagementRouteProviderSettings settings) =>
    [
        (AlivePath, new HealthModule(HealthChecks.Alive)),
        (ReadyPath, new HealthModule(HealthChecks.Ready)),
    ];

    /// <summary>Answers one check: 200 with "ok: ..." when it passes, 503 with the reason when it does not.</summary>
    private sealed class HealthModule(Func<ActorSystem, HealthStatus> check) : HttpModuleBase
    {
        public override async Task<bool> HandleAsync(IAkkaHttpContext context)
        {
            var method = context.HttpContext.Request.Method;
            if (!string.Equals(method, "GET", StringComparison.OrdinalIgnoreCase) && !string.Equals(method, "HEAD", StringComparison.OrdinalIgnoreCase))
            {
                return false;
            }
            var status = check(context.ActorSystem);
            context.HttpContext.Response.StatusCode = status.Healthy ? HttpStatusCode.OK : HttpStatusCode.ServiceUnavailable;
            await context.HttpContext.Response.WriteAllAsync((status.Healthy ? "ok: " : "not ready: ") + status.Reason + "\n", "text/plain; charset=utf-8");
            return true;
        }
    }
}
