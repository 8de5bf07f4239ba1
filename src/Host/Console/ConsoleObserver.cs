using System.Globalization;
using MoCo.Model.Evaluation;
using MoCo.Model.Training;
using Spectre.Console;

namespace MoCo.Host.Console;

/// <summary>Prints a run's progress: a line every n steps, and one per epoch with the kNN top-1.</summary>
public sealed class ConsoleObserver : IPretrainObserver
{
    private readonly IAnsiConsole _console;
    private readonly int _printEvery;
    private System.Diagnostics.Stopwatch _clock = System.Diagnostics.Stopwatch.StartNew();
    private long _stepsAtClock;

    public ConsoleObserver(IAnsiConsole console, int printEvery)
    {
        _console = console;
        _printEvery = Math.Max(1, printEvery);
    }

    public void RunStarting(Pretrainer trainer, bool resumed)
    {
        var c = trainer.Config;
        _console.MarkupLine($"[bold]{(resumed ? "resuming" : "starting")}[/] run [cyan]{Markup.Escape(trainer.RunId)}[/] at epoch {trainer.Epoch}, step {trainer.StepInEpoch} " +
            $"({trainer.StepsPerEpoch} steps/epoch)");
        _console.MarkupLine($"  {c.Arch} width {c.Width} {c.Stem} stem, dim {c.MocoDim}{(c.Mlp ? " + MLP" : "")}, K {c.MocoK}, m {c.MocoM}, T {c.MocoT}, " +
            $"batch {c.BatchSize} in {c.BnSplits} BN groups, lr {c.Lr} {(c.Cos ? "cosine" : "step " + string.Join("/", c.Schedule))}, {c.Precision}, aug {c.Augmentation}");
        if (trainer.Data.Report.Skipped > 0)
        {
            _console.MarkupLine($"  [yellow]{Markup.Escape(trainer.Data.Report.ToString())}[/]");
        }
        _clock = System.Diagnostics.Stopwatch.StartNew();
        _stepsAtClock = trainer.GlobalStep;
    }

    public void KnnAtStart(Accuracy accuracy)
    {
        _console.MarkupLine($"kNN top-1 of the random encoder: [bold]{accuracy.Top1:F2}%[/]");
        _clock = System.Diagnostics.Stopwatch.StartNew(); // step rates count training only
    }

    public void StepCompleted(StepResult step, Pretrainer trainer)
    {
        if ((step.GlobalStep + 1) % _printEvery != 0)
        {
            return;
        }
        double rate = (trainer.GlobalStep - _stepsAtClock) * trainer.Config.BatchSize / Math.Max(1e-9, _clock.Elapsed.TotalSeconds);
        _console.WriteLine(string.Format(CultureInfo.InvariantCulture,
            "  epoch {0} step {1}/{2}  loss {3:F4}  inst-acc {4:P1}  lr {5:G4}  {6:F0} img/s",
            step.Epoch, step.StepInEpoch + 1, trainer.StepsPerEpoch, step.Loss, step.InstanceAcc, step.Lr, rate));
    }

    public void EpochCompleted(EpochReport r)
    {
        var knn = r.Knn is null ? "" : $"  kNN top-1 [bold green]{r.Knn.Top1:F2}%[/]";
        _console.MarkupLine(string.Format(CultureInfo.InvariantCulture,
            "epoch {0}: loss {1:F4}  lr {2:G4}  {3:F1} s  {4:F0} img/s{5}", r.Epoch, r.Loss, r.Lr, r.Seconds, r.ImagesPerSecond, knn));
    }

    public void CheckpointSaved(string path, string sha256, double seconds)
    {
    }
}
