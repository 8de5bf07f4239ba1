using Akka.Actor;
using Akka.Event;
using MoCo.Actors.Nodes;
using MoCo.Actors.Run;
using MoCo.Actors.Workers;
using MoCo.Model.Checkpoints;

namespace MoCo.Actors.Training;

/// <summary>
/// Failures and the run's end: a worker's failure or stop, the recovery that RecoveryPolicy plans, an interrupt, and
/// how the run finishes (docs/architecture.md, section 4).
/// </summary>
public sealed partial class TrainingDirectorActor
{
    private void HandleWorkerFailed(Worker.WorkerFailed failed)
    {
        _failures.Add(failed);
        if (_pendingRecovery is not null)
        {
            // a recovery is already under way (the rank was stopping, or failed again while idle): it re-creates it
            _failures.Clear();
            return;
        }

        DropDisconnected();
        if (_pendingRecovery is not null)
        {
            return; // losing a disconnected node ended the exchange: its recovery took this failure too
        }

        if (!_outstanding.Contains(failed.Rank) && _outstanding.Count == 0)
        {
            // a failure outside any exchange: handle it now
            OnGroupFailure();
            return;
        }

        Arrive(failed.Rank, null);
    }

    private void HandleInterrupt(TrainingDirector.Interrupt _)
    {
        if (_interruptRequested || _finishing)
        {
            return;
        }

        _interruptRequested = true;
        _subscriber.Tell(new TrainingDirector.Notice("interrupt requested: stopping at the end of the current chunk of steps"));
        if (_pendingRecovery is not null)
        {
            // no chunk is running: a recovery is waiting for its backoff
            _pendingRecovery = null;
            _finishing = true;
            StopWorkers();
            AfterStopsAndWrites(() => Finish(new TrainingDirector.Interrupted(_settings.RunId, _globalStep, _lastCheckpoint)));
        }
    }

    private void HandleTerminated(Terminated terminated)
    {
        if (_stopping.Remove(terminated.ActorRef))
        {
            CheckStopsAndWrites();
            return;
        }

        if (_finished)
        {
            return;
        }

        var cause = _lastChildFailure is { } e ? $": {e.GetType().Name}: {e.Message}" : string.Empty;
        if (terminated.ActorRef.Equals(_recorder))
        {
            _finishing = true;
            _group?.Abort();
            StopWorkers();
            FinishUnrecorded($"the run recorder stopped{cause}; check that the run journal in {_settings.RunDirectory} is readable and writable");
            return;
        }

        if (terminated.ActorRef.Equals(_checkpointer))
        {
            Fail($"the checkpointer stopped{cause}");
            return;
        }

        int rank = _slots.FindIndex(s => s.Ref.Equals(terminated.ActorRef));
        if (rank < 0 || _finishing)
        {
            return;
        }

        // a worker stopped without reporting (its actor threw, or its node is gone): treat it as that rank's failure
        _group?.ReportFailure(rank);
        _slots[rank] = _slots[rank] with { Ref = ActorRefs.Nobody };
        HandleWorkerFailed(new Worker.WorkerFailed(rank, "running", -1, -1, -1, $"the worker actor stopped unexpectedly{cause}", FirstFailure: true));
    }

