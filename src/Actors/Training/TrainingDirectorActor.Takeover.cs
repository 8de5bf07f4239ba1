using Akka.Actor;
using Akka.Cluster;
using Akka.Event;
using MoCo.Actors.Collectives;
using MoCo.Actors.Nodes;
using MoCo.Actors.Run;
using MoCo.Actors.Workers;

namespace MoCo.Actors.Training;

/// <summary>
/// The take-over of a run whose director was lost (its process killed, or stopped while a standby trainer is Up): the
/// director of a standby trainer adopts the workers that outlived its predecessor on other nodes, journals what they
/// carry that the lost director had not, and forms the next generation at their step (docs/architecture.md, section 4).
/// </summary>
public sealed partial class TrainingDirectorActor
{
    /// <summary>
    /// The run's previous director was lost with its process, and nodes kept their workers alive for this one: every
    /// replica holds the run's state at the step it last completed, which is at least as far as the journal. This
    /// director's own workers (ranks 0..) start empty, the held workers are taken over as the next ranks, any other
    /// offered node gets new workers, and the generation forms at the furthest replica's step, whose state every rank
    /// takes. Nothing trained is lost but the step the loss interrupted.
    /// </summary>
    private void TakeOver(IReadOnlyList<RosterNode> holding)
    {
        _tookOver = true;
        _adopted.Clear();
        int next = _settings.Devices;
        var plans = new List<(RosterNode Node, List<int> Ranks)>();
        foreach (var node in holding)
        {
            plans.Add((node, Enumerable.Range(next, node.Held).ToList()));
            next += node.Held;
            node.InRun = true;
        }

        var fresh = PlanRemote(next);
        int world = next + fresh.Sum(r => r.Ranks.Count);
        _slots = [];
        var local = Enumerable.Range(0, _settings.Devices).ToList();
        CreateLocalWorkers(local, WorkerStart.FromPeer.Instance, world);
        foreach (var (node, ranks) in plans)
        {
            node.Agent.Tell(new NodeAgent.AdoptWorkers(_settings.RunId, ranks));
            node.Held = 0;
            foreach (int r in ranks)
            {
                // the slot's id and reference arrive with the worker's Adopted
                PutSlot(r, new Slot(ActorRefs.Nobody, $"{node.Address}/?", node.Address, node.Agent));
            }
        }

        foreach (var (node, ranks) in fresh)
        {
            StartRemoteWorkers(node, ranks, world);
        }

        var created = local.Concat(fresh.SelectMany(f => f.Ranks)).ToList();
        _log.Info("Run {0}: taking the run over from {1} held worker(s) on {2}", _settings.RunId, plans.Sum(p => p.Ranks.Count), string.Join(", ", plans.Select(p => p.Node.Address)));
        AwaitReplies(typeof(Worker.Ready), Enumerable.Range(0, world), () => TakenOver(created));
    }

    private void HandleAdopted(Worker.Adopted adopted)
    {
        if (!_tookOver || _started || adopted.Rank >= _slots.Count || _slots[adopted.Rank].Agent is null)
        {
            return;
        }

        var slot = _slots[adopted.Rank];
        string? problem = TakeoverPlan.Refusal(adopted, Worker.ConfigDigest(_settings.Config));
        if (problem is not null)
        {
            HandleWorkerFailed(new Worker.WorkerFailed(adopted.Rank, "being taken over", -1, -1, -1, $"the worker held by node {slot.Node} cannot be taken over: {problem}", FirstFailure: true));
            return;
        }

        _adopted[adopted.Rank] = adopted;
        _ready[adopted.Rank] = new Worker.Ready(adopted.Rank, adopted.GlobalStep, adopted.Epoch, adopted.StepInEpoch, adopted.StepsPerEpoch, adopted.Device);
        _slots[adopted.Rank] = slot with { Ref = Context.Watch(Sender), Id = $"{slot.Node}/{adopted.Name}", Device = adopted.Device };
        Arrive(adopted.Rank, typeof(Worker.Ready));
    }

    /// <summary>
    /// Every worker of the take-over answered: the furthest replica is the source, the steps its predecessor ran but did
    /// not journal are journaled with the losses the replica carried, and the generation forms at its step.
    /// </summary>
    private void TakenOver(IReadOnlyList<int> created)
    {
        var decision = TakeoverPlan.Decide(_adopted.Values, _state.LastStep);
        if (decision.Source is not { } source)
        {
            FinishUnrecorded(decision.Refusal ?? "the take-over found no source");
            return;
        }

        _stepsPerEpoch = source.StepsPerEpoch;
        _globalStep = source.GlobalStep;
        _epoch = source.Epoch;
        foreach (var member in _state.Members.Values.Where(m => !_slots.Any(s => s.Id == m.WorkerId && s.Node == m.Node)))
        {
            _leaveReasons[member.WorkerId] = $"lost with the process of the run's previous director; {_settings.Node} took the run over";
        }

        var commands = new List<RunRecorder.ICommand>();
        string carried = "no step to journal";
        if (decision.LossesToJournal.Count > 0)
        {
            string plane = _settings.Backend == DataPlaneKind.Nccl ? StepsRecordedPlanes.Nccl : StepsRecordedPlanes.TcpRing;
            commands.Add(new RunRecorder.RecordSteps(decision.FirstToJournal, decision.LossesToJournal.ToList(), null, null, Math.Max(1, source.Threads), Math.Max(1, source.WorldSize), plane));
            carried = $"steps {decision.FirstToJournal}-{source.GlobalStep - 1} journaled from the losses it carried";
        }

        if (decision.Unrecorded is { } gap)
        {
            _subscriber.Tell(new TrainingDirector.Notice($"the losses of steps {gap.From}-{gap.To} were neither journaled by the previous director nor kept by a replica"));
        }

        var notice = $"took run {_settings.RunId} over at step {source.GlobalStep} from {_adopted.Count} worker(s) that outlived its previous director "
            + $"(rank {source.Rank}, {_slots[source.Rank].Id}, is the source; {carried})";
        _log.Warning("Run {0}: {1}", _settings.RunId, notice);
        _subscriber.Tell(new TrainingDirector.Notice(notice));
        if (TakeoverPlan.EndedAnUnjournaledEpoch(source, _state.LastEpoch?.Epoch) && source.EndedEpoch is { } ended)
        {
            // the replicas ended an epoch the previous director did not journal: it is recorded once the generation has
            // formed at its end (its kNN monitor ran, if at all, on the lost rank 0)
            _epochDone = ended;
            _subscriber.Tell(ended);
        }

        int sourceRank = source.Rank;
        RecordAll(commands, () => FormGeneration(created, sourceRank, $"rank {sourceRank} (a replica that outlived the previous director)"));
    }

