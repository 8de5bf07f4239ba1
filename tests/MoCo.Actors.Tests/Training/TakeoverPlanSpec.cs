using MoCo.Actors.Training;
using MoCo.Actors.Workers;
using MoCo.Model.Training;

namespace MoCo.Actors.Tests.Training;

/// <summary>
/// The take-over's decisions (<see cref="TakeoverPlan"/>), case by case: which workers that outlived the previous
/// director are adopted, which replica is the source, which steps' carried losses are journaled, and when the take-over
/// gives up. The multi-process path is TakeoverTests (Host tests).
/// </summary>
public sealed class TakeoverPlanSpec
{
    private static readonly string Digest = Worker.ConfigDigest(new RunConfig { Width = 16 });

    /// <summary>A replica at <paramref name="step"/> carrying the losses of the steps from <paramref name="firstLoss"/> (each loss is its step / 100).</summary>
    private static Worker.Adopted Replica(int rank, long step, long firstLoss, int stepsPerEpoch = 10, string? digest = null, string name = "worker-3-0",
        Worker.EpochDone? ended = null) =>
        new(rank, name, step, (int)(step / stepsPerEpoch), (int)(step % stepsPerEpoch), stepsPerEpoch, "cpu", 2, 3, 1, digest ?? Digest, firstLoss,
            [.. Enumerable.Range(0, (int)(step - firstLoss)).Select(i => (firstLoss + i) / 100.0)], ended);

    private static Worker.EpochDone Ended(int epoch, long step) => new(epoch, step, 10, 6.1, 0.2, 0.03, null, null, 30, 85, 0);

    [Fact]
    public void A_replica_of_this_configuration_with_a_cursor_that_adds_up_is_adopted()
    {
        Assert.Null(TakeoverPlan.Refusal(Replica(1, 35, 20), Digest));
        Assert.Null(TakeoverPlan.Refusal(Replica(1, 0, 0), Digest)); // nothing trained yet, nothing carried
    }

    [Fact]
    public void A_replica_of_another_configuration_is_refused_by_name()
    {
        string other = Worker.ConfigDigest(new RunConfig { Width = 32 });
        Assert.NotEqual(Digest, other);
        var refusal = TakeoverPlan.Refusal(Replica(1, 35, 20, digest: other), Digest);
        Assert.NotNull(refusal);
        Assert.Contains("another configuration", refusal);
    }

    [Theory]
    [InlineData("worker-0")]          // not the agent's worker-N-I
    [InlineData("../../user/x")]
    [InlineData("")]
    public void A_replica_that_names_itself_otherwise_than_its_agent_does_is_refused(string name)
    {
        var refusal = TakeoverPlan.Refusal(Replica(1, 35, 20, name: name), Digest);
        Assert.NotNull(refusal);
        Assert.Contains("names itself", refusal);
    }

    [Fact]
    public void A_name_too_long_to_be_an_agents_is_refused_and_quoted_only_in_part()
    {
        var refusal = TakeoverPlan.Refusal(Replica(1, 35, 20, name: "worker-1-" + new string('9', 5000)), Digest);
        Assert.NotNull(refusal);
        Assert.True(refusal.Length < 400, refusal.Length.ToString(System.Globalization.CultureInfo.InvariantCulture));
    }

    public static TheoryData<string, Worker.Adopted> CursorsThatDoNotAddUp() => new()
    {
        { "losses end before its step", Replica(1, 35, 20) with { GlobalStep = 36, StepInEpoch = 6 } },
        { "more losses than a worker keeps", Replica(1, Worker.MaxCarriedLosses + 5, 0) },
        { "a negative step", Replica(1, 0, 0) with { GlobalStep = -1 } },
        { "a negative first loss step", Replica(1, 5, 0) with { FirstLossStep = -1, Losses = [1, 2, 3, 4, 5, 6] } },
        { "no step per epoch", Replica(1, 35, 20) with { StepsPerEpoch = 0 } },
        { "a step past its epoch's end", Replica(1, 35, 20) with { StepInEpoch = 10 } },
        { "a negative epoch", Replica(1, 35, 20) with { Epoch = -1 } },
    };

    [Theory]
    [MemberData(nameof(CursorsThatDoNotAddUp))]
    public void A_replica_whose_cursor_does_not_add_up_is_refused(string why, Worker.Adopted adopted)
    {
        var refusal = TakeoverPlan.Refusal(adopted, Digest);
        Assert.True(refusal is not null, why);
        Assert.Contains("does not add up", refusal);
    }

    [Fact]
    public void The_furthest_replica_is_the_source_and_the_lowest_rank_among_equals()
    {
        var decision = TakeoverPlan.Decide([Replica(3, 34, 20), Replica(2, 35, 20), Replica(1, 35, 21)], journaledSteps: 30);
        Assert.Null(decision.Refusal);
        Assert.Equal(1, decision.Source!.Rank);
    }

    [Fact]
    public void The_steps_the_lost_director_ran_but_did_not_journal_are_journaled_from_the_carried_losses()
    {
        var decision = TakeoverPlan.Decide([Replica(1, 35, 20)], journaledSteps: 30);
        Assert.Equal(30, decision.FirstToJournal);
        Assert.Equal([0.30, 0.31, 0.32, 0.33, 0.34], decision.LossesToJournal);
        Assert.Null(decision.Unrecorded);
    }

    [Fact]
    public void A_replica_at_the_journals_step_has_nothing_to_journal()
    {
        var decision = TakeoverPlan.Decide([Replica(1, 30, 20)], journaledSteps: 30);
        Assert.Equal(1, decision.Source!.Rank);
        Assert.Empty(decision.LossesToJournal);
        Assert.Null(decision.Unrecorded);
    }

    [Fact]
    public void Steps_neither_journaled_nor_carried_are_named_and_the_carried_ones_journaled()
    {
        var decision = TakeoverPlan.Decide([Replica(1, 25, 20)], journaledSteps: 10);
        Assert.Equal(20, decision.FirstToJournal);
        Assert.Equal([0.20, 0.21, 0.22, 0.23, 0.24], decision.LossesToJournal);
        Assert.Equal((10L, 19L), decision.Unrecorded!.Value);
    }

    [Fact]
    public void Without_a_replica_or_with_replicas_behind_the_journal_the_take_over_gives_up()
    {
        var none = TakeoverPlan.Decide([], journaledSteps: 30);
        Assert.Null(none.Source);
        Assert.Contains("no held worker", none.Refusal);

        var behind = TakeoverPlan.Decide([Replica(1, 29, 20), Replica(2, 28, 20)], journaledSteps: 30);
        Assert.Null(behind.Source);
        Assert.Contains("behind the journal's step 30", behind.Refusal);
    }

    [Theory]
    [InlineData(30, 2, null, true)]   // the replica ended epoch 2 at step 30; the journal holds no epoch
    [InlineData(30, 2, 1, true)]      // ... the journal's last epoch is 1
    [InlineData(30, 2, 2, false)]     // ... already journaled
    [InlineData(31, 2, 1, false)]     // the replica stepped on past the epoch's end: its report is not of its step
    public void An_epoch_the_replicas_ended_is_journaled_only_when_it_is_their_step_and_the_journal_lacks_it(long step, int endedEpoch, int? journaled, bool expected)
    {
        var source = Replica(1, step, 20, ended: Ended(endedEpoch, 30));
        Assert.Equal(expected, TakeoverPlan.EndedAnUnjournaledEpoch(source, journaled));
        Assert.False(TakeoverPlan.EndedAnUnjournaledEpoch(Replica(1, step, 20), journaled)); // no report carried
    }
}
