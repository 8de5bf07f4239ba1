using Akka.Actor;
using MoCo.Actors.Checkpoints;
using MoCo.Actors.Queue;
using MoCo.Actors.Run;
using MoCo.Actors.Workers;
using MoCo.Model.Training;

namespace MoCo.Actors.Training;

/// <summary>
/// Training between generations: chunks of steps, the losses journaled at each chunk's end, epoch ends (metrics.csv,
/// the journal) and checkpoints (docs/architecture.md, section 3).
/// </summary>
public sealed partial class TrainingDirectorActor
{
    /// <summary>Sends every worker the next chunk of steps, or completes the run when the schedule is done.</summary>
    private void NextChunk()
    {
        if (_finishing || _pendingRecovery is not null || _outstanding.Count > 0 || _forming)
        {
            // a recovery is under way (a failure arrived between chunks), or a generation is forming (a journal
            // acknowledgement of the old generation's chunk came while the new one waits for the journal): the new
            // generation starts the next chunk
            return;
        }

        bool canGrow = _settings.Elastic && _slots.Count < _settings.Config.BnSplits && PlanRemote(_slots.Count).Count > 0;
        var next = RunSchedule.Next(_interruptRequested, _globalStep, _checkpointedStep, _epoch, _settings.Config.Epochs, canGrow,
            _settings.ChunkSteps, _settings.Config.CheckpointEverySteps);
        switch (next)
        {
            case NextAction.CheckpointBeforeStop:
                TakeCheckpoint(null);
                return;
            case NextAction.Stop:
                AfterStopsAndWrites(() =>
                {
                    _finishing = true;
                    // an interrupted run goes on under a standby trainer, if one is Up: the nodes keep their workers for it
                    _handOver = _settings.Elastic && StandbyUp();
                    StopWorkers(remoteToo: !_handOver);
                    Finish(new TrainingDirector.Interrupted(_settings.RunId, _globalStep, _lastCheckpoint));
                });
                return;
            case NextAction.Complete:
                // the last checkpoint must be on disk and in the journal before the run is complete
                AfterStopsAndWrites(() => Record(new RunRecorder.CompleteRun(_globalStep), () =>
                {
                    StopWorkers();
                    Finish(new TrainingDirector.RunCompleted(_settings.RunId, _globalStep));
                }));
                return;
            case NextAction.Grow:
                Grow();
                return;
        }

        long upTo = ((NextAction.RunChunk)next).UpTo;
        _done.Clear();
        _epochDone = null;
        AwaitReplies(typeof(Worker.StepsDone), Enumerable.Range(0, _slots.Count), ChunkDone);
        foreach (var slot in _slots)
        {
            slot.Ref.Tell(new Worker.RunSteps(upTo));
        }
    }

    private void HandleEpochDone(Worker.EpochDone epoch)
    {
        _epochDone = epoch;
        _subscriber.Tell(epoch);
    }

    private void HandleStepsDone(Worker.StepsDone done)
    {
        _done[done.Rank] = done;
        Arrive(done.Rank, typeof(Worker.StepsDone));
    }

    private void ChunkDone()
    {
        var first = _done[0];
        var disagreeing = _done.Values.FirstOrDefault(d => d.GlobalStep != first.GlobalStep || d.Epoch != first.Epoch);
        if (disagreeing is not null)
        {
            Fail($"the workers disagree after a chunk (rank 0 at step {first.GlobalStep}, rank {disagreeing.Rank} at step {disagreeing.GlobalStep})");
            return;
        }

        _failuresInARow = 0;
        _globalStep = first.GlobalStep;
        _epoch = first.Epoch;
        RecordLosses(first, () =>
        {
            switch (RunSchedule.After(_epochDone is not null, _globalStep, _settings.Config.CheckpointEverySteps))
            {
                case AfterChunk.EndEpoch:
                    var epochDone = _epochDone!;
                    _epochDone = null;
                    EndEpoch(epochDone);
                    break;
                case AfterChunk.Checkpoint:
                    TakeCheckpoint(null);
                    break;
                default:
                    NextChunk();
                    break;
            }
        });
    }

    /// <summary>
    /// Journals the losses of the steps done since the last record (<see cref="StepsRecorded"/>), with rank 0's state
    /// digest when <paramref name="chunkEnd"/> (a chunk's end) is where they stop; then <paramref name="then"/>.
    /// </summary>
    private void RecordLosses(Worker.StepsDone? chunkEnd, Action then)
    {
        if (_losses.Count == 0)
        {
            then();
            return;
        }

        var losses = _losses.OrderBy(l => l.Step).ToList();
        _losses.Clear();
        var commands = new List<RunRecorder.ICommand>();
        int start = 0;
        for (int i = 1; i <= losses.Count; i++)
        {
            // contiguous runs of steps (a step redone after a failure starts a new one)
            if (i < losses.Count && losses[i].Step == losses[i - 1].Step + 1)
            {
                continue;
            }

            var run = losses.GetRange(start, i - start);
            bool atChunkEnd = chunkEnd is not null && i == losses.Count && run[^1].Step + 1 == chunkEnd.GlobalStep && chunkEnd.Digest is not null;
            commands.Add(new RunRecorder.RecordSteps(run[0].Step, run.Select(l => l.Loss).ToList(),
                atChunkEnd ? chunkEnd!.Digest : null, atChunkEnd ? chunkEnd!.Checksums : null,
                chunkEnd?.Threads ?? _settings.ThreadsPerWorker, Math.Max(1, _slots.Count), _dataPlane));
            start = i;
        }

        RecordAll(commands, then);
    }

