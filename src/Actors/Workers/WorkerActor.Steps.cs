using System.Diagnostics;
using System.Globalization;
using Akka.Actor;
using Akka.Event;
using System.Security.Cryptography;
using MoCo.Model.Collectives;
using MoCo.Actors.Checkpoints;
using MoCo.Actors.Queue;
using MoCo.Model.Checkpoints;
using MoCo.Model.Training;
using TorchSharp;

namespace MoCo.Actors.Workers;

/// <summary>A worker's training: chunks of steps, epoch ends and the kNN monitor, checkpoint copies, its adoption by a director that took the run over, and its failures.</summary>
public sealed partial class WorkerActor
{
    private void HandleRunSteps(Worker.RunSteps command)
    {
        if (_trainer is null)
        {
            Sender.Tell(Failure("training", "the worker failed to start and holds no model"));
            return;
        }

        var operation = "training";
        var clock = Stopwatch.StartNew();
        long firstStep = _trainer.GlobalStep;
        double loss = double.NaN;
        double lr = double.NaN;
        try
        {
            if (_knnAtStartPending)
            {
                operation = "evaluating kNN";
                var knn = _trainer.EvaluateKnn(_settings.Threads);
                Sender.Tell(new Worker.KnnEvaluated(knn.Top1, knn.Top5));
                _knnAtStartPending = false;
                clock.Restart();
                operation = "training";
            }

            while (!_trainer.Finished && _trainer.GlobalStep < command.UpTo)
            {
                int epoch = _trainer.Epoch;
                _epochClock ??= Stopwatch.StartNew();
                long before = Stopwatch.GetTimestamp();
                var result = _trainer.TrainStep();
                _epochTrainSeconds += Stopwatch.GetElapsedTime(before).TotalSeconds;
                loss = result.Loss;
                lr = result.Lr;
                KeepLoss(result.GlobalStep, result.Loss);
                _lossSum += result.Loss;
                _accSum += result.InstanceAcc;
                _epochSteps++;
                if (_rank == 0)
                {
                    Sender.Tell(new Worker.StepCompleted(result.GlobalStep, result.Epoch, result.StepInEpoch, _trainer.StepsPerEpoch, result.Loss, result.InstanceAcc, result.Lr, _trainer.LastAllReduceWaitSeconds));
                }

                if (_trainer.Epoch != epoch)
                {
                    operation = "evaluating kNN";
                    EndEpoch(epoch, lr, Sender);
                    break;
                }
            }
        }
        catch (Exception e)
        {
            Fail(Sender, operation, e);
            return;
        }

        double seconds = clock.Elapsed.TotalSeconds;
        ReportQueue();
        long steps = _trainer.GlobalStep - firstStep;
        double rate = steps * _settings.Config.BatchSize / Math.Max(1e-9, seconds);
        // rank 0 fingerprints the whole state where the chunk ends (every replica holds the same): the journal keeps it
        // for moco replay --verify
        var digest = _rank == 0 ? StateDigest.Compute(_trainer.StateTensors()) : null;
        Sender.Tell(new Worker.StepsDone(_rank, _trainer.GlobalStep, _trainer.Epoch, _trainer.StepInEpoch, loss, lr, rate,
            digest?.Digest, digest?.Checksums.ToArray(), _settings.ThreadsPerWorker));
    }

    private void HandleTakeCheckpoint(Worker.TakeCheckpoint command)
    {
        if (_trainer is null)
        {
            Sender.Tell(Failure("taking a checkpoint", "the worker failed to start and holds no model"));
            return;
        }

        if (command.GlobalStep != _trainer.GlobalStep || command.Epoch < 0 || command.Epoch > _settings.Config.Epochs)
        {
            Sender.Tell(Failure("taking a checkpoint", $"a checkpoint of epoch {command.Epoch}, step {command.GlobalStep} was asked of a worker at step {_trainer.GlobalStep}"));
            return;
        }

        try
        {
            var clock = Stopwatch.StartNew();
            // the file is named in this worker's own run directory: a path never comes from a message
            var path = new CheckpointDirectory(_settings.RunDirectory).PathFor(command.Epoch, command.GlobalStep);
            var extra = new Dictionary<string, string>();
            if (command.KnnTop1Percent is { } top1)
            {
                extra["knn-top1"] = top1.ToString("R", CultureInfo.InvariantCulture);
            }

            var image = _trainer.TakeCheckpoint(extra);
            _checkpointer.Tell(new Checkpointer.Write(path, image, command.KnnTop1Percent, Sender));
            Sender.Tell(new Worker.CheckpointTaken(path, clock.Elapsed.TotalSeconds, image.FileLength));
        }
        catch (Exception e)
        {
            Fail(Sender, "taking a checkpoint", e);
        }
    }

    /// <summary>Keeps step <paramref name="step"/>'s loss at the end of the contiguous tail of the last <see cref="Worker.MaxCarriedLosses"/>.</summary>
    private void KeepLoss(long step, double loss)
    {
        if (_recentLosses.Count > 0 && step != _recentFirst + _recentLosses.Count)
        {
            _recentLosses.Clear();
        }

        if (_recentLosses.Count == 0)
        {
            _recentFirst = step;
        }

        _recentLosses.Enqueue(loss);
        if (_recentLosses.Count > Worker.MaxCarriedLosses)
        {
            _recentLosses.Dequeue();
            _recentFirst++;
        }
    }

