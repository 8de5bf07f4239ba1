using System.Collections.Immutable;
using System.Globalization;

namespace MoCo.Actors.Run;

/// <summary>
/// Everything known about a run, as the fold of its events. Immutable; <see cref="Apply"/> is pure and refuses
/// any event that cannot follow the events already applied, so the journal only ever holds a valid history.
/// </summary>
/// <remarks>
/// Rules, beyond "started once, nothing after the end":
/// generations strictly increase and name current members, without duplicates;
/// a worker joins only when it is not a member and leaves only when it is;
/// epochs strictly increase and never end behind the last recorded step;
/// a checkpoint is never behind the last checkpoint's step;
/// the run completes at or after the last recorded step.
/// A generation may resume behind the last step (from an older checkpoint when no worker survived);
/// it then becomes the last step.
/// </remarks>
/// <param name="RunId">The run's identity; empty before <see cref="RunStarted"/>.</param>
/// <param name="ConfigJson">The run's configuration as JSON; empty before <see cref="RunStarted"/>.</param>
/// <param name="Status">Where the run is in its life.</param>
/// <param name="StartedUtc">When the run started, once it has.</param>
/// <param name="FinishedUtc">When the run completed or failed, once it has.</param>
/// <param name="Generation">The current generation; 0 before the first.</param>
/// <param name="CurrentRanks">The current generation's workers in rank order.</param>
/// <param name="Members">The workers that joined and have not left, by worker id.</param>
/// <param name="Epochs">Every completed epoch with its metrics, in order.</param>
/// <param name="Checkpoints">Every checkpoint saved, in order.</param>
/// <param name="LastStep">The global step of the latest event that carries one.</param>
/// <param name="FailureReason">Why the run failed, once it has.</param>
/// <param name="Timeline">One entry per applied event, in order.</param>
public sealed record RunState(
    string RunId,
    string ConfigJson,
    RunStatus Status,
    DateTimeOffset? StartedUtc,
    DateTimeOffset? FinishedUtc,
    int Generation,
    ImmutableList<WorkerInfo> CurrentRanks,
    ImmutableSortedDictionary<string, WorkerInfo> Members,
    ImmutableList<EpochCompleted> Epochs,
    ImmutableList<CheckpointSaved> Checkpoints,
    long LastStep,
    string? FailureReason,
    ImmutableList<TimelineEntry> Timeline) : IJournalMessage
{
    /// <summary>The state of a run before any event.</summary>
    public static RunState Empty { get; } = new(
        RunId: string.Empty,
        ConfigJson: string.Empty,
        Status: RunStatus.NotStarted,
        StartedUtc: null,
        FinishedUtc: null,
        Generation: 0,
        CurrentRanks: ImmutableList<WorkerInfo>.Empty,
        Members: ImmutableSortedDictionary<string, WorkerInfo>.Empty,
        Epochs: ImmutableList<EpochCompleted>.Empty,
        Checkpoints: ImmutableList<CheckpointSaved>.Empty,
        LastStep: 0,
        FailureReason: null,
        Timeline: ImmutableList<TimelineEntry>.Empty);

    /// <summary>How many events were applied (the journal sequence number of the last one).</summary>
    public long EventCount => Timeline.Count;

    /// <summary>The latest completed epoch, or null before the first.</summary>
    public EpochCompleted? LastEpoch => Epochs.IsEmpty ? null : Epochs[^1];

    /// <summary>The latest checkpoint, or null before the first.</summary>
    public CheckpointSaved? LastCheckpoint => Checkpoints.IsEmpty ? null : Checkpoints[^1];

    /// <summary>Whether the run accepts no further events.</summary>
    public bool IsFinished => Status is RunStatus.Completed or RunStatus.Failed;

    /// <summary>Folds one event into the state.</summary>
    /// <param name="e">The event that happened next.</param>
    /// <returns>The state after the event.</returns>
    /// <exception cref="InvalidOperationException">The event cannot follow this state; the message says why.</exception>
    public RunState Apply(IRunEvent e)
    {
        ArgumentNullException.ThrowIfNull(e);
        if (e is RunStarted started)
        {
            return ApplyRunStarted(started);
        }

        if (Status == RunStatus.NotStarted)
        {
            throw Refuse(e, "the run has not started (no RunStarted yet)");
        }

        if (IsFinished)
        {
            throw Refuse(e, $"the run is already {Status.ToString().ToLowerInvariant()}");
        }

        return e switch
        {
            GenerationStarted generation => ApplyGenerationStarted(generation),
            WorkerJoined joined => ApplyWorkerJoined(joined),
            WorkerLeft left => ApplyWorkerLeft(left),
            EpochCompleted epoch => ApplyEpochCompleted(epoch),
            CheckpointSaved checkpoint => ApplyCheckpointSaved(checkpoint),
            RunCompleted completed => ApplyRunCompleted(completed),
            RunFailed failed => ApplyRunFailed(failed),
            StepsRecorded steps => ApplyStepsRecorded(steps),
            _ => throw Refuse(e, $"unknown event type {e.GetType().Name}"),
        };
    }

    /// <summary>Folds events in order, starting from this state.</summary>
    /// <param name="events">The events, oldest first.</param>
    /// <returns>The state after the last event.</returns>
    /// <exception cref="InvalidOperationException">One of the events cannot follow the state before it.</exception>
    public RunState ApplyAll(IEnumerable<IRunEvent> events)
    {
        ArgumentNullException.ThrowIfNull(events);
        var state = this;
        foreach (var e in events)
        {
            state = state.Apply(e);
        }

        return state;
    }

    /// <summary>Value equality, comparing every collection element by element.</summary>
    public bool Equals(RunState? other)
    {
        if (ReferenceEquals(this, other))
        {
            return true;
        }

        return other is not null
            && RunId == other.RunId
            && ConfigJson == other.ConfigJson
            && Status == other.Status
            && StartedUtc == other.StartedUtc
            && FinishedUtc == other.FinishedUtc
            && Generation == other.Generation
            && LastStep == other.LastStep
            && FailureReason == other.FailureReason
            && CurrentRanks.SequenceEqual(other.CurrentRanks)
            && Members.Count == other.Members.Count
            && Members.All(m => other.Members.TryGetValue(m.Key, out var w) && w == m.Value)
            && Epochs.SequenceEqual(other.Epochs)
            && Checkpoints.SequenceEqual(other.Checkpoints)
            && Timeline.SequenceEqual(other.Timeline);
    }

    /// <inheritdoc />
    public override int GetHashCode()
    {
        return HashCode.Combine(RunId, Status, Generation, LastStep, Members.Count, Epochs.Count, Checkpoints.Count, Timeline.Count);
    }

    private RunState ApplyRunStarted(RunStarted e)
    {
        if (Status != RunStatus.NotStarted)
        {
            throw Refuse(e, $"run '{RunId}' already started");
        }

        if (string.IsNullOrWhiteSpace(e.RunId))
        {
            throw Refuse(e, "the run id is empty");
        }

        return this with
        {
            RunId = e.RunId,
            ConfigJson = e.ConfigJson,
            Status = RunStatus.Running,
            StartedUtc = e.StartedUtc,
            Timeline = Append(e.StartedUtc, $"run {e.RunId} started"),
        };
    }

    private RunState ApplyGenerationStarted(GenerationStarted e)
    {
        if (e.Generation <= Generation)
        {
            throw Refuse(e, $"generation {e.Generation} does not follow the current generation {Generation}");
        }

        if (e.Ranks.Count == 0)
        {
            throw Refuse(e, $"generation {e.Generation} has no workers");
        }

        if (e.Step < 0)
        {
            throw Refuse(e, $"generation {e.Generation} resumes at negative step {e.Step}");
        }

        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var worker in e.Ranks)
        {
            if (!seen.Add(worker.WorkerId))
            {
                throw Refuse(e, $"worker '{worker.WorkerId}' holds more than one rank in generation {e.Generation}");
            }

            if (!Members.ContainsKey(worker.WorkerId))
            {
                throw Refuse(e, $"worker '{worker.WorkerId}' of generation {e.Generation} is not a member of the run");
            }
        }

        return this with
        {
            Generation = e.Generation,
            CurrentRanks = e.Ranks.ToImmutableList(),
            LastStep = e.Step,
            Timeline = Append(null, $"generation {e.Generation} started with {e.Ranks.Count} worker(s) at step {e.Step}: "
                + string.Join(", ", e.Ranks.Select(w => w.WorkerId))),
        };
    }

    private RunState ApplyWorkerJoined(WorkerJoined e)
    {
        if (string.IsNullOrWhiteSpace(e.Worker.WorkerId))
        {
            throw Refuse(e, "the worker id is empty");
        }

        if (Members.ContainsKey(e.Worker.WorkerId))
        {
            throw Refuse(e, $"worker '{e.Worker.WorkerId}' is already a member");
        }

        return this with
        {
            Members = Members.Add(e.Worker.WorkerId, e.Worker),
            Timeline = Append(null, $"worker {e.Worker.WorkerId} joined ({e.Worker.Node}, {e.Worker.Device})"),
        };
    }

    private RunState ApplyWorkerLeft(WorkerLeft e)
    {
        if (!Members.ContainsKey(e.WorkerId))
        {
            throw Refuse(e, $"worker '{e.WorkerId}' is not a member (it never joined, or already left)");
        }

        return this with
        {
            Members = Members.Remove(e.WorkerId),
            Timeline = Append(null, $"worker {e.WorkerId} left: {e.Reason}"),
        };
    }

    private RunState ApplyEpochCompleted(EpochCompleted e)
    {
        if (LastEpoch is { } last && e.Epoch <= last.Epoch)
        {
            throw Refuse(e, $"epoch {e.Epoch} does not follow the last completed epoch {last.Epoch}");
        }

        if (e.Epoch < 0)
        {
            throw Refuse(e, $"epoch {e.Epoch} is negative");
        }

        if (e.Step < LastStep)
        {
            throw Refuse(e, $"epoch {e.Epoch} ends at step {e.Step}, behind the last step {LastStep}");
        }

        var m = e.Metrics;
        var knn = m.KnnTop1 is { } top1
            ? string.Create(CultureInfo.InvariantCulture, $", knn top-1 {top1:P1}")
            : string.Empty;
        return this with
        {
            Epochs = Epochs.Add(e),
            LastStep = e.Step,
            Timeline = Append(null, string.Create(
                CultureInfo.InvariantCulture,
                $"epoch {e.Epoch} completed at step {e.Step}: loss {m.Loss:F4}, acc {m.InstanceAccuracy:P1}{knn}, {m.ImagesPerSecond:F0} img/s")),
        };
    }

    /// <summary>
    /// Steps' losses and a chunk's state digest. Steps may be recorded again (redone from a checkpoint when no replica
    /// survived a failure): the history keeps both records, the state only moves its last step.
    /// </summary>
    private RunState ApplyStepsRecorded(StepsRecorded e)
    {
        if (e.FirstStep < 0 || e.Losses.IsEmpty)
        {
            throw Refuse(e, $"steps from {e.FirstStep} with {e.Losses.Count} losses");
        }

        if ((e.Digest is null) != (e.Checksums is null) || e.Threads < 1 || e.WorldSize < 1
            || e.DataPlane is not (StepsRecordedPlanes.InProcess or StepsRecordedPlanes.TcpRing or StepsRecordedPlanes.Nccl))
        {
            throw Refuse(e, "a digest without checksums (or the reverse), no threads or workers, or an unknown data plane");
        }

        string digest = e.Digest is null ? string.Empty : $", state {e.Digest[..Math.Min(12, e.Digest.Length)]}";
        return this with
        {
            LastStep = Math.Max(LastStep, e.EndStep),
            Timeline = Append(null, string.Create(CultureInfo.InvariantCulture,
                $"steps {e.FirstStep}-{e.EndStep - 1} recorded on {e.WorldSize} worker(s) ({e.DataPlane}): loss {e.Losses[0]:F4} to {e.Losses[^1]:F4}{digest}")),
        };
    }

    private RunState ApplyCheckpointSaved(CheckpointSaved e)
    {
        if (string.IsNullOrWhiteSpace(e.Path))
        {
            throw Refuse(e, "the checkpoint path is empty");
        }

        if (string.IsNullOrWhiteSpace(e.Sha256))
        {
            throw Refuse(e, $"checkpoint '{e.Path}' has no sha256");
        }

        if (LastCheckpoint is { } last && e.Step < last.Step)
        {
            throw Refuse(e, $"checkpoint at step {e.Step} is behind the last checkpoint at step {last.Step}");
        }

        return this with
        {
            Checkpoints = Checkpoints.Add(e),
            LastStep = Math.Max(LastStep, e.Step),
            Timeline = Append(null, $"checkpoint saved at epoch {e.Epoch}, step {e.Step}: {e.Path}"),
        };
    }

    private RunState ApplyRunCompleted(RunCompleted e)
    {
        if (e.Step < LastStep)
        {
            throw Refuse(e, $"the run cannot complete at step {e.Step}, behind the last step {LastStep}");
        }

        return this with
        {
            Status = RunStatus.Completed,
            FinishedUtc = e.CompletedUtc,
            LastStep = e.Step,
            Timeline = Append(e.CompletedUtc, $"run completed at step {e.Step}"),
        };
    }

    private RunState ApplyRunFailed(RunFailed e)
    {
        return this with
        {
            Status = RunStatus.Failed,
            FinishedUtc = e.FailedUtc,
            FailureReason = e.Reason,
            Timeline = Append(e.FailedUtc, $"run failed: {e.Reason}"),
        };
    }

    private ImmutableList<TimelineEntry> Append(DateTimeOffset? utc, string description)
    {
        return Timeline.Add(new TimelineEntry(Timeline.Count + 1, utc, description));
    }

    private InvalidOperationException Refuse(IRunEvent e, string why)
    {
        var run = string.IsNullOrEmpty(RunId) ? "run" : $"run '{RunId}'";
        return new InvalidOperationException($"{e.GetType().Name} refused for {run}: {why}.");
    }
}
