using System.Collections.Immutable;
using Akka.Actor;
using Akka.Event;
using Akka.Persistence;

namespace MoCo.Actors.Run;

/// <summary>
/// Event-sourced keeper of one run's state (protocol: <see cref="RunRecorder"/>). It only persists,
/// recovers and snapshots: every decision is <see cref="RunState.Apply"/>'s. A command is turned into its event,
/// checked against the state, persisted, then applied; a refused command is answered and nothing is persisted.
/// </summary>
public sealed class RunRecorderActor : ReceivePersistentActor
{
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly string _runId;
    private readonly RunRecorderSettings _settings;
    private readonly TimeProvider _clock;
    private RunState _state = RunState.Empty;

    /// <summary>Creates the recorder of run <paramref name="runId"/>; use <see cref="Props"/>.</summary>
    /// <param name="runId">The run's identity.</param>
    /// <param name="settings">Tuning.</param>
    /// <param name="clock">The source of event timestamps.</param>
    public RunRecorderActor(string runId, RunRecorderSettings settings, TimeProvider clock)
    {
        _runId = runId;
        _settings = settings;
        _clock = clock;

        Recover<SnapshotOffer>(HandleSnapshotOffer);
        Recover<IRunEvent>(HandleRecoveredEvent);
        Recover<RecoveryCompleted>(HandleRecoveryCompleted);

        Command<RunRecorder.StartRun>(HandleStartRun);
        Command<RunRecorder.StartGeneration>(HandleStartGeneration);
        Command<RunRecorder.JoinWorker>(HandleJoinWorker);
        Command<RunRecorder.LeaveWorker>(HandleLeaveWorker);
        Command<RunRecorder.RecordEpoch>(HandleRecordEpoch);
        Command<RunRecorder.RecordCheckpoint>(HandleRecordCheckpoint);
        Command<RunRecorder.CompleteRun>(HandleCompleteRun);
        Command<RunRecorder.RecordSteps>(recorded => PersistChecked(recorded, new StepsRecorded(recorded.FirstStep, recorded.Losses.ToImmutableList(),
            recorded.Digest, recorded.Checksums?.ToImmutableList(), recorded.Threads, recorded.WorldSize, recorded.DataPlane)));
        Command<RunRecorder.FailRun>(HandleFailRun);
        Command<RunRecorder.GetState>(HandleGetState);
        Command<SaveSnapshotSuccess>(HandleSaveSnapshotSuccess);
        Command<SaveSnapshotFailure>(HandleSaveSnapshotFailure);
        Command<DeleteSnapshotsSuccess>(HandleDeleteSnapshotsSuccess);
        Command<DeleteSnapshotsFailure>(HandleDeleteSnapshotsFailure);
    }

    /// <inheritdoc />
    public override string PersistenceId => PersistenceIdFor(_runId);

    /// <summary>The persistence id of run <paramref name="runId"/>'s recorder: <c>run-{runId}</c>.</summary>
    /// <param name="runId">The run's identity.</param>
    public static string PersistenceIdFor(string runId)
    {
        return "run-" + runId;
    }

    /// <summary>Props for the recorder of run <paramref name="runId"/>.</summary>
    /// <param name="runId">The run's identity; not empty.</param>
    /// <param name="settings">Tuning; <see cref="RunRecorderSettings.Default"/> when null.</param>
    /// <param name="clock">Timestamps for events; the system clock when null.</param>
    public static Props Props(string runId, RunRecorderSettings? settings = null, TimeProvider? clock = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(runId);
        var resolved = settings ?? RunRecorderSettings.Default;
        ArgumentOutOfRangeException.ThrowIfLessThan(resolved.SnapshotEvery, 1, nameof(settings));
        var time = clock ?? TimeProvider.System;
        return Akka.Actor.Props.Create(() => new RunRecorderActor(runId, resolved, time));
    }

    private void HandleSnapshotOffer(SnapshotOffer offer)
    {
        _state = (RunState)offer.Snapshot;
        _log.Debug("Run {0}: recovering from snapshot at sequence {1}", _runId, offer.Metadata.SequenceNr);
    }

