using Akka.Actor;
using Akka.Event;
using MoCo.Actors.Run;

namespace MoCo.Actors.Training;

/// <summary>
/// Exchanges with the workers (one awaited reply per rank) and with the run recorder (each command acknowledged in
/// order, within the journal timeout), and the continuations that wait for stops and writes.
/// </summary>
public sealed partial class TrainingDirectorActor
{
    private void HandleAck(RunRecorder.Ack ack)
    {
        _recordsAnswered++;
        _state = ack.State; // folded once, by the recorder
        if (_afterAck.Count > 0)
        {
            _afterAck.Dequeue()();
        }
    }

    private void HandleRejected(RunRecorder.Rejected rejected)
    {
        _recordsAnswered++;
        if (_afterAck.Count > 0)
        {
            _afterAck.Dequeue();
        }

        if (rejected.Command is RunRecorder.FailRun failRun)
        {
            Finish(new TrainingDirector.RunFailed(_settings.RunId, $"{failRun.Reason} (the journal refused to record the failure: {rejected.Reason})", Recorded: false));
            return;
        }

        if (_finishing)
        {
            return;
        }

        _finishing = true;
        _group?.Abort();
        StopWorkers();
        FinishUnrecorded($"the run journal refused {rejected.Command.GetType().Name}: {rejected.Reason}");
    }

    private void HandleJournalTimeout(JournalTimeout timeout)
    {
        if (_finished || _recordsAnswered >= timeout.Sequence)
        {
            return;
        }

        _finishing = true;
        _group?.Abort();
        StopWorkers();
        FinishUnrecorded($"the run journal did not acknowledge {timeout.Command} within {_settings.JournalTimeout.TotalSeconds:F0} s; "
            + $"check the journal (journal.db in {_settings.RunDirectory}, or the PostgreSQL server)");
    }

    /// <summary>Waits for one reply (or failure) from each of <paramref name="ranks"/>, then runs <paramref name="then"/> (or handles the failures).</summary>
    private void AwaitReplies(Type reply, IEnumerable<int> ranks, Action then)
    {
        _awaitedReply = reply;
        _outstanding.Clear();
        _failures.Clear();
        foreach (int r in ranks)
        {
            _outstanding.Add(r);
        }

        _afterAllReplies = then;
    }

    /// <summary>
    /// Marks <paramref name="rank"/>'s reply of kind <paramref name="reply"/> (null: a failure, which answers any
    /// exchange); once every expected reply is in, continues or handles the failures. A reply of another kind belongs to
    /// an exchange that a membership change has replaced (a checkpoint copy answered after a new generation began to
    /// form): it is not counted.
    /// </summary>
    private void Arrive(int rank, Type? reply)
    {
        if (reply is not null && reply != _awaitedReply)
        {
            _log.Debug("Run {0}: {1} from rank {2} while waiting for {3}: not counted", _settings.RunId, reply.Name, rank, _awaitedReply?.Name ?? "nothing");
            return;
        }

        if (_finishing || !_outstanding.Remove(rank) || _outstanding.Count > 0)
        {
            return;
        }

        var then = _afterAllReplies;
        _afterAllReplies = null;
        if (_failures.Count > 0)
        {
            OnGroupFailure();
            return;
        }

        then?.Invoke();
    }

    /// <summary>
    /// Runs <paramref name="then"/> once no worker is stopping and no checkpoint write is pending, after the continuations queued
    /// before it. A queue, not one slot: an interrupt that arrives while a recovery waits for its stops queues the
    /// run's end behind the recovery's step (which then finds the run finishing and does nothing); a slot would let
    /// the later one replace the earlier, and the run would wait forever for an end nobody calls.
    /// </summary>
    private void AfterStopsAndWrites(Action then)
    {
        _afterStopsAndWrites.Enqueue(then);
        CheckStopsAndWrites();
    }

    private void CheckStopsAndWrites()
    {
        // a continuation may stop workers or write again: the next one waits for those too
        while (_afterStopsAndWrites.Count > 0 && _stopping.Count == 0 && _pendingWrites == 0)
        {
            _afterStopsAndWrites.Dequeue()();
        }
    }

    /// <summary>Sends <paramref name="command"/> to the recorder; <paramref name="then"/> runs once it is acknowledged.</summary>
    private void Record(RunRecorder.ICommand command, Action then)
    {
        _afterAck.Enqueue(then);
        _recorder.Tell(command);
        _recordsSent++;
        Timers.StartSingleTimer(_timerKeys++, new JournalTimeout(_recordsSent, command.GetType().Name), _settings.JournalTimeout);
    }

    /// <summary>Records <paramref name="commands"/> in order; <paramref name="then"/> runs after the last acknowledgement (at once when there are none).</summary>
    private void RecordAll(IReadOnlyList<RunRecorder.ICommand> commands, Action then)
    {
        if (commands.Count == 0)
        {
            then();
            return;
        }

        for (int i = 0; i < commands.Count; i++)
        {
            Record(commands[i], i == commands.Count - 1 ? then : static () => { });
        }
    }

    /// <summary>The journal command number <paramref name="Sequence"/> is due (sent to self).</summary>
    private sealed record JournalTimeout(long Sequence, string Command);
}
