using System.Globalization;
using MoCo.Model.Training;
using Spectre.Console;

namespace MoCo.Host.Console;

/// <summary>The wording of a run's progress lines (a line every n steps, one per epoch with the kNN top-1).</summary>
public static class ProgressLines
{
    /// <summary>The markup line that opens a run.</summary>
    public static string StartLine(string runId, bool resumed, int epoch, int stepInEpoch, int stepsPerEpoch) =>
        $"[bold]{(resumed ? "resuming" : "starting")}[/] run [cyan]{Markup.Escape(runId)}[/] at epoch {epoch}, step {stepInEpoch} ({stepsPerEpoch} steps/epoch)";

    /// <summary>The markup line that summarises a run's configuration.</summary>
    public static string ConfigLine(RunConfig c) =>
        $"  {c.Arch} width {c.Width} {c.Stem} stem, dim {c.MocoDim}{(c.Mlp ? " + MLP" : "")}, K {c.MocoK}, m {c.MocoM}, T {c.MocoT}, " +
        $"batch {c.BatchSize} in {c.BnSplits} BN groups, lr {c.Lr} {(c.Cos ? "cosine" : "step " + string.Join("/", c.Schedule))}, {c.Precision}, aug {c.Augmentation}";

    /// <summary>
    /// The markup line for the kNN monitor before the first step (top-1 in percent): of the random encoder, or of the
    /// weights the run started from (<paramref name="init"/>, <c>--init</c>; empty: none).
    /// </summary>
    public static string KnnAtStartLine(double top1Percent, string init = "") => init.Length == 0
        ? $"kNN top-1 of the random encoder: [bold]{top1Percent:F2}%[/]"
        : $"kNN top-1 before the first step (weights from {Markup.Escape(Path.GetFileName(init))}): [bold]{top1Percent:F2}%[/]";

    /// <summary>The plain line printed every n steps (<paramref name="stepInEpoch"/> 0-based).</summary>
    public static string StepLine(int epoch, int stepInEpoch, int stepsPerEpoch, double loss, double instanceAcc, double lr, double imagesPerSecond) =>
        string.Format(CultureInfo.InvariantCulture,
            "  epoch {0} step {1}/{2}  loss {3:F4}  inst-acc {4:P1}  lr {5:G4}  {6:F0} img/s",
            epoch, stepInEpoch + 1, stepsPerEpoch, loss, instanceAcc, lr, imagesPerSecond);

    /// <summary>The markup line printed at each epoch end (kNN top-1 in percent, when it ran).</summary>
    public static string EpochLine(int epoch, double loss, double lr, double seconds, double imagesPerSecond, double? knnTop1Percent)
    {
        var knn = knnTop1Percent is null ? "" : $"  kNN top-1 [bold green]{knnTop1Percent:F2}%[/]";
        return string.Format(CultureInfo.InvariantCulture,
            "epoch {0}: loss {1:F4}  lr {2:G4}  {3:F1} s  {4:F0} img/s{5}", epoch, loss, lr, seconds, imagesPerSecond, knn);
    }
}
