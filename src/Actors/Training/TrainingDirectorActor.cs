using System.Globalization;
using Akka.Actor;
using Akka.Event;
using MoCo.Actors.Run;
using MoCo.Actors.Workers;
using MoCo.Model.Checkpoints;
using MoCo.Model.Training;
using TorchSharp;

namespace MoCo.Actors.Training;

/// <summary>
/// Runs one run on this process (protocol: <see cref="TrainingDirector"/>). It creates the run coordinator
/// (persistent on the run journal) and one <see cref="WorkerActor"/> per device slot, records the run, the
/// membership and a generation, then drives the workers chunk by chunk: every worker runs the same steps, and at
/// each epoch end rank 0's report becomes <c>EpochCompleted</c> and a checkpoint <c>CheckpointSaved</c>. On a
/// resumed run it keeps the run id and the history the coordinator recovers from the journal.
/// </summary>
/// <remarks>
/// Failure handling is deliberately simple for now: a worker that fails (it reports <see cref="Worker.WorkerFailed"/>,
/// or stops) fails the whole run with <c>RunFailed</c> naming the rank and the error. Re-creating the failed worker
/// and starting a new generation from the survivors or the latest checkpoint is a later task.
/// </remarks>
public sealed class TrainingDirectorActor : ReceiveActor
{
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly TrainingSettings _settings;
    private readonly IActorRef _subscriber;
    private readonly CheckpointDirectory _checkpoints;
    private readonly Queue<Action> _afterAck = new();
    private readonly HashSet<int> _outstanding = [];
    private readonly List<Worker.WorkerFailed> _failures = [];
    private readonly Dictionary<int, Worker.Ready> _ready = [];
    private readonly Dictionary<int, Worker.StepsDone> _done = [];
    private IActorRef _coordinator = ActorRefs.Nobody;
    private IActorRef[] _workers = [];
    private WorkerGroup? _group;
    private RunState _state = RunState.Empty;
    private bool _stateKnown;
    private bool _finishing;
    private bool _finished;
    private bool _interruptRequested;
    private Exception? _lastChildFailure;
    private Worker.EpochDone? _epochDone;
    private Action<Worker.CheckpointWritten>? _afterCheckpoint;
    private int _stepsPerEpoch;
    private long _globalStep;
    private int _epoch;
    private string? _lastCheckpoint;
    private string? _bestPath;
    private double _bestTop1 = double.NegativeInfinity;

    /// <summary>Creates the director; use <see cref="Props"/>.</summary>
    /// <param name="settings">The run and how to split the machine.</param>
    /// <param name="subscriber">Receives the progress and the final message.</param>
    public TrainingDirectorActor(TrainingSettings settings, IActorRef subscriber)
    {
        _settings = settings;
        _subscriber = subscriber;
        _checkpoints = new CheckpointDirectory(settings.RunDirectory);
        Receive<RunState>(HandleRunState);
        Receive<RunCoordinator.Ack>(HandleAck);
        Receive<RunCoordinator.Rejected>(HandleRejected);
        Receive<Worker.Ready>(HandleReady);
        Receive<Worker.KnnEvaluated>(HandleKnnEvaluated);
        Receive<Worker.StepCompleted>(HandleStepCompleted);
        Receive<Worker.EpochDone>(HandleEpochDone);
        Receive<Worker.StepsDone>(HandleStepsDone);
        Receive<Worker.CheckpointWritten>(HandleCheckpointWritten);
        Receive<Worker.WorkerFailed>(HandleWorkerFailed);
        Receive<TrainingDirector.Interrupt>(HandleInterrupt);
        Receive<Terminated>(HandleTerminated);
    }

    /// <summary>Props for the director of one run.</summary>
    /// <param name="settings">The run and how to split the machine; validated here.</param>
    /// <param name="subscriber">Receives the progress and the final message; none when null.</param>
    public static Props Props(TrainingSettings settings, IActorRef? subscriber)
    {
        ArgumentNullException.ThrowIfNull(settings);
        settings.Validate();
        var target = subscriber ?? ActorRefs.Nobody;
        return Akka.Actor.Props.Create(() => new TrainingDirectorActor(settings, target));
    }

    /// <summary>The actor name of rank <paramref name="rank"/>'s worker: <c>worker-{rank}</c>, also its worker id in the journal.</summary>
    /// <param name="rank">The rank.</param>
    public static string WorkerName(int rank)
    {
        return "worker-" + rank.ToString(CultureInfo.InvariantCulture);
    }

    /// <inheritdoc />
    protected override SupervisorStrategy SupervisorStrategy()
    {
        // a child that throws is stopped, not restarted: a worker's device state cannot be trusted after a failure
        return new OneForOneStrategy(e =>
        {
            _lastChildFailure = e is ActorInitializationException { InnerException: { } inner } ? inner : e;
            return Directive.Stop;
        });
    }

