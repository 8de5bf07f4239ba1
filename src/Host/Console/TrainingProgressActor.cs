using System.Diagnostics;
using Akka.Actor;
using Akka.Event;
using MoCo.Actors.Checkpoints;
using MoCo.Actors.Queue;
using MoCo.Actors.Training;
using MoCo.Actors.Workers;
using MoCo.Host.Health;
using MoCo.Host.Logging;
using MoCo.Host.Metrics;
using Microsoft.Extensions.Logging;
using MoCo.Model.Training;
using Spectre.Console;

namespace MoCo.Host.Console;

/// <summary>
/// Prints a run driven by a <see cref="TrainingDirectorActor"/> in <see cref="ProgressLines"/>'s wording (a line
/// every n steps, one per epoch) and completes <see cref="Props"/>' task with the director's final message. It also keeps
/// the run's place for the log (<see cref="RunLogContext"/>) and the readiness probe (<see cref="RunHealth"/>); with
/// <c>--log-format json</c> the step and epoch lines are structured records (loss, lr, images/s, kNN as fields).
/// </summary>
public sealed class TrainingProgressActor : ReceiveActor
{
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly IAnsiConsole _console;
    private readonly RunConfig _config;
    private readonly int _printEvery;
    private readonly TaskCompletionSource<object> _completion;
    private readonly ProgressContext? _live;
    private ProgressTask? _runTask;
    private ProgressTask? _epochTask;
    private string _world = "";
    private string _queue = "";
    private readonly MocoMetrics? _metrics;
    private readonly RunHealth? _health;
    private readonly Microsoft.Extensions.Logging.ILogger? _records;
    private int _generation;
    private int _worldSize;
    private Stopwatch _clock = Stopwatch.StartNew();
    private long _stepsAtClock;

    /// <summary>Creates the printer; use <see cref="Props"/>.</summary>
    public TrainingProgressActor(IAnsiConsole console, RunConfig config, int printEvery, TaskCompletionSource<object> completion, ProgressContext? live, MocoMetrics? metrics = null, RunHealth? health = null)
    {
        _metrics = metrics;
        _health = health;
        _records = ProcessLogging.Format == LogFormat.Json ? ProcessLogging.Factory.CreateLogger("MoCo.Progress") : null;
        _console = console;
        _live = live;
        _config = config;
        _printEvery = Math.Max(1, printEvery);
        _completion = completion;
        Receive<TrainingDirector.RunStarting>(HandleRunStarting);
        Receive<TrainingDirector.Notice>(HandleNotice);
        Receive<Worker.KnnEvaluated>(HandleKnnEvaluated);
        Receive<Worker.StepCompleted>(HandleStepCompleted);
        Receive<Worker.EpochDone>(HandleEpochDone);
        Receive<Checkpointer.Written>(HandleCheckpointWritten);
        Receive<TrainingDirector.GenerationFormed>(HandleGenerationFormed);
        Receive<QueueKeeper.Age>(HandleQueueAge);
        Receive<TrainingDirector.RunCompleted>(HandleFinal);
        Receive<TrainingDirector.RunFailed>(HandleFinal);
        Receive<TrainingDirector.Interrupted>(HandleFinal);
        Receive<TrainingDirector.AlreadyFinished>(HandleFinal);
    }

    /// <summary>Props for the printer.</summary>
    /// <param name="console">Where to print.</param>
    /// <param name="config">The run's configuration (for the summary line and the batch size).</param>
    /// <param name="printEvery">Print a step line every n steps.</param>
    /// <param name="completion">Completed with the director's final message.</param>
    /// <param name="live">A live Spectre display on a terminal (bars for the run and the epoch, with ETA), or null for plain lines.</param>
    /// <param name="metrics">The Prometheus instruments fed from the same messages, or null.</param>
    /// <param name="health">The run's state for the readiness probe, or null.</param>
    public static Props Props(IAnsiConsole console, RunConfig config, int printEvery, TaskCompletionSource<object> completion, ProgressContext? live = null, MocoMetrics? metrics = null,
        RunHealth? health = null)
    {
        return Akka.Actor.Props.Create(() => new TrainingProgressActor(console, config, printEvery, completion, live, metrics, health));
    }

    private void HandleRunStarting(TrainingDirector.RunStarting started)
    {
        _console.MarkupLine(ProgressLines.StartLine(started.RunId, started.Resumed, started.Epoch, started.StepInEpoch, started.StepsPerEpoch));
        _console.MarkupLine(ProgressLines.ConfigLine(_config));
        _console.MarkupLine($"  {started.WorldSize} worker(s), generation {started.Generation}");
        _world = $"{started.WorldSize} worker(s), generation {started.Generation}";
        _metrics?.RecordGeneration(started.Generation, started.WorldSize);
        (_generation, _worldSize) = (started.Generation, started.WorldSize);
        RunLogContext.Started(started.RunId, started.Generation, started.WorldSize, started.Epoch, started.GlobalStep);
        _health?.Training(started.Generation, started.WorldSize, started.Epoch, started.GlobalStep);
        _clock = Stopwatch.StartNew();
        _stepsAtClock = started.GlobalStep;
        if (_live is not null)
        {
            _runTask ??= _live.AddTask("run", maxValue: (double)started.StepsPerEpoch * _config.Epochs);
            _runTask.Value = started.GlobalStep;
            _epochTask ??= _live.AddTask($"epoch {started.Epoch}", maxValue: started.StepsPerEpoch);
            _epochTask.Value = started.StepInEpoch;
        }
    }

