using System.Net;
using Akka.Actor;
using Akka.Cluster;
using Akka.Configuration;
using MoCo.Host.Configuration;
using MoCo.Host.Health;
using MoCo.Host.Metrics;

namespace MoCo.Deploy.Tests;

/// <summary>
/// The probes' paths on <see cref="MetricsEndpoint"/>, answered by <see cref="HealthChecks"/> for a node of a one-member
/// cluster on loopback, configured by hocon/kubernetes.conf.
/// </summary>
public sealed class HealthEndpointTests
{
    [Fact]
    public async Task Alive_answers_while_the_system_runs_and_ready_once_the_node_is_up()
    {
        int port = MetricsEndpointTests.FreePort();
        using var metrics = new MocoMetrics();
        using var endpoint = MetricsEndpoint.Start(port, metrics);
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(10) };

        // before the actor system exists: the process is alive, not ready
        await Expect(http, MetricsEndpoint.AlivePath, HttpStatusCode.OK, "ok: process running\n");
        await Expect(http, MetricsEndpoint.ReadyPath, HttpStatusCode.ServiceUnavailable, "not ready: starting\n");

        var config = ConfigurationFactory.ParseString("""
                akka.loglevel = WARNING
                akka.actor.provider = cluster
                akka.remote.dot-netty.tcp { hostname = "127.0.0.1", port = 0 }
                akka.coordinated-shutdown.run-by-clr-shutdown-hook = off
                """)
            .WithFallback(SettingsReader.ParseFile(Repository.PathOf("hocon", "kubernetes.conf")));
        var system = ActorSystem.Create("health", config);
        try
        {
            endpoint.UseHealthChecks(() => HealthChecks.Alive(system), () => HealthChecks.Ready(system));
            await Expect(http, MetricsEndpoint.AlivePath, HttpStatusCode.OK, "ok: actor system running\n");
            var cluster = Cluster.Get(system);
            await Expect(http, MetricsEndpoint.ReadyPath, HttpStatusCode.ServiceUnavailable, $"not ready: member {cluster.SelfMember.Status}\n");

            var up = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            cluster.RegisterOnMemberUp(() => up.TrySetResult());
            cluster.Join(cluster.SelfAddress);
            await up.Task.WaitAsync(TimeSpan.FromSeconds(30));
            await Expect(http, MetricsEndpoint.ReadyPath, HttpStatusCode.OK, "ok: member Up\n");

            // a graceful leave (what SIGTERM runs): afterwards both probes fail, and the kubelet restarts nothing
            // that is still working
            await CoordinatedShutdown.Get(system).Run(CoordinatedShutdown.ClusterLeavingReason.Instance).WaitAsync(TimeSpan.FromSeconds(60));
            // left, not downed (a lone node sees itself Exiting last; with others it is Removed)
            Assert.Contains(cluster.SelfMember.Status, new[] { MemberStatus.Exiting, MemberStatus.Removed });
            Assert.True(cluster.IsTerminated);
            await Expect(http, MetricsEndpoint.AlivePath, HttpStatusCode.ServiceUnavailable, "not ready: actor system terminated\n");
            await Expect(http, MetricsEndpoint.ReadyPath, HttpStatusCode.ServiceUnavailable, "not ready: actor system terminated\n");
        }
        finally
        {
            await system.Terminate();
        }
    }

    [Fact]
    public async Task Ready_needs_a_cluster_and_a_failing_check_is_an_answer_not_an_error()
    {
        var local = ActorSystem.Create("local", "akka.loglevel = WARNING");
        Assert.True(HealthChecks.Alive(local).Healthy);
        Assert.Equal(new HealthStatus(false, "not a cluster node (akka.actor.provider is not cluster)"), HealthChecks.Ready(local));
        await local.Terminate();

        int port = MetricsEndpointTests.FreePort();
        using var metrics = new MocoMetrics();
        using var endpoint = MetricsEndpoint.Start(port, metrics);
        endpoint.UseHealthChecks(() => throw new InvalidOperationException("boom"), () => new HealthStatus(true, "fine"));
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(10) };
        await Expect(http, MetricsEndpoint.AlivePath, HttpStatusCode.ServiceUnavailable, "not ready: check failed: boom\n");
        await Expect(http, MetricsEndpoint.ReadyPath, HttpStatusCode.OK, "ok: fine\n");
        Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync("/healthz")).StatusCode);
        Assert.Equal(HttpStatusCode.MethodNotAllowed, (await http.PostAsync(MetricsEndpoint.AlivePath, null)).StatusCode);
    }

    private static async Task Expect(HttpClient http, string path, HttpStatusCode status, string body)
    {
        var response = await http.GetAsync(path);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == status && text == body, $"GET {path}: expected {(int)status} '{body.TrimEnd()}', got {(int)response.StatusCode} '{text.TrimEnd()}'");
    }
}