    /// <inheritdoc />
    protected override void PreStart()
    {
        torch.set_num_threads(_settings.ThreadsPerWorker);
        Directory.CreateDirectory(_settings.RunDirectory);
        _coordinator = Context.Watch(Context.ActorOf(RunCoordinatorActor.Props(_settings.RunId), "run-coordinator"));
        _coordinator.Tell(RunCoordinator.GetState.Instance);
    }

    /// <inheritdoc />
    protected override void PostStop()
    {
        // children (the workers) have stopped by now: nobody uses the group any more
        _group?.Dispose();
    }

    private void HandleRunState(RunState state)
    {
        if (_stateKnown)
        {
            return;
        }

        _stateKnown = true;
        _state = state;
        if (state.IsFinished)
        {
            var why = state.FailureReason is null ? string.Empty : $" ({state.FailureReason})";
            FinishUnrecorded($"run {_settings.RunId} is already {state.Status.ToString().ToLowerInvariant()} in the journal of {_settings.RunDirectory}{why}; "
                + "a finished run takes no further training: start a new run");
            return;
        }

        if (state.Status == RunStatus.NotStarted)
        {
            Record(new RunCoordinator.StartRun(_settings.RunId, _settings.Config.ToJson()), JoinWorkers);
        }
        else
        {
            _log.Info("Run {0}: resuming from the journal (generation {1}, {2} epoch(s) recorded)", _settings.RunId, state.Generation, state.Epochs.Count);
            JoinWorkers();
        }
    }

    /// <summary>Brings the journal's membership to exactly this session's workers, then starts them.</summary>
    private void JoinWorkers()
    {
        var ranks = Ranks();
        var ids = ranks.Select(w => w.WorkerId).ToHashSet(StringComparer.Ordinal);
        var commands = new List<RunCoordinator.ICommand>();
        foreach (var member in _state.Members.Keys.Where(id => !ids.Contains(id)))
        {
            commands.Add(new RunCoordinator.LeaveWorker(member, $"not part of the resumed world of {_settings.Devices} worker(s)"));
        }

        foreach (var worker in ranks.Where(w => !_state.Members.ContainsKey(w.WorkerId)))
        {
            commands.Add(new RunCoordinator.JoinWorker(worker));
        }

        RecordAll(commands, StartWorkers);
    }

    private void StartWorkers()
    {
        _group = new WorkerGroup(_settings.Devices, _settings.CollectiveTimeout);
        _workers = new IActorRef[_settings.Devices];
        for (int r = 0; r < _settings.Devices; r++)
        {
            _workers[r] = Context.Watch(Context.ActorOf(WorkerActor.Props(_settings, r, _group), WorkerName(r)));
        }

        ExpectFromAll();
    }

    private void HandleReady(Worker.Ready ready)
    {
        if (_finishing)
        {
            return;
        }

        _ready[ready.Rank] = ready;
        if (!Arrive(ready.Rank))
        {
            return;
        }

        var first = _ready[0];
        var disagreeing = _ready.Values.FirstOrDefault(r => r.GlobalStep != first.GlobalStep);
        if (disagreeing is not null)
        {
            Fail($"the workers start at different steps (rank 0 at {first.GlobalStep}, rank {disagreeing.Rank} at {disagreeing.GlobalStep})");
            return;
        }

        _stepsPerEpoch = first.StepsPerEpoch;
        _globalStep = first.GlobalStep;
        _epoch = first.Epoch;
        Record(new RunCoordinator.StartGeneration(Ranks(), _globalStep), () =>
        {
            _subscriber.Tell(new TrainingDirector.RunStarting(_settings.RunId, _settings.ResumeFrom is not null, _settings.Devices, _state.Generation,
                _globalStep, first.Epoch, first.StepInEpoch, _stepsPerEpoch));
            NextChunk();
        });
    }

    /// <summary>Sends every worker the next chunk of steps, or completes the run when the schedule is done.</summary>
    private void NextChunk()
    {
        if (_finishing)
        {
            return;
        }

        if (_interruptRequested)
        {
            _finishing = true;
            StopWorkers();
            Finish(new TrainingDirector.Interrupted(_settings.RunId, _globalStep, _lastCheckpoint));
            return;
        }

        if (_epoch >= _settings.Config.Epochs)
        {
            Record(new RunCoordinator.CompleteRun(_globalStep), () =>
            {
                StopWorkers();
                Finish(new TrainingDirector.RunCompleted(_settings.RunId, _globalStep));
            });
            return;
        }

        long upTo = _globalStep + _settings.ChunkSteps;
        int every = _settings.Config.CheckpointEverySteps;
        if (every > 0)
        {
            upTo = Math.Min(upTo, (_globalStep / every + 1) * every);
        }

        _done.Clear();
        _epochDone = null;
        ExpectFromAll();
        foreach (var worker in _workers)
        {
            worker.Tell(new Worker.RunSteps(upTo));
        }
    }

