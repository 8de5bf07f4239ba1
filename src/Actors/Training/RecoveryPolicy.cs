using MoCo.Actors.Workers;

namespace MoCo.Actors.Training;

/// <summary>What the director knows of one rank of the generation when an exchange has failed.</summary>
/// <param name="Remote">Its worker lives on another node (not re-created in place: the node leaves the run).</param>
/// <param name="Leaving">Its node told the director it leaves on purpose (SIGTERM, Ctrl-C, a scale-down).</param>
/// <param name="Gone">Its worker actor is gone (stopped, or its node lost).</param>
/// <param name="ChunkEndStep">The step its last completed chunk of this exchange ended at; null when it did not finish one.</param>
internal sealed record RankFacts(bool Remote, bool Leaving, bool Gone, long? ChunkEndStep = null);

/// <summary>The director's decision after a failed exchange (see <see cref="RecoveryPolicy.Plan"/>).</summary>
/// <param name="Cause">The failure named as the cause.</param>
/// <param name="CauseIsLeave">The cause is a node leaving on purpose.</param>
/// <param name="Failed">The ranks that leave the generation (remote) or are re-created (local), in order.</param>
/// <param name="Survivors">The ranks that go on with their in-memory state, in order.</param>
/// <param name="Graceful">Every failed rank's node left on purpose: a membership change, not a failure.</param>
/// <param name="FailuresInARow">The count of failures in a row after this one (a graceful change does not count).</param>
/// <param name="GiveUp">The count exceeds the limit: the run fails.</param>
/// <param name="Delay">How long to wait before the new generation.</param>
/// <param name="SurvivorStep">The step the survivors resume at (the director's step when there is none).</param>
internal sealed record RecoveryPlan(
    Worker.WorkerFailed Cause,
    bool CauseIsLeave,
    IReadOnlyList<int> Failed,
    IReadOnlyList<int> Survivors,
    bool Graceful,
    int FailuresInARow,
    bool GiveUp,
    TimeSpan Delay,
    long SurvivorStep)
{
    /// <summary>The failed ranks whose workers live on other nodes: they leave the run.</summary>
    public IEnumerable<int> Remote(IReadOnlyList<RankFacts> ranks) => Failed.Where(r => ranks[r].Remote);

    /// <summary>The failed ranks of this process: re-created in place.</summary>
    public IEnumerable<int> Local(IReadOnlyList<RankFacts> ranks) => Failed.Where(r => !ranks[r].Remote);
}

/// <summary>
/// Decides what follows a failed exchange: who failed and who survives, whether it counts as a failure, how long to
/// wait, whether to give up, and where the survivors stand. A pure function of what the director knows, so that every
/// case is a row of a table test.
/// </summary>
internal static class RecoveryPolicy
{
    /// <summary>Plans the recovery from an exchange in which <paramref name="failures"/> were reported.</summary>
    /// <param name="failures">The failures reported in the exchange (at least one).</param>
    /// <param name="ranks">What the director knows of each rank of the generation.</param>
    /// <param name="failuresInARow">Failures in a row before this one (reset by a completed chunk).</param>
    /// <param name="maxRestarts">The most failures in a row before the run fails.</param>
    /// <param name="backoffMin">The first backoff; it doubles with each failure in a row.</param>
    /// <param name="backoffMax">The longest backoff.</param>
    /// <param name="directorStep">The last step the director knows the generation completed.</param>
    /// <param name="elastic">A run across nodes, whose every rank reports a failure (the survivors' collectives failed).</param>
    public static RecoveryPlan Plan(IReadOnlyList<Worker.WorkerFailed> failures, IReadOnlyList<RankFacts> ranks, int failuresInARow, int maxRestarts,
        TimeSpan backoffMin, TimeSpan backoffMax, long directorStep, bool elastic)
    {
        ArgumentOutOfRangeException.ThrowIfZero(failures.Count);
        bool IsLeaving(int rank) => rank < ranks.Count && ranks[rank].Remote && ranks[rank].Leaving;

        // a node that leaves on purpose ends the collectives of the ranks it leaves behind: whatever their rings raised,
        // their failures are its consequence, and they go on as survivors
        var leavers = failures.Select(f => f.Rank).Where(IsLeaving).ToHashSet();
        var cause = failures.OrderByDescending(f => leavers.Contains(f.Rank)).ThenByDescending(f => f.FirstFailure).ThenBy(f => f.Rank).First();
        var failed = failures.Where(f => f.FirstFailure && (leavers.Count == 0 || leavers.Contains(f.Rank))).Select(f => f.Rank)
            .Concat(Enumerable.Range(0, ranks.Count).Where(r => ranks[r].Gone))
            .Append(cause.Rank).Where(r => r < ranks.Count).Distinct().Order().ToList();

        // a node that leaves on purpose is a membership change, not a failure: no count, no wait, no quarantine
        bool graceful = failed.All(IsLeaving);
        int inARow = graceful ? failuresInARow : failuresInARow + 1;
        var survivors = Enumerable.Range(0, ranks.Count).Except(failed).ToList();
        bool local = failed.Any(r => !ranks[r].Remote);
        // the backoff keeps a failing rank from being re-created in a loop; a lost node's ranks are not re-created (the
        // node is quarantined), so the first such loss regroups the survivors at once
        bool now = graceful || (!local && survivors.Count > 0 && inARow == 1);
        var delay = now ? TimeSpan.Zero : Backoff(inARow, backoffMin, backoffMax);

        // where the survivors stand: the step their failure reports, else (the chunk done before a leaver stopped) the
        // step their last chunk ended at, else the last step the director knows
        long step = directorStep;
        if (survivors.Count > 0)
        {
            int first = survivors[0];
            step = failures.FirstOrDefault(f => f.Rank == first && f.GlobalStep >= 0)?.GlobalStep ?? ranks[first].ChunkEndStep ?? directorStep;
            if (elastic)
            {
                // every rank of the generation reports; they agree on the step, or the lowest one is where all can go on
                step = failures.Where(f => survivors.Contains(f.Rank) && f.GlobalStep >= 0).Select(f => f.GlobalStep).DefaultIfEmpty(step).Min();
            }
        }

        return new RecoveryPlan(cause, leavers.Contains(cause.Rank), failed, survivors, graceful, inARow, inARow > maxRestarts, delay, step);
    }

    /// <summary>The backoff before failure number <paramref name="failuresInARow"/> of a row: min, doubling, at most max.</summary>
    public static TimeSpan Backoff(int failuresInARow, TimeSpan min, TimeSpan max)
    {
        double seconds = min.TotalSeconds * Math.Pow(2, Math.Max(0, failuresInARow - 1));
        return TimeSpan.FromSeconds(Math.Min(seconds, max.TotalSeconds));
    }
}