    private void HandleNotice(TrainingDirector.Notice notice)
    {
        _console.MarkupLine($"[yellow]{Markup.Escape(notice.Text)}[/]");
    }

    private void HandleKnnEvaluated(Worker.KnnEvaluated knn)
    {
        _console.MarkupLine(ProgressLines.KnnAtStartLine(knn.Top1Percent, _config.Init));
        _metrics?.RecordKnn(knn.Top1Percent);
        _clock = Stopwatch.StartNew(); // step rates count training only
    }

    private void HandleStepCompleted(Worker.StepCompleted step)
    {
        // images per second since training (re)started in this process (the kNN evaluation at the start excluded)
        double rate = (step.GlobalStep + 1 - _stepsAtClock) * _config.BatchSize / Math.Max(1e-9, _clock.Elapsed.TotalSeconds);
        RunLogContext.Step(step.Epoch, step.GlobalStep);
        _health?.Training(_generation, _worldSize, step.Epoch, step.GlobalStep);
        if (_metrics is not null)
        {
            _metrics.RecordStep(step.GlobalStep, step.Epoch, step.Loss, step.LearningRate, rate / _config.BatchSize, rate);
            if (step.AllReduceWaitSeconds > 0)
            {
                _metrics.RecordAllReduce(step.AllReduceWaitSeconds); // 0: a world of one, nothing was reduced
            }
        }

        if (_live is not null && _runTask is not null && _epochTask is not null)
        {
            _runTask.Value = step.GlobalStep + 1;
            _epochTask.Value = step.StepInEpoch + 1;
            _epochTask.Description = string.Format(System.Globalization.CultureInfo.InvariantCulture,
                "epoch {0}  loss {1:F4}  lr {2:G4}  {3:F0} img/s  {4}  {5}", step.Epoch, step.Loss, step.LearningRate, rate, _world, _queue);
            return;
        }
        if ((step.GlobalStep + 1) % _printEvery != 0)
        {
            return;
        }

        if (_records is not null)
        {
            _records.LogInformation("step {GlobalStep} of epoch {Epoch}: loss {Loss:F4}, instance accuracy {InstanceAccuracy:F1} %, lr {LearningRate:G4}, {ImagesPerSecond:F0} img/s, rank {Rank}",
                step.GlobalStep, step.Epoch, step.Loss, step.InstanceAccuracy, step.LearningRate, rate, 0);
            return;
        }
        _console.WriteLine(ProgressLines.StepLine(step.Epoch, step.StepInEpoch, step.StepsPerEpoch, step.Loss, step.InstanceAccuracy, step.LearningRate, rate));
    }

    private void HandleEpochDone(Worker.EpochDone epoch)
    {
        if (_records is not null)
        {
            _records.LogInformation("epoch {Epoch} done at step {GlobalStep}: loss {Loss:F4}, lr {LearningRate:G4}, {Seconds:F1} s, {ImagesPerSecond:F0} img/s, kNN top-1 {KnnTop1Percent} %, rank {Rank}",
                epoch.Epoch, epoch.GlobalStep, epoch.Loss, epoch.LearningRate, epoch.Seconds, epoch.ImagesPerSecond, epoch.KnnTop1Percent, 0);
        }
        else
        {
            _console.MarkupLine(ProgressLines.EpochLine(epoch.Epoch, epoch.Loss, epoch.LearningRate, epoch.Seconds, epoch.ImagesPerSecond, epoch.KnnTop1Percent));
        }
        if (epoch.KnnTop1Percent is { } top1)
        {
            _metrics?.RecordKnn(top1);
        }
    }

    private void HandleCheckpointWritten(Checkpointer.Written written)
    {
        _log.Debug("Checkpoint {0} ({1:F1} s beside training)", written.Path, written.Seconds);
        _metrics?.RecordCheckpoint(written.Seconds);
    }

    private void HandleGenerationFormed(TrainingDirector.GenerationFormed formed)
    {
        _world = $"{formed.WorldSize} worker(s), generation {formed.Generation}";
        _metrics?.RecordGeneration(formed.Generation, formed.WorldSize);
        (_generation, _worldSize) = (formed.Generation, formed.WorldSize);
        RunLogContext.Generation(formed.Generation, formed.WorldSize);
        var what = formed.Recreated.Count == 0
            ? $"{formed.WorldSize} worker(s) go on"
            : $"{formed.WorldSize} worker(s); rank(s) {string.Join(", ", formed.Recreated)} took their state from {Markup.Escape(formed.Source)}";
        _console.MarkupLine($"[yellow]generation {formed.Generation}[/]: {what}; training resumes at step {formed.GlobalStep}");
    }

    private void HandleQueueAge(QueueKeeper.Age age)
    {
        if (age.OldestKeyAgeSteps is { } oldestSteps)
        {
            _metrics?.RecordQueueAge(oldestSteps);
        }

        _queue = age.OldestKeyAgeSteps is { } oldest
            ? $"queue oldest key {oldest} steps"
            : $"queue {age.Filled}/{age.Capacity} filled";
    }

    private void HandleFinal(object final)
    {
        switch (final)
        {
            case TrainingDirector.RunFailed failed:
                _health?.Failed(failed.Reason);
                break;
            case TrainingDirector.RunCompleted completed:
                _health?.Ended($"completed at step {completed.GlobalStep}");
                break;
            case TrainingDirector.Interrupted interrupted:
                _health?.Ended($"interrupted at step {interrupted.GlobalStep}");
                break;
        }
        _completion.TrySetResult(final);
    }
}
