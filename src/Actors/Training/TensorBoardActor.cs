using System.Globalization;
using Akka.Actor;
using Akka.Event;
using MoCo.Actors.Queue;
using MoCo.Actors.Workers;
using MoCo.Model.Data;
using TorchSharp;

namespace MoCo.Actors.Training;

/// <summary>
/// Writes a run's TensorBoard event files under <c>tb/</c> in its run directory with TorchSharp's
/// <see cref="TorchSharp.Modules.SummaryWriter"/>, fed by the director with what it already receives from rank 0: per step
/// <c>train/loss</c>, <c>train/instance_accuracy</c>, <c>train/lr</c> (and <c>train/allreduce_wait_seconds</c> in a
/// world of more than one) at the global step (0-based, as <see cref="Worker.StepCompleted.GlobalStep"/>); per epoch
/// <c>epoch/loss</c>, <c>epoch/knn_top1</c>, <c>epoch/knn_top5</c> (percent, when the kNN monitor ran),
/// <c>epoch/images_per_second</c> (and <c>epoch/knn_seconds</c>) at the epoch's number (the rows of metrics.csv); <c>train/world_size</c> at every
/// generation and <c>train/queue_age_steps</c> (the oldest key's age, once the queue is full) at the step it was
/// reported; once per epoch (with its first step), at the epoch's number, the image <c>augmentation/views</c>: the first images of the
/// epoch's order beside the two views the step draws for them (<see cref="AugmentationGrid"/>); and as text the run's
/// configuration once per process (<c>config</c>) and every generation (<c>generation</c>; TensorBoard lists them as
/// <c>config/text_summary</c> and <c>generation/text_summary</c>).
/// </summary>
/// <remarks>
/// A child of the director on the default dispatcher, so no worker thread ever waits on the disk. Every process writes
/// a new event file in the same folder (a resumed run included); TensorBoard merges them by step. TorchSharp's writer
/// appends and flushes each event as it is added (it has no buffer to flush), so what an epoch end or a stop has seen is
/// on disk already; wall times are whole Unix seconds (TorchSharp's writer takes a long).
/// A write that fails (a full disk) is logged and ends TensorBoard logging for this process; training goes on.
/// </remarks>
public sealed class TensorBoardActor : ReceiveActor
{
    /// <summary>The folder under the run directory that holds the event files.</summary>
    public const string FolderName = "tb";

    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly string _directory;
    private readonly string _configJson;
    private readonly int _epochs;
    private readonly Func<int, torch.Tensor>? _views;
    private readonly HashSet<int> _viewsWritten = [];
    private TorchSharp.Modules.SummaryWriter? _writer;
    private bool _opened;

    /// <summary>Creates the writer; use <see cref="Props"/>.</summary>
    /// <param name="runDirectory">The run directory; the event files go to its <c>tb/</c>.</param>
    /// <param name="configJson">The run's configuration (written once as text).</param>
    /// <param name="epochs">The run's epochs (no views are drawn for an epoch past the last).</param>
    /// <param name="views">Renders an epoch's augmentation grid (CHW in [0, 1]), or null for none.</param>
    public TensorBoardActor(string runDirectory, string configJson, int epochs = 0, Func<int, torch.Tensor>? views = null)
    {
        _directory = Path.Combine(runDirectory, FolderName);
        _configJson = configJson;
        _epochs = epochs;
        _views = views;
        Receive<QueueKeeper.Age>(HandleQueueAge);
        Receive<Worker.StepCompleted>(HandleStepCompleted);
        Receive<Worker.EpochDone>(HandleEpochDone);
        Receive<TrainingDirector.RunStarting>(HandleRunStarting);
        Receive<TrainingDirector.GenerationFormed>(HandleGenerationFormed);
    }

    /// <summary>Props for the writer.</summary>
    /// <param name="runDirectory">The run directory; the event files go to its <c>tb/</c>.</param>
    /// <param name="configJson">The run's configuration as JSON (written once as text).</param>
    /// <param name="epochs">The run's epochs.</param>
    /// <param name="views">Renders an epoch's augmentation grid, or null for none.</param>
    public static Props Props(string runDirectory, string configJson, int epochs = 0, Func<int, torch.Tensor>? views = null)
    {
        return Akka.Actor.Props.Create(() => new TensorBoardActor(runDirectory, configJson, epochs, views));
    }

    /// <summary>
    /// Opens the writer when the run starts training, not when the director starts: a run found already finished in
    /// the journal writes nothing, not even an empty <c>tb/</c>.
    /// </summary>
    private void Open()
    {
        if (_opened)
        {
            return;
        }

        _opened = true;
        try
        {
            _writer = torch.utils.tensorboard.SummaryWriter(_directory);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _log.Warning("No TensorBoard logging in {0} for this process: {1}", _directory, e.Message);
            return;
        }

        // TensorBoard renders text as markdown: a code block keeps the JSON as it is
        Write(w => w.add_text("config", "```\n" + _configJson + "\n```", 0, WallTime()));
    }