    private void HandleKnnEvaluated(Worker.KnnEvaluated knn)
    {
        _subscriber.Tell(knn);
    }

    private void HandleStepCompleted(Worker.StepCompleted step)
    {
        _subscriber.Tell(step);
    }

    private void HandleEpochDone(Worker.EpochDone epoch)
    {
        _epochDone = epoch;
        _subscriber.Tell(epoch);
    }

    private void HandleStepsDone(Worker.StepsDone done)
    {
        if (_finishing)
        {
            return;
        }

        _done[done.Rank] = done;
        if (!Arrive(done.Rank))
        {
            return;
        }

        var first = _done[0];
        var disagreeing = _done.Values.FirstOrDefault(d => d.GlobalStep != first.GlobalStep || d.Epoch != first.Epoch);
        if (disagreeing is not null)
        {
            Fail($"the workers disagree after a chunk (rank 0 at step {first.GlobalStep}, rank {disagreeing.Rank} at step {disagreeing.GlobalStep})");
            return;
        }

        _globalStep = first.GlobalStep;
        _epoch = first.Epoch;
        if (_epochDone is { } epochDone)
        {
            _epochDone = null;
            EndEpoch(epochDone);
        }
        else if (_settings.Config.CheckpointEverySteps > 0 && _globalStep % _settings.Config.CheckpointEverySteps == 0)
        {
            SaveCheckpoint(written => RecordAll(CheckpointCommands(written), AfterCheckpoint));
        }
        else
        {
            NextChunk();
        }
    }

    /// <summary>metrics.csv, a checkpoint, then EpochCompleted and CheckpointSaved in the journal (a crash in between loses the record, never the checkpoint).</summary>
    private void EndEpoch(Worker.EpochDone e)
    {
        AppendMetrics(e);
        SaveCheckpoint(written =>
        {
            if (e.KnnTop1Percent is { } top1 && top1 > _bestTop1)
            {
                _bestTop1 = top1;
                _bestPath = written.Path;
            }

            var commands = new List<RunCoordinator.ICommand>();
            if (_state.LastEpoch is { } last && e.Epoch <= last.Epoch)
            {
                _subscriber.Tell(new TrainingDirector.Notice($"epoch {e.Epoch} is already in the journal (up to epoch {last.Epoch}); not recorded again"));
            }
            else
            {
                var metrics = new EpochMetrics(e.Loss, e.InstanceAccuracy, e.LearningRate, e.KnnTop1Percent / 100, e.KnnTop5Percent / 100, e.Seconds, e.ImagesPerSecond);
                commands.Add(new RunCoordinator.RecordEpoch(e.Epoch, e.GlobalStep, metrics));
            }

            commands.AddRange(CheckpointCommands(written));
            RecordAll(commands, AfterCheckpoint);
        });
    }

    private List<RunCoordinator.ICommand> CheckpointCommands(Worker.CheckpointWritten written)
    {
        if (_state.LastCheckpoint is { } last && written.GlobalStep < last.Step)
        {
            _subscriber.Tell(new TrainingDirector.Notice($"checkpoint {written.Path} is behind the journal's last checkpoint (step {last.Step}); not recorded"));
            return [];
        }

        return [new RunCoordinator.RecordCheckpoint(written.Path, written.Sha256, written.Epoch, written.GlobalStep)];
    }

    private void AfterCheckpoint()
    {
        try
        {
            _checkpoints.Prune(_settings.Config.KeepCheckpoints, _bestPath is null ? null : [_bestPath]);
        }
        catch (IOException e)
        {
            _subscriber.Tell(new TrainingDirector.Notice($"could not prune old checkpoints: {e.Message}"));
        }

        NextChunk();
    }

    private void SaveCheckpoint(Action<Worker.CheckpointWritten> then)
    {
        _afterCheckpoint = then;
        _outstanding.Clear();
        _failures.Clear();
        _outstanding.Add(0);
        _workers[0].Tell(new Worker.SaveCheckpoint(_checkpoints.PathFor(_epoch, _globalStep)));
    }

    private void HandleCheckpointWritten(Worker.CheckpointWritten written)
    {
        if (_finishing)
        {
            return;
        }

        _lastCheckpoint = written.Path;
        _subscriber.Tell(written);
        if (!Arrive(0))
        {
            return;
        }

        var then = _afterCheckpoint;
        _afterCheckpoint = null;
        then?.Invoke(written);
    }

    private void HandleWorkerFailed(Worker.WorkerFailed failed)
    {
        if (_finishing)
        {
            return;
        }

        _failures.Add(failed);
        if (!_outstanding.Contains(failed.Rank))
        {
            // a failure outside any exchange: nothing else to wait for
            _outstanding.Clear();
        }

        Arrive(failed.Rank);
    }

