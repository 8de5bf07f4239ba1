using Akka.Actor;
using Akka.Event;
using Akka.Cluster;
using MoCo.Actors.Collectives;
using MoCo.Actors.Nodes;
using MoCo.Actors.Workers;

namespace MoCo.Actors.Training;

/// <summary>
/// The other nodes: their offers and proofs of the cluster's secret, quarantine, losses (unreachable, removed,
/// disconnected) and the elastic start (docs/architecture.md, section 4).
/// </summary>
public sealed partial class TrainingDirectorActor
{
    private void HandleClusterState(ClusterEvent.CurrentClusterState state)
    {
        foreach (var member in state.Members.Where(m => m.Status == MemberStatus.Up))
        {
            HandleMemberUp(member);
        }
    }

    /// <summary>
    /// Every other member must prove it holds the cluster's secret, whatever its role: it is asked for an offer (a node
    /// agent answers with its proof) and downed unless a valid proof arrived within
    /// <see cref="TrainingSettings.MemberProofTimeout"/>. Only holders of the cluster's certificate get this far (TLS).
    /// </summary>
    private void HandleMemberUp(Member member)
    {
        var self = Akka.Cluster.Cluster.Get(Context.System).SelfAddress;
        if (member.Address.Equals(self))
        {
            return;
        }

        string node = member.Address.ToString();
        if (!_proven.Contains(node))
        {
            Timers.StartSingleTimer(_timerKeys++, new ProofDeadline(node), _settings.MemberProofTimeout);
        }

        AskForOfferNow(node);
    }

    private void HandleProofDeadline(ProofDeadline deadline)
    {
        var cluster = Akka.Cluster.Cluster.Get(Context.System);
        var member = cluster.State.Members.FirstOrDefault(m => m.Address.ToString() == deadline.Node);
        if (_proven.Contains(deadline.Node) || member is null || member.Status is MemberStatus.Down or MemberStatus.Removed or MemberStatus.Exiting or MemberStatus.Leaving)
        {
            return;
        }

        _log.Warning("Run {0}: member {1} (roles {2}) did not prove it holds the cluster's secret within {3} s; downed",
            _settings.RunId, deadline.Node, string.Join(",", member.Roles), _settings.MemberProofTimeout.TotalSeconds);
        _subscriber.Tell(new TrainingDirector.Notice($"member {deadline.Node} did not prove it holds the cluster's secret within "
            + $"{_settings.MemberProofTimeout.TotalSeconds:F0} s: downed"));
        cluster.Down(member.Address);
    }

    private void AskForOfferNow(string node)
    {
        if (_finishing)
        {
            return;
        }

        var now = DateTime.UtcNow;
        if (_roster.QuarantinedUntil(node, now) is { } until)
        {
            Timers.StartSingleTimer(_timerKeys++, new AskForOffer(node), until - now);
            return;
        }

        // one nonce per round of asking: a retry repeats it, so that an answer to the earlier ask, late under load, still
        // proves the secret (a fresh nonce per retry made that answer fail the check, and an honest node was downed)
        if (!_nonces.TryGetValue(node, out var nonce))
        {
            nonce = ClusterProof.NewNonce();
            _nonces[node] = nonce;
        }

        Context.ActorSelection(node + NodeAgent.Path).Tell(new NodeAgent.GetOffer(_settings.RunId, nonce));
        // ask again until the agent answers (it may not exist yet when its node comes Up) or the node leaves
        Timers.StartSingleTimer(_timerKeys++, new AskForOffer(node, Retry: true), TimeSpan.FromSeconds(2));
    }

    private void HandleOffer(NodeAgent.Offer offer)
    {
        if (_finishing)
        {
            Sender.Tell(new NodeAgent.RunEnded(_settings.RunId, "the run is finishing"));
            return;
        }

        if (offer.Node is not null && !_nonces.ContainsKey(offer.Node) && _proven.Contains(offer.Node)
            && Sender.Path.Address.ToString().Equals(offer.Node, StringComparison.Ordinal))
        {
            // the same node answering a repeated ask of a round it has already answered: nothing new, nothing to refuse
            _log.Debug("Run {0}: node {1} answered an ask it had answered already; ignored", _settings.RunId, offer.Node);
            return;
        }

        if (offer.Node is null || offer.Proof is null || !_nonces.Remove(offer.Node, out var nonce)
            || !ClusterProof.Verify(_settings.DataPlane.Secret.Span, _settings.RunId, offer.Node, nonce, offer.Proof)
            || !Sender.Path.Address.ToString().Equals(offer.Node, StringComparison.Ordinal))
        {
            _log.Warning("Run {0}: node {1} failed the cluster secret check; it gets no workers and is downed", _settings.RunId, offer.Node);
            _subscriber.Tell(new TrainingDirector.Notice($"node {offer.Node} does not hold the cluster's secret (MOCO_CLUSTER_SECRET): refused and downed"));
            Akka.Cluster.Cluster.Get(Context.System).Down(Sender.Path.Address);
            return;
        }

        _proven.Add(offer.Node);
        _roster.Offer(offer.Node, Sender, offer.Devices, offer.DataPlane, _started ? 0 : offer.Held);
        _log.Info("Run {0}: node {1} offers {2} device(s){3}", _settings.RunId, offer.Node, offer.Devices,
            offer.Held > 0 ? $" and holds {offer.Held} worker(s) of the run that outlived its previous director" : "");
        if (offer.DataPlane != _settings.Backend)
        {
            // one generation has one data plane: NCCL ranks and TCP ring ranks cannot reach each other
            _subscriber.Tell(new TrainingDirector.Notice($"node {offer.Node} offers {offer.Devices} device(s) on the {Plane(offer.DataPlane)}, this run moves tensors "
                + $"over the {Plane(_settings.Backend)}: not taken (give every node the same moco.data-plane.backend and moco.host.device)"));
            return;
        }

        TryStartElastic();
    }