    /// <summary>
    /// Every worker of the exchange has answered and some failed: stop the rank that failed first (the others failed
    /// because the group was aborted; their steps were atomic), then re-create it after a backoff, or fail the run
    /// when the failures keep coming.
    /// </summary>
    private void OnGroupFailure()
    {
        if (_finishing)
        {
            return;
        }

        var failures = _failures.ToList();
        _failures.Clear();
        RecordLosses(null, static () => { }); // the steps committed before the failure stay in the history
        var ranks = _slots.Select((slot, r) => new RankFacts(slot.Agent is not null, _graceful.Contains(slot.Node), slot.Ref.IsNobody(),
            _done.TryGetValue(r, out var done) ? done.GlobalStep : null)).ToList();
        var recovery = RecoveryPolicy.Plan(failures, ranks, _failuresInARow, _settings.MaxWorkerRestarts, _settings.RestartBackoffMin,
            _settings.RestartBackoffMax, _globalStep, _settings.Elastic);
        _failuresInARow = recovery.FailuresInARow;
        var cause = recovery.Cause;
        var where = cause.GlobalStep < 0 ? string.Empty : $" at epoch {cause.Epoch}, step {cause.StepInEpoch} (global step {cause.GlobalStep})";
        var causeId = cause.Rank < _slots.Count ? _slots[cause.Rank].Id : WorkerName(cause.Rank);
        var reason = recovery.CauseIsLeave
            ? $"rank {cause.Rank} ({causeId}): {cause.Error}"
            : $"rank {cause.Rank} ({causeId}) failed while {cause.Operation}{where}: {cause.Error}";
        if (recovery.GiveUp)
        {
            var checkpoint = _lastCheckpoint ?? _settings.ResumeFrom;
            Fail($"{reason}. Gave up after {_settings.MaxWorkerRestarts} re-creation(s) in a row without progress (max-worker-restarts); "
                + (checkpoint is null ? "no checkpoint was written" : $"the latest checkpoint is {checkpoint}"));
            return;
        }

        var failedRanks = recovery.Failed;
        var survivors = recovery.Survivors;
        var from = survivors.Count > 0 ? $"rank {survivors[0]}" : "the latest checkpoint";
        var remote = recovery.Remote(ranks).ToList();
        var local = recovery.Local(ranks).ToList();
        var plan = recovery.Graceful
            ? $"rank(s) {string.Join(", ", remote)} leave the run; the others go on"
            : (local.Count > 0 ? $"re-creating rank(s) {string.Join(", ", local)} from {from}" : "")
                + (remote.Count > 0 ? $"{(local.Count > 0 ? "; " : "")}rank(s) {string.Join(", ", remote)} leave the run, their node quarantined" : "")
                + $" in {recovery.Delay.TotalSeconds:F1} s (attempt {_failuresInARow} of {_settings.MaxWorkerRestarts})";
        _log.Warning($"Run {_settings.RunId}: {reason}; {plan}");
        _subscriber.Tell(new TrainingDirector.Notice($"{reason}; {plan}"));

        foreach (int r in failedRanks)
        {
            var slot = _slots[r];
            _leaveReasons[slot.Id] = reason;
            if (slot.Agent is not null)
            {
                // a remote worker is not re-created in place: its node leaves the run, quarantined, and may offer again
                if (_graceful.Contains(slot.Node))
                {
                    _roster.Forget(slot.Node);
                }
                else
                {
                    Quarantine(slot.Node, reason);
                }

                if (!slot.Ref.IsNobody())
                {
                    Context.Unwatch(slot.Ref);
                }

                slot.Agent.Tell(new NodeAgent.StopWorkers(_settings.RunId));
            }
            else if (!slot.Ref.IsNobody())
            {
                _stopping.Add(slot.Ref);
                Context.Stop(slot.Ref);
            }
        }

        _pendingRecovery = reason;
        Timers.StartSingleTimer(_timerKeys++, new RecreateWorkers(failedRanks, survivors, recovery.SurvivorStep), recovery.Delay);
    }

