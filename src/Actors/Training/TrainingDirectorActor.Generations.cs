using Akka.Actor;
using Akka.Event;
using MoCo.Actors.Collectives;
using MoCo.Actors.Collectives.Nccl;
using MoCo.Actors.Nodes;
using MoCo.Actors.Queue;
using MoCo.Actors.Run;
using MoCo.Actors.Workers;

namespace MoCo.Actors.Training;

/// <summary>
/// Forming a generation: the workers (local, and remote through their nodes' agents), their preparation on the data
/// plane, the journal's record of the membership and the generation, the join and its cursor (docs/architecture.md,
/// section 4).
/// </summary>
public sealed partial class TrainingDirectorActor
{
    private void StartWorkers()
    {
        var holding = _state.Generation > 0 ? _roster.Holding(_settings.Devices, _settings.Config.BnSplits, _settings.Backend) : [];
        if (holding.Count > 0)
        {
            TakeOver(holding);
            return;
        }

        int generation = _state.Generation + 1;
        _group = _settings.Elastic ? null : new WorkerGroup(_settings.Devices, _settings.CollectiveTimeout, generation);
        var local = Enumerable.Range(0, _settings.Devices).ToList();
        var remote = _settings.Elastic ? PlanRemote(_settings.Devices) : [];
        int world = local.Count + remote.Sum(r => r.Ranks.Count);
        _slots = [];
        CreateLocalWorkers(local, _journalCheckpoint is { } journaled ? new WorkerStart.FromCheckpoint(journaled) : WorkerStart.Fresh.Instance, world);
        foreach (var (node, ranks) in remote)
        {
            StartRemoteWorkers(node, ranks, world);
        }

        var all = Enumerable.Range(0, world).ToList();
        // every replica of an elastic run takes rank 0's state: the remote ones start empty
        int source = remote.Count > 0 ? 0 : -1;
        AwaitReplies(typeof(Worker.Ready), all, () => FormGeneration(all, source, "the run's start"));
    }

    /// <summary>Local workers at <paramref name="ranks"/> (the slot list grows or the slot is replaced).</summary>
    private void CreateLocalWorkers(IEnumerable<int> ranks, WorkerStart start, int world)
    {
        foreach (int r in ranks)
        {
            // torch threads split over this node's devices (WorkerActor knows the world from the group or its join)
            var worker = Context.Watch(Context.ActorOf(WorkerActor.Props(_settings, r, _group, start, _checkpointer, _queueKeeper), WorkerName(r)));
            PutSlot(r, new Slot(worker, WorkerName(r), _settings.Node, null));
        }
    }

    /// <summary>Puts <paramref name="slot"/> at <paramref name="rank"/>: replaces the slot there, or appends the next one.</summary>
    private void PutSlot(int rank, Slot slot)
    {
        if (rank < _slots.Count)
        {
            _slots[rank] = slot;
        }
        else
        {
            _slots.Add(slot);
        }
    }

    /// <summary>Asks <paramref name="node"/>'s agent for workers at <paramref name="ranks"/>; they start empty and take rank 0's state.</summary>
    private void StartRemoteWorkers(RosterNode node, IReadOnlyList<int> ranks, int world)
    {
        int incarnation = ++_incarnation;
        node.Agent.Tell(new NodeAgent.StartWorkers(_settings.RunId, _settings.Config.ToJson(), ranks, world, incarnation));
        node.InRun = true;
        for (int i = 0; i < ranks.Count; i++)
        {
            // the worker's reference arrives with its Ready; until then the slot holds the agent
            PutSlot(ranks[i], new Slot(ActorRefs.Nobody, $"{node.Address}/worker-{incarnation}-{i}", node.Address, node.Agent));
        }
    }

    /// <summary>The remote nodes (offered, not quarantined, not in the run) that fit beside <paramref name="taken"/> workers, with their ranks.</summary>
    private List<(RosterNode Node, IReadOnlyList<int> Ranks)> PlanRemote(int taken) =>
        _roster.Plan(taken, _settings.Config.BnSplits, _settings.Backend, DateTime.UtcNow);