    private void HandleInterrupt(TrainingDirector.Interrupt _)
    {
        if (_interruptRequested || _finishing)
        {
            return;
        }

        _interruptRequested = true;
        _subscriber.Tell(new TrainingDirector.Notice("interrupt requested: stopping at the end of the current chunk of steps"));
    }

    private void HandleTerminated(Terminated terminated)
    {
        if (_finished)
        {
            return;
        }

        var cause = _lastChildFailure is { } e ? $": {e.GetType().Name}: {e.Message}" : string.Empty;
        if (terminated.ActorRef.Equals(_coordinator))
        {
            _finishing = true;
            _group?.Abort();
            StopWorkers();
            FinishUnrecorded($"the run coordinator stopped{cause}; check that the run journal in {_settings.RunDirectory} is readable and writable");
            return;
        }

        int rank = Array.IndexOf(_workers, terminated.ActorRef);
        if (rank >= 0 && !_finishing)
        {
            Fail($"rank {rank} ({WorkerName(rank)}) stopped unexpectedly{cause}. {NotRestarted()}");
        }
    }

    private void HandleAck(RunCoordinator.Ack ack)
    {
        _state = _state.Apply(ack.Event);
        if (_afterAck.Count > 0)
        {
            _afterAck.Dequeue()();
        }
    }

    private void HandleRejected(RunCoordinator.Rejected rejected)
    {
        if (_afterAck.Count > 0)
        {
            _afterAck.Dequeue();
        }

        if (rejected.Command is RunCoordinator.FailRun failRun)
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

    /// <summary>Waits for one reply (or failure) from every worker.</summary>
    private void ExpectFromAll()
    {
        _outstanding.Clear();
        _failures.Clear();
        for (int r = 0; r < _settings.Devices; r++)
        {
            _outstanding.Add(r);
        }
    }

    /// <summary>Marks <paramref name="rank"/>'s reply; true once every expected reply is in and none was a failure.</summary>
    private bool Arrive(int rank)
    {
        _outstanding.Remove(rank);
        if (_outstanding.Count > 0)
        {
            return false;
        }

        if (_failures.Count > 0)
        {
            FailFromWorkers();
            return false;
        }

        return true;
    }

    /// <summary>Fails the run naming the rank that failed first and its error (the others were brought down by the abort).</summary>
    private void FailFromWorkers()
    {
        var ordered = _failures.OrderByDescending(f => f.FirstFailure).ThenBy(f => f.Rank).ToList();
        var cause = ordered[0];
        var where = cause.GlobalStep < 0
            ? string.Empty
            : $" at epoch {cause.Epoch}, step {cause.StepInEpoch} (global step {cause.GlobalStep})";
        var reason = $"rank {cause.Rank} ({WorkerName(cause.Rank)}) failed while {cause.Operation}{where}: {cause.Error}";
        var others = ordered.Skip(1).Select(f => f.Rank.ToString(CultureInfo.InvariantCulture)).ToList();
        if (others.Count > 0)
        {
            reason += $"; rank(s) {string.Join(", ", others)} stopped with it";
        }

        Fail($"{reason}. {NotRestarted()}");
    }

    private string NotRestarted()
    {
        var checkpoint = _lastCheckpoint ?? _settings.ResumeFrom;
        return "Failed workers are not re-created yet (supervision is a later task), so the run is marked failed; "
            + (checkpoint is null ? "no checkpoint was written" : $"its latest checkpoint is {checkpoint}");
    }

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
        Record(new RunCoordinator.FailRun(reason), () => Finish(new TrainingDirector.RunFailed(_settings.RunId, reason, Recorded: true)));
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
        _subscriber.Tell(message);
        Context.Stop(Self);
    }

    private void StopWorkers()
    {
        foreach (var worker in _workers)
        {
            Context.Unwatch(worker);
            Context.Stop(worker);
        }
    }

    /// <summary>Sends <paramref name="command"/> to the coordinator; <paramref name="then"/> runs once it is acknowledged.</summary>
    private void Record(RunCoordinator.ICommand command, Action then)
    {
        _afterAck.Enqueue(then);
        _coordinator.Tell(command);
    }

    /// <summary>Records <paramref name="commands"/> in order; <paramref name="then"/> runs after the last acknowledgement (at once when there are none).</summary>
    private void RecordAll(IReadOnlyList<RunCoordinator.ICommand> commands, Action then)
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

    private List<WorkerInfo> Ranks()
    {
        return Enumerable.Range(0, _settings.Devices).Select(r => new WorkerInfo(WorkerName(r), _settings.Node, "cpu")).ToList();
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
            e.ImagesPerSecond, e.LoaderWaitSeconds));
    }
}
