using System.Net;
using Akka.Actor;
using Akka.Cluster;
using Akka.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using MoCo.Host.Configuration;
using MoCo.Host.Health;
using MoCo.Host.Metrics;

namespace MoCo.Deploy.Tests;

/// <summary>
/// The probes' paths on <see cref="MetricsEndpoint"/>, answered by the health checks of an Akka.Hosting host
/// (<see cref="HealthChecks.WithProbes"/>: Akka.Hosting's actor-system liveness check, the cluster-membership and run
/// checks) for a node of a one-member cluster on loopback, configured by hocon/kubernetes.conf.
/// </summary>
public sealed class HealthEndpointTests
{
    [Fact]
    public async Task Alive_answers_while_the_system_runs_and_ready_once_the_node_is_up_and_while_the_run_has_not_failed()
    {
        int port = MetricsEndpointTests.FreePort();
        using var metrics = new MocoMetrics(MetricsEndpointTests.UniqueMeterName());
        using var endpoint = MetricsEndpoint.Start(port, metrics);
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(10) };

        // before the actor system exists: the process is alive, not ready
        await Expect(http, MetricsEndpoint.AlivePath, HttpStatusCode.OK, "ok: process running\n");
        await Expect(http, MetricsEndpoint.ReadyPath, HttpStatusCode.ServiceUnavailable, "not ready: starting\n");

        var run = new RunHealth("run-1");
        using var host = Build(akka => akka.WithProbes(run));
        await host.StartAsync();
        var system = host.Services.GetRequiredService<ActorSystem>();
        endpoint.UseHealthChecks(host.Services);
        var (status, alive) = await Get(http, MetricsEndpoint.AlivePath);
        Assert.True(status == HttpStatusCode.OK && alive.StartsWith("ok: ", StringComparison.Ordinal), $"alive: {(int)status} {alive}");
        var cluster = Cluster.Get(system);
        await Expect(http, MetricsEndpoint.ReadyPath, HttpStatusCode.ServiceUnavailable, $"not ready: member {cluster.SelfMember.Status}\n");

        var up = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        cluster.RegisterOnMemberUp(() => up.TrySetResult());
        cluster.Join(cluster.SelfAddress);
        await up.Task.WaitAsync(TimeSpan.FromSeconds(30));
        // the Up callback comes from the cluster's daemon; SelfMember is read from the cluster's read view, which an
        // event updates a moment later (on a loaded machine the probe asked in between and heard the view's initial
        // "Removed"): the probe answers from the read view, so the test waits for it
        for (var clock = System.Diagnostics.Stopwatch.StartNew(); cluster.SelfMember.Status != MemberStatus.Up && clock.Elapsed < TimeSpan.FromSeconds(30);)
        {
            await Task.Delay(20);
        }

        await Expect(http, MetricsEndpoint.ReadyPath, HttpStatusCode.OK, "ok: member Up; run run-1: starting\n");
        run.Training(generation: 2, worldSize: 3, epoch: 4, globalStep: 50);
        await Expect(http, MetricsEndpoint.ReadyPath, HttpStatusCode.OK, "ok: member Up; run run-1: epoch 4, step 50, generation 2 of 3 worker(s)\n");
        run.Failed("rank 1 diverged");
        await Expect(http, MetricsEndpoint.ReadyPath, HttpStatusCode.ServiceUnavailable, "not ready: run run-1 failed: rank 1 diverged\n");

        // a graceful leave (what SIGTERM runs): afterwards both probes fail, and the kubelet restarts nothing that is
        // still working
        await CoordinatedShutdown.Get(system).Run(CoordinatedShutdown.ClusterLeavingReason.Instance).WaitAsync(TimeSpan.FromSeconds(60));
        // the leave began; the leader moves a member on from Leaving (to Exiting, then Removed) in its own time, and on a
        // loaded machine the shutdown's phases can end first (seen in CI: Leaving)
        Assert.Contains(cluster.SelfMember.Status, new[] { MemberStatus.Leaving, MemberStatus.Exiting, MemberStatus.Removed });
        (status, alive) = await Get(http, MetricsEndpoint.AlivePath);
        Assert.True(status == HttpStatusCode.ServiceUnavailable && alive.StartsWith("not ready: ", StringComparison.Ordinal), $"alive after leaving: {(int)status} {alive}");
        await Expect(http, MetricsEndpoint.ReadyPath, HttpStatusCode.ServiceUnavailable, "not ready: actor system terminated; run run-1 failed: rank 1 diverged\n");