    private void HandleStepCompleted(Worker.StepCompleted step)
    {
        if (step.StepInEpoch == 0)
        {
            WriteViews(step.Epoch); // with the epoch's first step: each step is logged once, a resumed run included, so are the views
        }

        Write(w =>
        {
            int x = Step(step.GlobalStep);
            long wall = WallTime();
            w.add_scalar("train/loss", (float)step.Loss, x, wall);
            w.add_scalar("train/instance_accuracy", (float)step.InstanceAccuracy, x, wall);
            w.add_scalar("train/lr", (float)step.LearningRate, x, wall);
            if (step.AllReduceWaitSeconds > 0)
            {
                w.add_scalar("train/allreduce_wait_seconds", (float)step.AllReduceWaitSeconds, x, wall); // 0: nothing was reduced
            }
        });
    }

    private void HandleEpochDone(Worker.EpochDone epoch)
    {
        Write(w =>
        {
            long wall = WallTime();
            w.add_scalar("epoch/loss", (float)epoch.Loss, epoch.Epoch, wall);
            if (epoch.KnnTop1Percent is { } top1)
            {
                w.add_scalar("epoch/knn_top1", (float)top1, epoch.Epoch, wall);
            }

            if (epoch.KnnTop5Percent is { } top5)
            {
                w.add_scalar("epoch/knn_top5", (float)top5, epoch.Epoch, wall);
            }

            w.add_scalar("epoch/images_per_second", (float)epoch.ImagesPerSecond, epoch.Epoch, wall);
            if (epoch.KnnSeconds is { } knnSeconds)
            {
                w.add_scalar("epoch/knn_seconds", (float)knnSeconds, epoch.Epoch, wall);
            }
        });
    }

    private void HandleQueueAge(QueueKeeper.Age age)
    {
        if (age.OldestKeyAgeSteps is { } oldest)
        {
            Write(w => w.add_scalar("train/queue_age_steps", oldest, Step(age.GlobalStep), WallTime()));
        }
    }

    /// <summary>The augmentation grid of <paramref name="epoch"/>, once, for an epoch the run trains.</summary>
    private void WriteViews(int epoch)
    {
        if (_views is null || epoch >= _epochs || !_viewsWritten.Add(epoch))
        {
            return;
        }

        Write(w =>
        {
            using var grid = _views(epoch);
            w.add_img("augmentation/views", grid, epoch, WallTime());
        });
    }

    private void HandleRunStarting(TrainingDirector.RunStarting started)
    {
        Open();
        var how = started.Resumed ? "resumed" : "started";
        Write(w => w.add_scalar("train/world_size", started.WorldSize, Step(started.GlobalStep), WallTime()));
        WriteGeneration(started.GlobalStep, string.Create(CultureInfo.InvariantCulture,
            $"generation {started.Generation}: {started.WorldSize} worker(s); run {started.RunId} {how} at step {started.GlobalStep} (epoch {started.Epoch})"));
    }

    private void HandleGenerationFormed(TrainingDirector.GenerationFormed formed)
    {
        var what = formed.Recreated.Count == 0
            ? $"{formed.WorldSize} worker(s) go on"
            : $"{formed.WorldSize} worker(s); rank(s) {string.Join(", ", formed.Recreated)} took their state from {formed.Source}";
        Write(w => w.add_scalar("train/world_size", formed.WorldSize, Step(formed.GlobalStep), WallTime()));
        WriteGeneration(formed.GlobalStep, string.Create(CultureInfo.InvariantCulture,
            $"generation {formed.Generation}: {what}; training resumes at step {formed.GlobalStep}"));
    }

    private void WriteGeneration(long globalStep, string text)
    {
        Write(w => w.add_text("generation", text, Step(globalStep), WallTime()));
    }

    /// <summary>Runs <paramref name="write"/> unless an earlier write failed; a failure is logged once and ends logging.</summary>
    private void Write(Action<TorchSharp.Modules.SummaryWriter> write)
    {
        if (_writer is not { } writer)
        {
            return;
        }

        try
        {
            write(writer);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _log.Warning("TensorBoard logging in {0} stops for this process: {1}", _directory, e.Message);
            _writer = null;
        }
    }

    /// <summary>TorchSharp's writer takes an int step; a run never gets near 2^31 steps, but a wrong step must not throw.</summary>
    private static int Step(long globalStep) => (int)Math.Clamp(globalStep, 0, int.MaxValue);

    /// <summary>Unix seconds, given explicitly: what TensorBoard's wall-time axis expects (TorchSharp takes whole seconds).</summary>
    private static long WallTime() => DateTimeOffset.UtcNow.ToUnixTimeSeconds();
}