    /// <summary>metrics.csv, TensorBoard and <c>EpochCompleted</c>, then a checkpoint (written beside the next chunk).</summary>
    private void EndEpoch(Worker.EpochDone e)
    {
        AppendMetrics(e);
        _tensorBoard.Tell(e);
        if (_state.LastEpoch is { } last && e.Epoch <= last.Epoch)
        {
            _subscriber.Tell(new TrainingDirector.Notice($"epoch {e.Epoch} is already in the journal (up to epoch {last.Epoch}); not recorded again"));
            TakeCheckpoint(e.KnnTop1Percent);
            return;
        }

        var metrics = new EpochMetrics(e.Loss, e.InstanceAccuracy, e.LearningRate, e.KnnTop1Percent / 100, e.KnnTop5Percent / 100, e.Seconds, e.ImagesPerSecond);
        Record(new RunRecorder.RecordEpoch(e.Epoch, e.GlobalStep, metrics), () => TakeCheckpoint(e.KnnTop1Percent));
    }

    /// <summary>Rank 0 copies its state into memory and hands it to the checkpointer; training goes on at once.</summary>
    private void TakeCheckpoint(double? knnTop1Percent)
    {
        if (_outstanding.Count > 0 || _pendingRecovery is not null || _forming)
        {
            // a journal acknowledgement arrived after a membership change began a new generation: the survivors keep
            // this step's state, so the checkpoint is taken when the generation has formed
            _owedCheckpoint = (_globalStep, knnTop1Percent);
            return;
        }

        _checkpointedStep = _globalStep;
        AwaitReplies(typeof(Worker.CheckpointTaken), [0], NextChunk);
        _slots[0].Ref.Tell(new Worker.TakeCheckpoint(_epoch, _globalStep, knnTop1Percent));
    }

    private void HandleCheckpointTaken(Worker.CheckpointTaken taken)
    {
        _subscriber.Tell(taken);
        _pendingWrites++;
        Arrive(0, typeof(Worker.CheckpointTaken));
    }

    private void HandleCheckpointWritten(Checkpointer.Written written)
    {
        _pendingWrites--;
        _lastCheckpoint = written.Path;
        _subscriber.Tell(written);
        if (_finished)
        {
            return;
        }

        if (_state.LastCheckpoint is { } last && written.GlobalStep < last.Step)
        {
            _subscriber.Tell(new TrainingDirector.Notice($"checkpoint {written.Path} is behind the journal's last checkpoint (step {last.Step}); not recorded"));
            CheckStopsAndWrites();
            return;
        }

        Record(new RunRecorder.RecordCheckpoint(written.Path, written.Sha256, written.Epoch, written.GlobalStep), CheckStopsAndWrites);
    }

    private void HandleCheckpointWriteFailed(Checkpointer.WriteFailed failed)
    {
        _pendingWrites--;
        _subscriber.Tell(new TrainingDirector.Notice($"checkpoint {failed.Path} (step {failed.GlobalStep}) could not be written: {failed.Error}; "
            + $"the previous checkpoint{(_lastCheckpoint is null ? " (none yet)" : " " + _lastCheckpoint)} stays valid"));
        CheckStopsAndWrites();
    }

    private void HandleQueueInconsistent(QueueKeeper.Inconsistent inconsistent)
    {
        _subscriber.Tell(new TrainingDirector.Notice($"queue check at step {inconsistent.GlobalStep}: {inconsistent.Problem}"));
    }

    private void AppendMetrics(Worker.EpochDone e)
    {
        var path = Path.Combine(_settings.RunDirectory, MetricsCsv.FileName);
        bool header = !File.Exists(path);
        using var writer = new StreamWriter(path, append: true);
        if (header)
        {
            writer.WriteLine(MetricsCsv.Header);
        }

        writer.WriteLine(MetricsCsv.Row(e.Epoch, e.Steps, e.Loss, e.InstanceAccuracy, e.LearningRate, e.KnnTop1Percent, e.KnnTop5Percent, e.Seconds,
            e.ImagesPerSecond, e.LoaderWaitSeconds, e.KnnSeconds));
    }
}
