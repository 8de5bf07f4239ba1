using System.Globalization;
using MoCo.Model.Evaluation;
using MoCo.Model.Training;
using Spectre.Console;

namespace MoCo.Host.Console;

/// <summary>
/// The live display of a run on a terminal: a bar for the epoch and one for the run (with ETA), the step rate,
/// loss and lr in the description; epoch results and checkpoints are printed above the bars.
/// </summary>
public sealed class LiveConsoleObserver : IPretrainObserver
{
    private readonly ProgressContext _context;
    private readonly ConsoleObserver _lines;
    private ProgressTask? _epochTask;
    private ProgressTask? _runTask;
    private System.Diagnostics.Stopwatch _clock = System.Diagnostics.Stopwatch.StartNew();
    private long _stepsAtClock;

    public LiveConsoleObserver(ProgressContext context, IAnsiConsole console)
    {
        _context = context;
        _lines = new ConsoleObserver(console, int.MaxValue);
    }

    /// <summary>Runs <paramref name="body"/> under a live progress display.</summary>
    public static void Run(IAnsiConsole console, Action<IPretrainObserver> body)
    {
        console.Progress()
            .AutoClear(false)
            .HideCompleted(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(),
                new RemainingTimeColumn(), new SpinnerColumn())
            .Start(ctx => body(new LiveConsoleObserver(ctx, console)));
    }

    public void RunStarting(Pretrainer trainer, bool resumed)
    {
        _lines.RunStarting(trainer, resumed);
        long total = (long)trainer.StepsPerEpoch * trainer.Config.Epochs;
        _runTask = _context.AddTask("run", maxValue: total);
        _runTask.Value = trainer.GlobalStep;
        _epochTask = _context.AddTask($"epoch {trainer.Epoch}", maxValue: trainer.StepsPerEpoch);
        _epochTask.Value = trainer.StepInEpoch;
        _clock = System.Diagnostics.Stopwatch.StartNew();
        _stepsAtClock = trainer.GlobalStep;
    }

    public void KnnAtStart(Accuracy accuracy)
    {
        _lines.KnnAtStart(accuracy);
        _clock = System.Diagnostics.Stopwatch.StartNew();
    }

    public void StepCompleted(StepResult step, Pretrainer trainer)
    {
        double rate = (trainer.GlobalStep - _stepsAtClock) * trainer.Config.BatchSize / Math.Max(1e-9, _clock.Elapsed.TotalSeconds);
        if (_epochTask is not null)
        {
            if (step.StepInEpoch == 0)
            {
                _epochTask.Value = 0;
            }
            _epochTask.Value = step.StepInEpoch + 1;
            _epochTask.Description = string.Format(CultureInfo.InvariantCulture, "epoch {0}  loss {1:F4}  lr {2:G4}  {3:F0} img/s",
                step.Epoch, step.Loss, step.Lr, rate);
        }
        if (_runTask is not null)
        {
            _runTask.Value = trainer.GlobalStep;
        }
    }

    public void EpochCompleted(EpochReport report) => _lines.EpochCompleted(report);

    public void CheckpointSaved(string path, string sha256, double seconds) => _lines.CheckpointSaved(path, sha256, seconds);
}