    private void HandleReady(Worker.Ready ready)
    {
        _ready[ready.Rank] = ready;
        if (ready.Rank < _slots.Count)
        {
            _slots[ready.Rank] = _slots[ready.Rank] with { Device = ready.Device };
        }
        if (ready.Rank < _slots.Count && _slots[ready.Rank].Agent is not null && _slots[ready.Rank].Ref.IsNobody())
        {
            _slots[ready.Rank] = _slots[ready.Rank] with { Ref = Context.Watch(Sender) };
        }

        Arrive(ready.Rank, typeof(Worker.Ready));
    }

    /// <summary>
    /// Forms the next generation of the current slots. Over the network (an elastic run, or any run on NCCL) every
    /// worker is first prepared: on the TCP ring each binds its listener and the endpoints are collected; on NCCL rank 0
    /// creates the generation's unique id. Then the membership and the generation (its ranks and the step it resumes
    /// at) are journaled, never the endpoints or the id, and every worker joins it with the endpoints or the id,
    /// taking <paramref name="sourceRank"/>'s state when that is not negative.
    /// </summary>
    private void FormGeneration(IReadOnlyList<int> newRanks, int sourceRank, string source)
    {
        _forming = true;
        if (sourceRank < 0)
        {
            var reference = _ready[newRanks[0]];
            var disagreeing = newRanks.Select(r => _ready[r]).FirstOrDefault(r => r.GlobalStep != reference.GlobalStep);
            if (disagreeing is not null)
            {
                Fail($"the workers start at different steps (rank {reference.Rank} at {reference.GlobalStep}, rank {disagreeing.Rank} at {disagreeing.GlobalStep})");
                return;
            }

            _stepsPerEpoch = reference.StepsPerEpoch;
            _globalStep = reference.GlobalStep;
            _epoch = reference.Epoch;
        }
        else if (_ready.TryGetValue(sourceRank, out var sourceReady) && newRanks.Contains(sourceRank))
        {
            // the source itself is new (a run's start): its cursor is the run's
            _stepsPerEpoch = sourceReady.StepsPerEpoch;
            _globalStep = sourceReady.GlobalStep;
            _epoch = sourceReady.Epoch;
        }

        int generation = _state.Generation + 1;
        int world = _slots.Count;
        var all = Enumerable.Range(0, world).ToList();
        if (_group is not null && _group.Generation != generation)
        {
            // a single process: the group keeps the generation's failure bookkeeping, also when NCCL moves the tensors
            _group.StartGeneration(generation, world);
        }

        if (_settings.Elastic || _settings.Backend == DataPlaneKind.Nccl)
        {
            _prepared.Clear();
            AwaitReplies(typeof(Worker.Prepared), all, () => GenerationPrepared(generation, newRanks, sourceRank, source, world));
            for (int r = 0; r < world; r++)
            {
                _slots[r].Ref.Tell(new Worker.PrepareGeneration(generation, r));
            }

            return;
        }

        RecordGeneration(generation, newRanks, sourceRank, source, null, null);
    }

    private void HandlePrepared(Worker.Prepared prepared)
    {
        if (prepared.Generation != _state.Generation + 1)
        {
            return; // a reply for a generation that was never formed (a failure interrupted its preparation)
        }

        _prepared[prepared.Rank] = prepared;
        Arrive(prepared.Rank, typeof(Worker.Prepared));
    }

