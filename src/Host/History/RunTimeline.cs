using MoCo.Actors.Run;

namespace MoCo.Host.History;

/// <summary>
/// A run's history as <c>moco history</c> shows it and <c>moco history --json</c> writes it, built from the journal
/// alone: the events in order, and the state <see cref="RunState.Apply"/> folds them into.
/// </summary>
/// <param name="RunId">The run's identity.</param>
/// <param name="Status">Where the run is in its life (<see cref="RunStatus"/> as text).</param>
/// <param name="StartedUtc">When it started.</param>
/// <param name="FinishedUtc">When it completed or failed.</param>
/// <param name="LastStep">The global step of the latest event that carries one.</param>
/// <param name="ConfigJson">The run's configuration as JSON.</param>
/// <param name="Generations">Every generation, in order.</param>
/// <param name="Membership">Every join and leave, in order.</param>
/// <param name="Epochs">Every completed epoch with its metrics, in order.</param>
/// <param name="Checkpoints">Every checkpoint saved, in order.</param>
/// <param name="Failures">The run's failure, when it failed.</param>
/// <param name="Events">One line per event, as <see cref="RunState.Timeline"/> words it.</param>
public sealed record RunTimeline(
    string RunId,
    string Status,
    DateTimeOffset? StartedUtc,
    DateTimeOffset? FinishedUtc,
    long LastStep,
    string ConfigJson,
    IReadOnlyList<RunTimeline.GenerationEntry> Generations,
    IReadOnlyList<RunTimeline.MembershipEntry> Membership,
    IReadOnlyList<RunTimeline.EpochEntry> Epochs,
    IReadOnlyList<RunTimeline.CheckpointEntry> Checkpoints,
    IReadOnlyList<RunTimeline.FailureEntry> Failures,
    IReadOnlyList<TimelineEntry> Events)
{
    /// <summary>Builds the timeline of a run from its journaled events.</summary>
    /// <param name="events">The run's events, oldest first (sequence numbers are their 1-based positions).</param>
    /// <exception cref="InvalidOperationException">The events are not a valid history (<see cref="RunState.Apply"/> refuses one).</exception>
    public static RunTimeline FromEvents(IReadOnlyList<IRunEvent> events)
    {
        ArgumentNullException.ThrowIfNull(events);
        var state = RunState.Empty.ApplyAll(events);
        var generations = new List<GenerationEntry>();
        var membership = new List<MembershipEntry>();
        var epochs = new List<EpochEntry>();
        var checkpoints = new List<CheckpointEntry>();
        var failures = new List<FailureEntry>();
        long previousEpochStep = 0;
        for (var i = 0; i < events.Count; i++)
        {
            long sequence = i + 1;
            switch (events[i])
            {
                case GenerationStarted g:
                    generations.Add(new GenerationEntry(sequence, g.Generation, g.Step, g.Ranks.ToList()));
                    break;
                case WorkerJoined j:
                    membership.Add(new MembershipEntry(sequence, "joined", j.Worker.WorkerId, j.Worker.Node, j.Worker.Device, null));
                    break;
                case WorkerLeft l:
                    membership.Add(new MembershipEntry(sequence, "left", l.WorkerId, null, null, l.Reason));
                    break;
                case EpochCompleted e:
                    var m = e.Metrics;
                    epochs.Add(new EpochEntry(sequence, e.Epoch, e.Step, e.Step - previousEpochStep, m.Loss, m.InstanceAccuracy,
                        m.LearningRate, m.KnnTop1, m.KnnTop5, m.Seconds, m.ImagesPerSecond));
                    previousEpochStep = e.Step;
                    break;
                case CheckpointSaved c:
                    checkpoints.Add(new CheckpointEntry(sequence, c.Epoch, c.Step, c.Path, c.Sha256));
                    break;
                case RunFailed f:
                    failures.Add(new FailureEntry(sequence, f.FailedUtc, f.Reason));
                    break;
            }
        }

        return new RunTimeline(state.RunId, state.Status.ToString(), state.StartedUtc, state.FinishedUtc, state.LastStep,
            state.ConfigJson, generations, membership, epochs, checkpoints, failures, state.Timeline);
    }

    /// <summary>A generation of workers.</summary>
    /// <param name="Sequence">The event's journal sequence number.</param>
    /// <param name="Generation">The generation number.</param>
    /// <param name="Step">The global step it resumed at.</param>
    /// <param name="Ranks">Its workers in rank order.</param>
    public sealed record GenerationEntry(long Sequence, int Generation, long Step, IReadOnlyList<WorkerInfo> Ranks);

    /// <summary>A worker joined or left.</summary>
    /// <param name="Sequence">The event's journal sequence number.</param>
    /// <param name="Change"><c>joined</c> or <c>left</c>.</param>
    /// <param name="WorkerId">The worker.</param>
    /// <param name="Node">Its node, for a join.</param>
    /// <param name="Device">Its device, for a join.</param>
    /// <param name="Reason">Why it left, for a leave.</param>
    public sealed record MembershipEntry(long Sequence, string Change, string WorkerId, string? Node, string? Device, string? Reason);

    /// <summary>A completed epoch.</summary>
    /// <param name="Sequence">The event's journal sequence number.</param>
    /// <param name="Epoch">The epoch number.</param>
    /// <param name="Step">The global step at its end.</param>
    /// <param name="Steps">Steps since the previous epoch's end (since step 0 for the first).</param>
    /// <param name="Loss">Mean contrastive loss.</param>
    /// <param name="InstanceAccuracy">Mean instance-discrimination accuracy in [0, 1].</param>
    /// <param name="LearningRate">Learning rate at the end of the epoch.</param>
    /// <param name="KnnTop1">kNN top-1 in [0, 1], when the monitor ran.</param>
    /// <param name="KnnTop5">kNN top-5 in [0, 1], when the monitor ran.</param>
    /// <param name="Seconds">Wall-clock duration.</param>
    /// <param name="ImagesPerSecond">Training throughput.</param>
    public sealed record EpochEntry(
        long Sequence,
        int Epoch,
        long Step,
        long Steps,
        double Loss,
        double InstanceAccuracy,
        double LearningRate,
        double? KnnTop1,
        double? KnnTop5,
        double Seconds,
        double ImagesPerSecond);

    /// <summary>A checkpoint written to disk.</summary>
    /// <param name="Sequence">The event's journal sequence number.</param>
    /// <param name="Epoch">The epoch it belongs to.</param>
    /// <param name="Step">The global step it holds.</param>
    /// <param name="Path">The file.</param>
    /// <param name="Sha256">Its SHA-256.</param>
    public sealed record CheckpointEntry(long Sequence, int Epoch, long Step, string Path, string Sha256);

    /// <summary>The run stopped on an error.</summary>
    /// <param name="Sequence">The event's journal sequence number.</param>
    /// <param name="Utc">When.</param>
    /// <param name="Reason">What went wrong.</param>
    public sealed record FailureEntry(long Sequence, DateTimeOffset Utc, string Reason);
}
