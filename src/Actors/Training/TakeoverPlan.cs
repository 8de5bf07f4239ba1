using MoCo.Actors.Workers;

namespace MoCo.Actors.Training;

/// <summary>
/// The take-over's decisions, without actors (docs/architecture.md, section 4, "Take-over"): whether a worker that
/// outlived the run's previous director may be adopted, and, once every adopted worker has answered, which replica is
/// the source and what of its carried record the journal lacks.
/// </summary>
public static class TakeoverPlan
{
    /// <summary>The longest worker name an adopted worker may give (its node's agent names it <c>worker-N-I</c>).</summary>
    public const int MaxNameLength = 64;

    /// <summary>
    /// Why <paramref name="adopted"/> cannot be taken over by a director whose configuration has the digest
    /// <paramref name="configSha256"/> (<see cref="Worker.ConfigDigest"/>), or null when it can: a name that is not its
    /// agent's, another configuration, or a cursor and a carried record that do not add up.
    /// </summary>
    /// <param name="adopted">The worker's answer to its adoption.</param>
    /// <param name="configSha256">The digest of the taking director's configuration.</param>
    public static string? Refusal(Worker.Adopted adopted, string configSha256)
    {
        ArgumentNullException.ThrowIfNull(adopted);
        if (adopted.Name is null || adopted.Name.Length > MaxNameLength || !System.Text.RegularExpressions.Regex.IsMatch(adopted.Name, @"^worker-\d{1,9}-\d{1,4}$"))
        {
            string name = adopted.Name ?? "";
            return $"it names itself '{name[..Math.Min(MaxNameLength, name.Length)]}', not worker-N-I";
        }

        if (adopted.ConfigSha256 != configSha256)
        {
            return "it trains with another configuration than this trainer's: start every trainer of a run (the standby too) with the same configuration";
        }

        if (adopted.Losses is null || adopted.Losses.Length > Worker.MaxCarriedLosses || adopted.FirstLossStep < 0
            || adopted.FirstLossStep + adopted.Losses.Length != adopted.GlobalStep || adopted.GlobalStep < 0
            || adopted.StepsPerEpoch < 1 || adopted.Epoch < 0 || adopted.StepInEpoch < 0 || adopted.StepInEpoch >= adopted.StepsPerEpoch)
        {
            return $"its cursor does not add up (step {adopted.GlobalStep}, epoch {adopted.Epoch}, step {adopted.StepInEpoch} of {adopted.StepsPerEpoch}, "
                + $"{adopted.Losses?.Length ?? 0} losses from step {adopted.FirstLossStep})";
        }

        return null;
    }

    /// <summary>
    /// What a take-over does once every held worker answered: the source replica (the furthest; the lowest rank among equals)
    /// and the steps from <paramref name="FirstToJournal"/> whose losses it carries and the journal lacks; or why it cannot
    /// go on (<paramref name="Refusal"/>). <paramref name="Unrecorded"/> names the steps that neither the journal nor any
    /// replica holds a loss for (more than <see cref="Worker.MaxCarriedLosses"/> steps went unjournaled).
    /// </summary>
    public sealed record Decision(Worker.Adopted? Source, string? Refusal, long FirstToJournal, IReadOnlyList<double> LossesToJournal, (long From, long To)? Unrecorded);

    /// <summary>Decides the take-over from the replicas that answered and the number of steps the journal holds.</summary>
    /// <param name="adopted">Every adopted worker's answer (refused ones excluded).</param>
    /// <param name="journaledSteps">Steps the journal holds (its next step).</param>
    public static Decision Decide(IEnumerable<Worker.Adopted> adopted, long journaledSteps)
    {
        ArgumentNullException.ThrowIfNull(adopted);
        var source = adopted.OrderByDescending(a => a.GlobalStep).ThenBy(a => a.Rank).FirstOrDefault();
        if (source is null)
        {
            return new Decision(null, "no held worker answered the take-over", journaledSteps, [], null);
        }

        if (source.GlobalStep < journaledSteps)
        {
            return new Decision(null, $"the workers held for the take-over are at step {source.GlobalStep}, behind the journal's step {journaledSteps}: "
                + "they are no replicas of this run's latest state", journaledSteps, [], null);
        }

        long first = Math.Max(journaledSteps, source.FirstLossStep);
        var losses = source.Losses.Skip((int)(first - source.FirstLossStep)).ToList();
        (long, long)? unrecorded = journaledSteps < source.FirstLossStep ? (journaledSteps, source.FirstLossStep - 1) : null;
        return new Decision(source, null, first, losses, unrecorded);
    }

    /// <summary>
    /// Whether <paramref name="source"/> just ended an epoch that the journal lacks (its last epoch is
    /// <paramref name="lastJournaledEpoch"/>, null for none): the replica's step is that epoch's end and the report it
    /// carries is the epoch before its cursor's.
    /// </summary>
    /// <param name="source">The take-over's source replica.</param>
    /// <param name="lastJournaledEpoch">The journal's last completed epoch, or null.</param>
    public static bool EndedAnUnjournaledEpoch(Worker.Adopted source, int? lastJournaledEpoch)
    {
        ArgumentNullException.ThrowIfNull(source);
        return source.EndedEpoch is { } ended && ended.GlobalStep == source.GlobalStep && ended.Epoch == source.Epoch - 1
            && (lastJournaledEpoch ?? -1) < ended.Epoch;
    }
}