    /// <summary>Every worker is prepared: the generation goes on the data plane they all chose, with the endpoints or rank 0's NCCL id.</summary>
    private void GenerationPrepared(int generation, IReadOnlyList<int> newRanks, int sourceRank, string source, int world)
    {
        var prepared = Enumerable.Range(0, world).Select(r => _prepared[r]).ToList();
        _prepared.Clear(); // the id lives only as long as it takes to reach the workers
        var nccl = prepared.Where(p => p.DataPlane == DataPlaneKind.Nccl).Select(p => p.Rank).ToList();
        if (nccl.Count > 0 && nccl.Count < world)
        {
            Fail($"generation {generation} would mix data planes: rank(s) {string.Join(", ", nccl)} use NCCL, rank(s) "
                + $"{string.Join(", ", prepared.Where(p => p.DataPlane != DataPlaneKind.Nccl).Select(p => p.Rank))} the TCP ring; "
                + "every node of a run must choose the same moco.data-plane.backend and moco.host.device");
            return;
        }

        if (nccl.Count == world)
        {
            var id = prepared[0].NcclUniqueId;
            if (id is null || id.Length != NcclUniqueId.Bytes)
            {
                Fail($"generation {generation} is on NCCL but rank 0 sent {(id is null ? "no unique id" : $"a unique id of {id.Length} bytes, not {NcclUniqueId.Bytes}")}");
                return;
            }

            RecordGeneration(generation, newRanks, sourceRank, source, null, id);
            return;
        }

        var missing = prepared.FirstOrDefault(p => string.IsNullOrEmpty(p.Endpoint));
        if (missing is not null)
        {
            Fail($"generation {generation} is on the TCP ring but rank {missing.Rank} sent no endpoint");
            return;
        }

        RecordGeneration(generation, newRanks, sourceRank, source, prepared.Select(p => p.Endpoint!).ToList(), null);
    }

    /// <summary>
    /// Journals the membership and generation <paramref name="generation"/>, then has every worker join it with the ring's
    /// <paramref name="endpoints"/> or NCCL's <paramref name="ncclUniqueId"/> (neither is journaled: both name sockets of
    /// running processes, which a replay would find stale).
    /// </summary>
    private void RecordGeneration(int generation, IReadOnlyList<int> newRanks, int sourceRank, string source, IReadOnlyList<string>? endpoints, byte[]? ncclUniqueId)
    {
        var ranks = Ranks();
        var ids = ranks.Select(w => w.WorkerId).ToHashSet(StringComparer.Ordinal);
        var commands = new List<RunRecorder.ICommand>();
        foreach (var member in _state.Members.Keys.Where(id => !ids.Contains(id)))
        {
            commands.Add(new RunRecorder.LeaveWorker(member, _leaveReasons.GetValueOrDefault(member) ?? $"not part of the world of {ranks.Count} worker(s)"));
        }

        foreach (var worker in ranks)
        {
            if (_state.Members.ContainsKey(worker.WorkerId) && _leaveReasons.TryGetValue(worker.WorkerId, out var reason))
            {
                // a re-created worker keeps its id: the history shows it leaving and joining again
                commands.Add(new RunRecorder.LeaveWorker(worker.WorkerId, reason));
                commands.Add(new RunRecorder.JoinWorker(worker));
            }
            else if (!_state.Members.ContainsKey(worker.WorkerId))
            {
                commands.Add(new RunRecorder.JoinWorker(worker));
            }
        }

        commands.Add(new RunRecorder.StartGeneration(ranks, _globalStep));
        _leaveReasons.Clear();
        RecordAll(commands, () =>
        {
            if (_state.Generation != generation)
            {
                Fail($"the journal numbered the generation {_state.Generation}, the workers' group is at {generation}");
                return;
            }

            int world = _slots.Count;
            _dataPlane = ncclUniqueId is not null ? StepsRecordedPlanes.Nccl : endpoints is not null ? StepsRecordedPlanes.TcpRing : StepsRecordedPlanes.InProcess;
            // the keeper hears this node's replicas (remote ones have no keeper reference: their reports would not fit a frame)
            _queueKeeper.Tell(new QueueKeeper.StartGeneration(generation, _slots.Count(s => s.Agent is null)));
            _joined.Clear();
            AwaitReplies(typeof(Worker.Joined), Enumerable.Range(0, world), () => GenerationJoined(newRanks, sourceRank, source));
            for (int r = 0; r < world; r++)
            {
                _slots[r].Ref.Tell(new Worker.JoinGeneration(generation, sourceRank, r, world, endpoints, ncclUniqueId));
            }
        });
    }