    /// <summary>
    /// A run resumed from its journal starts once every member has answered (so that the workers that outlived a lost
    /// director are found and taken over), and never from less than the journal holds: when the journal names a
    /// checkpoint and this trainer was given none (a standby, or a trainer on a new disk) and no worker outlived the
    /// previous director, it starts from the journal's checkpoint where that file is readable here, unchanged, or
    /// refuses without recording anything.
    /// </summary>
    private bool ResumedRunMayStart()
    {
        var cluster = Akka.Cluster.Cluster.Get(Context.System);
        bool unanswered = cluster.State.Members.Any(m => m.Status == MemberStatus.Up && !m.Address.Equals(cluster.SelfAddress)
            && !cluster.State.Unreachable.Contains(m) && !_proven.Contains(m.Address.ToString()));
        if (unanswered)
        {
            return false; // each offer, and each member's loss, asks again
        }

        if (_roster.Holding(_settings.Devices, _settings.Config.BnSplits, _settings.Backend).Count > 0
            || _settings.ResumeFrom is not null || _state.LastCheckpoint is not { } last)
        {
            return true;
        }

        if (_checkpointVerdict?.Path != last.Path)
        {
            // hashed off the actor's thread (a large checkpoint takes seconds); the verdict asks again
            _checkpointVerdict = new CheckpointVerified(last.Path, Pending: true, null);
            string path = last.Path, sha256 = last.Sha256;
            string runId = _settings.RunId;
            Task.Run(() => new CheckpointVerified(path, Pending: false, CheckpointProblem(path, sha256, runId))).PipeTo(Self);
            return false;
        }

        if (_checkpointVerdict.Pending)
        {
            return false;
        }

        string? problem = _checkpointVerdict.Problem;
        if (problem is not null)
        {
            FinishUnrecorded($"run {_settings.RunId} is at step {_state.LastStep} in its journal, and no worker outlived its previous director; "
                + $"this trainer was given no checkpoint, and the journal's last one, {last.Path} (step {last.Step}), cannot be used here ({problem}). "
                + "Continue the run where its run directory is (moco train --continue), or give every trainer the same run directory");
            return false;
        }

        _journalCheckpoint = last.Path;
        _subscriber.Tell(new TrainingDirector.Notice($"no worker outlived the run's previous director: resuming from the journal's checkpoint {last.Path} (step {last.Step})"));
        return true;
    }

    /// <summary>Whether another trainer-role member is Up: a standby, which takes the run over when this director ends unfinished.</summary>
    private bool StandbyUp()
    {
        var cluster = Akka.Cluster.Cluster.Get(Context.System);
        return cluster.State.Members.Any(m => m.HasRole(TrainerRole) && !m.Address.Equals(cluster.SelfAddress) && m.Status == MemberStatus.Up
            && !cluster.State.Unreachable.Contains(m));
    }

    /// <summary>
    /// Why the checkpoint at <paramref name="path"/> cannot be resumed from, or null: it must pass the checkpoint reader's
    /// checks (its SHA-256 trailer over the whole file, its header, run <paramref name="runId"/>) and carry the SHA-256 the
    /// journal recorded (the trailer's, not a hash of the file with its trailer).
    /// </summary>
    private static string? CheckpointProblem(string path, string sha256, string runId)
    {
        try
        {
            var info = MoCo.Model.Checkpoints.CheckpointFile.Verify(path, runId);
            return info.Sha256.Equals(sha256, StringComparison.OrdinalIgnoreCase) ? null : $"its SHA-256 is {info.Sha256}, the journal recorded {sha256}";
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or MoCo.Model.Checkpoints.CheckpointRejectedException)
        {
            return $"{e.GetType().Name}: {e.Message}";
        }
    }

    private void HandleCheckpointVerified(CheckpointVerified verified)
    {
        if (_checkpointVerdict is { Pending: true } pending && pending.Path == verified.Path)
        {
            _checkpointVerdict = verified;
            TryStartElastic();
        }
    }

    /// <summary>The journal's last checkpoint was hashed (sent to self): <paramref name="Problem"/> is null when it is the recorded file; pending while it is hashed.</summary>
    private sealed record CheckpointVerified(string Path, bool Pending, string? Problem);
}