    private void HandleRecreateWorkers(RecreateWorkers recreate)
    {
        if (_pendingRecovery is null || _finishing)
        {
            return; // an interrupt or a failure of the run ended the recovery during its backoff
        }

        // wait for the stopped workers' names and the pending writes
        AfterStopsAndWrites(() =>
        {
            if (_pendingRecovery is null || _finishing)
            {
                return;
            }

            _pendingRecovery = null;
            var (failed, survivors, survivorStep) = recreate;
            // remote failed slots leave the world; local ones are re-created in place
            var dropped = failed.Where(r => _slots[r].Agent is not null).ToHashSet();
            var kept = Enumerable.Range(0, _slots.Count).Where(r => !dropped.Contains(r)).ToList();
            var renumber = kept.Select((oldRank, newRank) => (oldRank, newRank)).ToDictionary(p => p.oldRank, p => p.newRank);
            _slots = kept.Select(r => _slots[r]).ToList();
            var localFailed = failed.Where(r => !dropped.Contains(r)).Select(r => renumber[r]).ToList();
            var survivorRanks = survivors.Select(r => renumber[r]).ToList();
            int world = _slots.Count;
            if (!_settings.Elastic)
            {
                _group!.StartGeneration(_state.Generation + 1, world);
            }

            WorkerStart start;
            string source;
            var created = localFailed;
            if (survivorRanks.Count > 0)
            {
                start = WorkerStart.FromPeer.Instance;
                source = $"rank {survivors[0]}";
                _globalStep = survivorStep;
            }
            else
            {
                // nobody survived: every rank restarts from the latest valid checkpoint (or the run's start)
                var latest = CheckpointDirectory.Latest(_settings.RunDirectory, _settings.RunId).Found?.Path ?? _settings.ResumeFrom;
                start = latest is null ? WorkerStart.Fresh.Instance : new WorkerStart.FromCheckpoint(latest);
                source = latest is null ? "the run's initial state (no checkpoint yet)" : $"checkpoint {latest}";
            }

            CreateLocalWorkers(created, start, world);
            int sourceRank = survivorRanks.Count > 0 ? survivorRanks[0] : (_settings.Elastic && world > created.Count ? 0 : -1);
            if (created.Count == 0)
            {
                FormGeneration(created, sourceRank, source);
                return;
            }

            AwaitReplies(typeof(Worker.Ready), created, () => FormGeneration(created, sourceRank, source));
        });
    }

    /// <summary>Re-create the failed workers (sent to self after the backoff).</summary>
    private sealed record RecreateWorkers(IReadOnlyList<int> Failed, IReadOnlyList<int> Survivors, long SurvivorStep);

    /// <summary>Stops the workers and records <c>RunFailed</c>; the subscriber hears <see cref="TrainingDirector.RunFailed"/> once it is persisted.</summary>
    private void Fail(string reason)
    {
        if (_finishing)
        {
            return;
        }

        _finishing = true;
        _log.Error("Run {0} failed: {1}", _settings.RunId, reason);
        _group?.Abort();
        StopWorkers();
        Record(new RunRecorder.FailRun(reason), () => Finish(new TrainingDirector.RunFailed(_settings.RunId, reason, Recorded: true)));
    }

    private void FinishUnrecorded(string reason)
    {
        _log.Error("Run {0} cannot go on: {1}", _settings.RunId, reason);
        Finish(new TrainingDirector.RunFailed(_settings.RunId, reason, Recorded: false));
    }

    private void Finish(object message)
    {
        if (_finished)
        {
            return;
        }

        _finished = true;
        _finishing = true;
        foreach (var node in _roster.Nodes)
        {
            node.Agent.Tell(_handOver && node.InRun ? new NodeAgent.HandOver(_settings.RunId) : new NodeAgent.RunEnded(_settings.RunId, message.GetType().Name));
        }

        if (_handOver)
        {
            _subscriber.Tell(new TrainingDirector.Notice("a standby trainer is up: it takes the run over with the workers of the other nodes"));
        }

        _subscriber.Tell(message);
        Context.Stop(Self);
    }

    private void StopWorkers(bool remoteToo = true)
    {
        // a worker already stopping (a recovery's) stays watched: its Terminated is what the recovery's or the end's
        // continuation waits for, and unwatching it would leave that wait without end; the workers of other nodes stay
        // when a standby takes the run over
        foreach (var slot in _slots.Where(s => !s.Ref.IsNobody() && !_stopping.Contains(s.Ref) && (remoteToo || s.Agent is null)))
        {
            Context.Unwatch(slot.Ref);
            Context.Stop(slot.Ref);
        }
    }
}