    private void HandleJoined(Worker.Joined joined)
    {
        _joined[joined.Rank] = joined;
        Arrive(joined.Rank, typeof(Worker.Joined));
    }

    private void GenerationJoined(IReadOnlyList<int> newRanks, int sourceRank, string source)
    {
        _forming = false;
        var first = _joined[0];
        var disagreeing = _joined.Values.FirstOrDefault(j => j.GlobalStep != first.GlobalStep || j.Epoch != first.Epoch);
        if (disagreeing is not null)
        {
            Fail($"after joining generation {first.Generation} the workers disagree (rank 0 at step {first.GlobalStep}, rank {disagreeing.Rank} at step {disagreeing.GlobalStep})");
            return;
        }

        _globalStep = first.GlobalStep;
        _epoch = first.Epoch;
        if (!_started)
        {
            _started = true;
            if (_settings.ResumeFrom is not null || _journalCheckpoint is not null)
            {
                _checkpointedStep = _globalStep;
            }

            var starting = new TrainingDirector.RunStarting(_settings.RunId, _settings.ResumeFrom is not null || _tookOver || _journalCheckpoint is not null, _slots.Count, _state.Generation,
                _globalStep, first.Epoch, first.StepInEpoch, _stepsPerEpoch);
            _subscriber.Tell(starting);
            _tensorBoard.Tell(starting);
        }
        else
        {
            _log.Info("Run {0}: generation {1} formed at step {2}; rank(s) {3} re-created from {4}", _settings.RunId, _state.Generation, _globalStep, string.Join(", ", newRanks), source);
            var formed = new TrainingDirector.GenerationFormed(_state.Generation, _slots.Count, _globalStep, newRanks, source);
            _subscriber.Tell(formed);
            _tensorBoard.Tell(formed);
        }

        if (_owedCheckpoint is { } owed)
        {
            _owedCheckpoint = null;
            if (owed.Step == _globalStep)
            {
                TakeCheckpoint(owed.KnnTop1Percent); // then the next chunk
                return;
            }
        }

        if (_epochDone is { } pending)
        {
            // the chunk that ended an epoch was cut short by the membership change after rank 0 finished it: when the
            // new generation resumes at that epoch's end, the epoch is done and is recorded (metrics, journal,
            // checkpoint) now; when it resumes earlier (from a checkpoint), the epoch is redone and reported again
            _epochDone = null;
            if (pending.GlobalStep == _globalStep)
            {
                EndEpoch(pending);
                return;
            }
        }

        NextChunk();
    }

    /// <summary>New nodes offered devices: a new generation with their workers, which take rank 0's state.</summary>
    private void Grow()
    {
        var plan = PlanRemote(_slots.Count);
        int world = _slots.Count + plan.Sum(p => p.Ranks.Count);
        foreach (var (node, ranks) in plan)
        {
            StartRemoteWorkers(node, ranks, world);
        }

        var created = plan.SelectMany(p => p.Ranks).ToList();
        _subscriber.Tell(new TrainingDirector.Notice($"node(s) {string.Join(", ", plan.Select(p => p.Node.Address))} join the run: "
            + $"{world} worker(s) from step {_globalStep}"));
        AwaitReplies(typeof(Worker.Ready), created, () => FormGeneration(created, 0, "rank 0"));
    }

    private List<WorkerInfo> Ranks()
    {
        return _slots.Select(s => new WorkerInfo(s.Id, s.Node, s.Device)).ToList();
    }

    /// <summary>One rank of the current or forming generation: its worker, its id in the journal, its node, and the agent that created it (null: this node).</summary>
    // Device: what the slot's worker reported in its Ready (cpu until then); it moves with the slot when ranks shift
    private sealed record Slot(IActorRef Ref, string Id, string Node, IActorRef? Agent, string Device = "cpu");
}