    /// <summary>
    /// A new director takes this replica over (its node agent sends this after the previous director was lost): from now
    /// on only the new director may command it; it learns the replica's cursor and the losses of its last steps.
    /// </summary>
    private void HandleAdopt(Worker.Adopt adopt)
    {
        if (!Sender.Equals(Context.Parent))
        {
            _log.Warning("Rank {0}: dropped Adopt from {1}, which is not this worker's node agent", _rank, Sender.Path);
            return;
        }

        _director = adopt.Director;
        _rank = adopt.Rank;
        if (_trainer is null)
        {
            Director.Tell(Failure("being taken over", "the worker failed to start and holds no model"));
            return;
        }

        var losses = _recentLosses.ToArray();
        long first = _recentFirst;
        if (first + losses.Length != _trainer.GlobalStep)
        {
            losses = [];
            first = _trainer.GlobalStep;
        }

        var device = _trainer.Device;
        _log.Info("Rank {0}: taken over by {1} at step {2} (generation {3}), carrying the losses of {4} step(s)", _rank, adopt.Director.Path, _trainer.GlobalStep, _generation, losses.Length);
        Director.Tell(new Worker.Adopted(_rank, Self.Path.Name, _trainer.GlobalStep, _trainer.Epoch, _trainer.StepInEpoch, _trainer.StepsPerEpoch,
            device is null || device.type == DeviceType.CPU ? "cpu" : $"cuda:{device.index}", _generation, _worldSize, _settings.ThreadsPerWorker, Worker.ConfigDigest(_settings.Config), first, losses,
            _lastEpoch is { } ended && ended.GlobalStep == _trainer.GlobalStep ? ended : null));
    }

    /// <summary>Tells the queue keeper where this replica's queue stands (rank 0 also sends the keys).</summary>
    private void ReportQueue()
    {
        if (_queueKeeper.IsNobody())
        {
            return; // a remote node's worker: the keeper lives with the director (its reports would not fit a frame)
        }

        var trainer = _trainer!;
        var queue = trainer.Model.Queue;
        long pointer = trainer.Model.QueuePointer;
        using var host = queue.device_type == DeviceType.CPU ? null : queue.cpu(); // a device's queue is read through a host copy
        using var contiguous = (host ?? queue).contiguous();
        var bytes = contiguous.bytes;
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        hash.AppendData(bytes);
        hash.AppendData(BitConverter.GetBytes(pointer));
        var digest = Convert.ToHexStringLower(hash.GetHashAndReset());
        // only rank 0's keys become the canonical copy: the other ranks send their digest alone
        float[]? keys = null;
        if (_rank == 0)
        {
            keys = new float[queue.NumberOfElements];
            System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(bytes).CopyTo(keys);
        }

        _queueKeeper.Tell(new QueueKeeper.Report(_rank, _generation, trainer.GlobalStep, pointer, digest, keys, (int)queue.shape[0]));
    }

    /// <summary>Closes the epoch's accumulators; rank 0 runs the kNN monitor when due and reports the epoch.</summary>
    private void EndEpoch(int epoch, double lr, IActorRef replyTo)
    {
        var trainer = _trainer!;
        var config = trainer.Config;
        _lastKnn = null;
        double? knnSeconds = null;
        if (_rank == 0 && config.KnnEvery > 0 && ((epoch + 1) % config.KnnEvery == 0 || trainer.Finished))
        {
            long started = System.Diagnostics.Stopwatch.GetTimestamp();
            _lastKnn = trainer.EvaluateKnn(_settings.Threads);
            knnSeconds = System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalSeconds;
        }

        // every rank holds the epoch's report (the losses and accuracies are all-reduced, so all agree); rank 0 sends
        // it, the others keep it for a director that takes them over before the epoch was journaled
        int steps = Math.Max(1, _epochSteps);
        _lastEpoch = new Worker.EpochDone(
            epoch,
            trainer.GlobalStep,
            _epochSteps,
            _lossSum / steps,
            _accSum / steps,
            lr,
            _lastKnn?.Top1,
            _lastKnn?.Top5,
            _epochClock?.Elapsed.TotalSeconds ?? 0,
            _epochSteps * config.BatchSize / Math.Max(1e-9, _epochTrainSeconds),
            trainer.LoaderWaitSeconds,
            knnSeconds);
        if (_rank == 0)
        {
            replyTo.Tell(_lastEpoch);
        }

        _epochClock = null;
        _epochTrainSeconds = 0;
        _lossSum = 0;
        _accSum = 0;
        _epochSteps = 0;
    }

    /// <summary>Aborts the group and tells <paramref name="replyTo"/> what failed.</summary>
    private void Fail(IActorRef replyTo, string operation, Exception e)
    {
        // the first failure of the generation is the cause; the others failed because the group was aborted
        bool first = _group?.ReportFailure(_rank) ?? e is not CollectiveException;
        _network?.Abort();
        if (first)
        {
            _log.Error(e, "Rank {0} failed while {1}", _rank, operation);
        }
        else
        {
            _log.Warning("Rank {0} stopped while {1} after a peer failed: {2}", _rank, operation, e.Message);
        }

        replyTo.Tell(Failure(operation, $"{e.GetType().Name}: {e.Message}", first));
    }

    private Worker.WorkerFailed Failure(string operation, string error, bool first = true)
    {
        return new Worker.WorkerFailed(_rank, operation, _trainer?.GlobalStep ?? -1, _trainer?.Epoch ?? -1, _trainer?.StepInEpoch ?? -1, error, first);
    }
}
