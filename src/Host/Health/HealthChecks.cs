using Akka.Actor;
using Akka.Cluster;
using Akka.Hosting;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace MoCo.Host.Health;

/// <summary>A check's answer: whether it passes and a short reason a person can read in a probe's event.</summary>
public readonly record struct ProbeStatus(bool Healthy, string Reason);

/// <summary>The tags that sort the host's health checks into the kubelet's two probes.</summary>
public static class ProbeTags
{
    /// <summary>/alive: the process should be restarted when one of these fails.</summary>
    public const string Liveness = "liveness";

    /// <summary>/ready: the pod should count as ready only while all of these pass.</summary>
    public const string Readiness = "readiness";
}

/// <summary>
/// What the probes ask, as Akka.Hosting health checks. Liveness: Akka.Hosting's own actor-system check (a node that the
/// cluster downed stops its system, the probe fails, the kubelet restarts the container and it joins again).
/// Readiness: this node is an <c>Up</c> (or <c>WeaklyUp</c>) member of the cluster, so a pod counts as ready only once it
/// has joined; and the run this process serves has not failed (<see cref="RunHealth"/>). Akka.Cluster.Hosting ships a
/// membership check too, but it brings cluster sharding's LightningDB store, which nothing here uses: ours is the same
/// few lines.
/// </summary>
public static class HealthChecks
{
    /// <summary>Registers the probes' checks on an Akka.Hosting builder.</summary>
    /// <param name="akka">The builder.</param>
    /// <param name="run">The run's state as this process knows it; null: a node between runs (no run check).</param>
    public static AkkaConfigurationBuilder WithProbes(this AkkaConfigurationBuilder akka, RunHealth? run)
    {
        akka.WithActorSystemLivenessCheck(tags: [ProbeTags.Liveness]);
        akka.WithHealthCheck("akka-cluster-membership", new ClusterMembershipCheck(), tags: [ProbeTags.Readiness]);
        if (run is not null)
        {
            akka.WithHealthCheck("moco-run", new RunStateCheck(run), tags: [ProbeTags.Readiness]);
        }
        return akka;
    }

    /// <summary>Passes while this node is an Up or WeaklyUp member of the cluster.</summary>
    public static ProbeStatus Ready(ActorSystem system)
    {
        if (system.WhenTerminated.IsCompleted)
        {
            return new ProbeStatus(false, "actor system terminated");
        }
        if (((ExtendedActorSystem)system).Provider is not ClusterActorRefProvider)
        {
            return new ProbeStatus(false, "not a cluster node (akka.actor.provider is not cluster)");
        }
        var self = Cluster.Get(system).SelfMember;
        return self.Status is MemberStatus.Up or MemberStatus.WeaklyUp
            ? new ProbeStatus(true, $"member {self.Status}")
            : new ProbeStatus(false, $"member {self.Status}");
    }

    private static HealthCheckResult Result(ProbeStatus status) =>
        status.Healthy ? HealthCheckResult.Healthy(status.Reason) : HealthCheckResult.Unhealthy(status.Reason);

    private sealed class ClusterMembershipCheck : IAkkaHealthCheck
    {
        public Task<HealthCheckResult> CheckHealthAsync(AkkaHealthCheckContext context, CancellationToken cancellationToken = default) =>
            Task.FromResult(Result(Ready(context.ActorSystem)));
    }

    private sealed class RunStateCheck(RunHealth run) : IAkkaHealthCheck
    {
        public Task<HealthCheckResult> CheckHealthAsync(AkkaHealthCheckContext context, CancellationToken cancellationToken = default) =>
            Task.FromResult(Result(run.Status));
    }
}

/// <summary>
/// The run as this process sees it, for the readiness probe: which run, where it is, and whether it failed. Written by
/// the progress actor, read by the probe's thread.
/// </summary>
public sealed class RunHealth
{
    private volatile string _where = "starting";
    private volatile string? _failure;

    /// <summary>The run's id.</summary>
    public string RunId { get; }

    /// <summary>A run of <paramref name="runId"/> that has not yet started training.</summary>
    public RunHealth(string runId) => RunId = runId;

    /// <summary>The run trains at <paramref name="epoch"/>, <paramref name="globalStep"/>, in <paramref name="generation"/> of <paramref name="worldSize"/> workers.</summary>
    public void Training(int generation, int worldSize, int epoch, long globalStep) =>
        _where = $"epoch {epoch}, step {globalStep}, generation {generation} of {worldSize} worker(s)";

    /// <summary>The run ended without failing (completed or interrupted).</summary>
    public void Ended(string how) => _where = how;

    /// <summary>The run failed; readiness fails from now on with <paramref name="reason"/>.</summary>
    public void Failed(string reason) => _failure = reason;

    /// <summary>Healthy while the run has not failed; the reason says where it is.</summary>
    public ProbeStatus Status => _failure is { } f
        ? new ProbeStatus(false, $"run {RunId} failed: {f}")
        : new ProbeStatus(true, $"run {RunId}: {_where}");
}
