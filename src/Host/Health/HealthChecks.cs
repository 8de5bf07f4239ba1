using Akka.Actor;
using Akka.Cluster;

namespace MoCo.Host.Health;

/// <summary>A check's answer: whether it passes and a short reason a person can read in a probe's event.</summary>
public readonly record struct HealthStatus(bool Healthy, string Reason);

/// <summary>
/// What the probes ask. Liveness: the actor system runs (a node that the cluster downed stops its system, the probe
/// fails, the kubelet restarts the container and it joins again). Readiness: this node is an <c>Up</c> (or
/// <c>WeaklyUp</c>) member of the cluster, so a pod counts as ready only once it has joined.
/// </summary>
public static class HealthChecks
{
    /// <summary>Passes while the actor system has not terminated.</summary>
    public static HealthStatus Alive(ActorSystem system) =>
        system.WhenTerminated.IsCompleted
            ? new HealthStatus(false, "actor system terminated")
            : new HealthStatus(true, "actor system running");

    /// <summary>Passes while this node is an Up or WeaklyUp member of the cluster.</summary>
    public static HealthStatus Ready(ActorSystem system)
    {
        if (system.WhenTerminated.IsCompleted)
        {
            return new HealthStatus(false, "actor system terminated");
        }
        if (((ExtendedActorSystem)system).Provider is not Akka.Cluster.ClusterActorRefProvider)
        {
            return new HealthStatus(false, "not a cluster node (akka.actor.provider is not cluster)");
        }
        var self = Cluster.Get(system).SelfMember;
        return self.Status is MemberStatus.Up or MemberStatus.WeaklyUp
            ? new HealthStatus(true, $"member {self.Status}")
            : new HealthStatus(false, $"member {self.Status}");
    }
}