    private void HandleRecoveredEvent(IRunEvent e)
    {
        _state = _state.Apply(e);
    }

    private void HandleRecoveryCompleted(RecoveryCompleted _)
    {
        _log.Info("Run {0}: recovered {1} event(s), status {2}", _runId, LastSequenceNr, _state.Status);
    }

    private void HandleStartRun(RunRecorder.StartRun command)
    {
        if (command.RunId != _runId)
        {
            Reject(command, $"this recorder keeps run '{_runId}', not '{command.RunId}'");
            return;
        }

        PersistChecked(command, new RunStarted(command.RunId, command.ConfigJson, _clock.GetUtcNow()));
    }

    private void HandleStartGeneration(RunRecorder.StartGeneration command)
    {
        var ranks = command.Ranks.ToImmutableList();
        PersistChecked(command, new GenerationStarted(_state.Generation + 1, ranks, command.Step));
    }

    private void HandleJoinWorker(RunRecorder.JoinWorker command)
    {
        PersistChecked(command, new WorkerJoined(command.Worker));
    }

    private void HandleLeaveWorker(RunRecorder.LeaveWorker command)
    {
        PersistChecked(command, new WorkerLeft(command.WorkerId, command.Reason));
    }

    private void HandleRecordEpoch(RunRecorder.RecordEpoch command)
    {
        PersistChecked(command, new EpochCompleted(command.Epoch, command.Step, command.Metrics));
    }

    private void HandleRecordCheckpoint(RunRecorder.RecordCheckpoint command)
    {
        PersistChecked(command, new CheckpointSaved(command.Path, command.Sha256, command.Epoch, command.Step));
    }

    private void HandleCompleteRun(RunRecorder.CompleteRun command)
    {
        PersistChecked(command, new RunCompleted(command.Step, _clock.GetUtcNow()));
    }

    private void HandleFailRun(RunRecorder.FailRun command)
    {
        PersistChecked(command, new RunFailed(command.Reason, _clock.GetUtcNow()));
    }

    private void HandleGetState(RunRecorder.GetState _)
    {
        Sender.Tell(_state);
    }

    private void HandleSaveSnapshotSuccess(SaveSnapshotSuccess success)
    {
        _log.Debug("Run {0}: snapshot saved at sequence {1}", _runId, success.Metadata.SequenceNr);
        DeleteSnapshots(new SnapshotSelectionCriteria(success.Metadata.SequenceNr - 1));
    }

    private void HandleSaveSnapshotFailure(SaveSnapshotFailure failure)
    {
        _log.Warning(failure.Cause, "Run {0}: snapshot at sequence {1} failed; recovery will replay more events",
            _runId, failure.Metadata.SequenceNr);
    }

    private void HandleDeleteSnapshotsSuccess(DeleteSnapshotsSuccess success)
    {
        _log.Debug("Run {0}: snapshots up to sequence {1} deleted", _runId, success.Criteria.MaxSequenceNr);
    }

    private void HandleDeleteSnapshotsFailure(DeleteSnapshotsFailure failure)
    {
        _log.Warning(failure.Cause, "Run {0}: deleting old snapshots failed", _runId);
    }

    /// <summary>Persists <paramref name="e"/> if the state accepts it, then applies it and acknowledges.</summary>
    private void PersistChecked(RunRecorder.ICommand command, IRunEvent e)
    {
        RunState next;
        try
        {
            next = _state.Apply(e);
        }
        catch (InvalidOperationException refused)
        {
            Reject(command, refused.Message);
            return;
        }

        // Persist (not PersistAsync) holds every later command until this one is written, so the state cannot move
        // between the check and the callback
        Persist(e, persisted =>
        {
            _state = next;
            Sender.Tell(new RunRecorder.Ack(persisted, LastSequenceNr, next));
            if (LastSequenceNr % _settings.SnapshotEvery == 0)
            {
                SaveSnapshot(_state);
            }
        });
    }

    private void Reject(RunRecorder.ICommand command, string reason)
    {
        _log.Warning("Run {0}: refused {1}: {2}", _runId, command.GetType().Name, reason);
        Sender.Tell(new RunRecorder.Rejected(command, reason));
    }
}
