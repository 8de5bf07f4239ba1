using MoCo.Actors.Run;

namespace MoCo.Host.History;

/// <summary>
/// What a run's journal says its steps computed (<see cref="StepsRecorded"/> events): each global step's loss, the
/// state digests at chunk ends, and the world size and threads that computed them. A step recorded twice (redone after
/// a failure from a checkpoint) keeps its last record: that is the computation the run went on from.
/// </summary>
public sealed class RecordedSteps
{
    private readonly SortedDictionary<long, double> _losses = [];
    private readonly SortedDictionary<long, StepsRecorded> _digests = [];
    private readonly SortedDictionary<long, StepsRecorded> _records = [];

    private RecordedSteps(string runId, string configJson)
    {
        RunId = runId;
        ConfigJson = configJson;
    }

    /// <summary>The run.</summary>
    public string RunId { get; }

    /// <summary>The run's configuration as journaled when it started.</summary>
    public string ConfigJson { get; }

    /// <summary>Each recorded step's loss, by global step.</summary>
    public IReadOnlyDictionary<long, double> Losses => _losses;

    /// <summary>The records that carry a state digest, by the step count at which it was taken (their <see cref="StepsRecorded.EndStep"/>).</summary>
    public IReadOnlyDictionary<long, StepsRecorded> DigestsAt => _digests;

    /// <summary>The step after the last recorded one (0 when none is).</summary>
    public long EndStep => _losses.Count == 0 ? 0 : _losses.Keys.Max() + 1;

    /// <summary>Reads a run's events.</summary>
    /// <param name="events">The run's events, oldest first.</param>
    /// <exception cref="HistoryError">The journal holds no per-step record of the run (it ran before they existed), or no start.</exception>
    public static RecordedSteps FromEvents(IReadOnlyList<IRunEvent> events)
    {
        ArgumentNullException.ThrowIfNull(events);
        var started = events.OfType<RunStarted>().FirstOrDefault()
            ?? throw new HistoryError("the journal holds no start of this run (RunStarted): nothing to replay");
        var recorded = new RecordedSteps(started.RunId, started.ConfigJson);
        foreach (var steps in events.OfType<StepsRecorded>())
        {
            for (int i = 0; i < steps.Losses.Count; i++)
            {
                recorded._losses[steps.FirstStep + i] = steps.Losses[i];
                recorded._records[steps.FirstStep + i] = steps;
            }

            if (steps.Digest is not null)
            {
                recorded._digests[steps.EndStep] = steps;
            }
        }

        if (recorded._losses.Count == 0)
        {
            throw new HistoryError($"run {started.RunId}'s journal records no per-step losses (StepsRecorded): it was trained by a version " +
                "of moco that did not journal them, or stopped before its first chunk of steps; there is nothing to verify against");
        }

        return recorded;
    }

    /// <summary>The record that holds <paramref name="step"/>'s loss (world size, threads), or null.</summary>
    public StepsRecorded? RecordOf(long step) => _records.GetValueOrDefault(step);
}