    /// <summary>Starts an elastic run once this node's and the offered devices reach the configured minimum.</summary>
    private void TryStartElastic()
    {
        if (!_awaitingMinimum || !_stateKnown)
        {
            return;
        }

        int offered = _settings.Devices + _roster.Offered(_settings.Backend, DateTime.UtcNow);
        if (offered < _settings.MinWorkers)
        {
            _subscriber.Tell(new TrainingDirector.Notice($"waiting for workers: {offered} of the {_settings.MinWorkers} required are offered"));
            return;
        }

        if (_state.Generation > 0 && !ResumedRunMayStart())
        {
            return;
        }

        _awaitingMinimum = false;
        StartWorkers();
    }

    private void HandleStartFailed(NodeAgent.StartFailed failed)
    {
        Quarantine(failed.Node, failed.Error);
        // every rank the node was to start (or hand over) fails: one failure would leave the others' replies awaited
        var ranks = Enumerable.Range(0, _slots.Count).Where(r => _slots[r].Node == failed.Node && _slots[r].Agent is not null && _slots[r].Ref.IsNobody()).ToList();
        foreach (int rank in ranks)
        {
            HandleWorkerFailed(new Worker.WorkerFailed(rank, "starting", -1, -1, -1, $"node {failed.Node} could not start its workers: {failed.Error}", FirstFailure: rank == ranks[0]));
        }
    }

    /// <summary>A node hosting workers is unreachable or gone: each of its workers failed.</summary>
    private void HandleNodeLost(string node, string how)
    {
        _roster.Lost(node); // until it offers again
        if (_awaitingMinimum)
        {
            Self.Tell(RetryStart.Instance); // once the cluster state no longer lists it
        }

        for (int r = 0; r < _slots.Count; r++)
        {
            if (_slots[r].Node == node && _slots[r].Agent is not null && !_finishing)
            {
                var lost = _slots[r];
                if (!lost.Ref.IsNobody())
                {
                    Context.Unwatch(lost.Ref);
                }

                _slots[r] = lost with { Ref = ActorRefs.Nobody };
                HandleWorkerFailed(new Worker.WorkerFailed(r, "running", -1, -1, -1, $"node {node} is {how}", FirstFailure: true));
            }
        }
    }

    /// <summary>
    /// A node's remoting connection closed. While the run's collectives are intact this may be a blip (Akka connects
    /// again, and its failure detector decides). Once a rank of the exchange has failed, the run waits for nobody:
    /// a closed connection and a broken collective mean that node's process is gone (a SIGKILL, an OOM kill, a lost
    /// pod), and waiting for the failure detector to mark it unreachable would add its seconds to every recovery. If
    /// the node was alive after all, it is quarantined like any failed node and offers its devices again.
    /// </summary>
    private void HandleDisassociated(Akka.Remote.DisassociatedEvent disassociated)
    {
        var node = disassociated.RemoteAddress.ToString();
        if (_finishing || !HoldsLiveRanks(node))
        {
            return;
        }

        _disconnected.Add(node);
        if (_failures.Count > 0 && _pendingRecovery is null)
        {
            DropDisconnected();
        }
    }

    /// <summary>Whether remote <paramref name="node"/> hosts a worker of the current generation that is not gone yet.</summary>
    private bool HoldsLiveRanks(string node) => _slots.Any(s => s.Node == node && s.Agent is not null && !s.Ref.IsNobody());

    /// <summary>Treats every disconnected node that still holds ranks as lost (see <see cref="HandleDisassociated"/>).</summary>
    private void DropDisconnected()
    {
        var lost = _disconnected.Where(HoldsLiveRanks).ToList();
        foreach (var node in lost)
        {
            _disconnected.Remove(node); // before: losing it fails its ranks, which comes back here
            HandleNodeLost(node, "disconnected (its connection closed while the run's collectives failed)");
        }
    }

    /// <summary>Keeps <paramref name="node"/> out of the run for a while that doubles with each of its failures (at most 5 minutes).</summary>
    private void Quarantine(string node, string reason)
    {
        if (_roster.Quarantine(node, _settings.RestartBackoffMin, DateTime.UtcNow) is not var (wait, failures))
        {
            return;
        }

        _log.Warning($"Run {_settings.RunId}: node {node} quarantined for {wait.TotalSeconds:F1} s after failure {failures}: {reason}");
        Timers.StartSingleTimer(_timerKeys++, new AskForOffer(node), wait);
    }

    private static string Plane(DataPlaneKind backend) => backend == DataPlaneKind.Nccl ? "NCCL data plane" : "TCP ring";

    /// <summary>Ask a node for its offer again (its quarantine ended).</summary>
    private sealed record AskForOffer(string Node, bool Retry = false);

    /// <summary>Look again whether a waiting elastic run may start (a member it waited for is gone).</summary>
    private sealed record RetryStart
    {
        public static readonly RetryStart Instance = new();
    }

    /// <summary>The time a member had to prove it holds the cluster's secret is up.</summary>
    private sealed record ProofDeadline(string Node);
}