        // a process between runs: alive, not ready, whatever the host said
        endpoint.UseIdle("between runs (--stay)");
        await Expect(http, MetricsEndpoint.AlivePath, HttpStatusCode.OK, "ok: idle: between runs (--stay)\n");
        await Expect(http, MetricsEndpoint.ReadyPath, HttpStatusCode.ServiceUnavailable, "not ready: idle: between runs (--stay)\n");
        await host.StopAsync();
    }

    [Fact]
    public async Task Ready_needs_a_cluster_and_a_failing_check_is_an_answer_not_an_error()
    {
        var local = ActorSystem.Create("local", "akka.loglevel = WARNING");
        Assert.Equal(new ProbeStatus(false, "not a cluster node (akka.actor.provider is not cluster)"), HealthChecks.Ready(local));
        await local.Terminate();
        Assert.Equal(new ProbeStatus(false, "actor system terminated"), HealthChecks.Ready(local));

        int port = MetricsEndpointTests.FreePort();
        using var metrics = new MocoMetrics(MetricsEndpointTests.UniqueMeterName());
        using var endpoint = MetricsEndpoint.Start(port, metrics);
        using var host = Build(akka => akka
            .WithHealthCheck("boom", (_, _, _) => throw new InvalidOperationException("boom"), tags: [ProbeTags.Liveness])
            .WithHealthCheck("fine", (_, _, _) => Task.FromResult(HealthCheckResult.Healthy("fine")), tags: [ProbeTags.Readiness]));
        await host.StartAsync();
        endpoint.UseHealthChecks(host.Services);
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(10) };
        await Expect(http, MetricsEndpoint.AlivePath, HttpStatusCode.ServiceUnavailable, "not ready: boom\n");
        await Expect(http, MetricsEndpoint.ReadyPath, HttpStatusCode.OK, "ok: fine\n");
        Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync("/healthz")).StatusCode);
        Assert.Equal(HttpStatusCode.MethodNotAllowed, (await http.PostAsync(MetricsEndpoint.AlivePath, null)).StatusCode);
        await host.StopAsync();
    }

    /// <summary>A host of one cluster node on loopback (not yet joined) with the given Akka.Hosting setup.</summary>
    private static IHost Build(Action<AkkaConfigurationBuilder> setup)
    {
        var builder = Microsoft.Extensions.Hosting.Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Services.AddHealthChecks();
        builder.Services.AddAkka("health", akka =>
        {
            akka.AddHocon(Akka.Configuration.ConfigurationFactory.ParseString("""
                    akka.loglevel = WARNING
                    akka.actor.provider = cluster
                    akka.remote.dot-netty.tcp { hostname = "127.0.0.1", port = 0 }
                    akka.coordinated-shutdown.run-by-clr-shutdown-hook = off
                    """).WithFallback(SettingsReader.ParseFile(Repository.PathOf("hocon", "kubernetes.conf"))), HoconAddMode.Prepend);
            setup(akka);
        });
        return builder.Build();
    }

    private static async Task<(HttpStatusCode, string)> Get(HttpClient http, string path)
    {
        var response = await http.GetAsync(path);
        return (response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    private static async Task Expect(HttpClient http, string path, HttpStatusCode status, string body)
    {
        var (actual, text) = await Get(http, path);
        Assert.True(actual == status && text == body, $"GET {path}: expected {(int)status} '{body.TrimEnd()}', got {(int)actual} '{text.TrimEnd()}'");
    }
}
