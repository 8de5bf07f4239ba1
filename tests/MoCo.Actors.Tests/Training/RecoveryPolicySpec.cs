using MoCo.Actors.Training;
using MoCo.Actors.Workers;

namespace MoCo.Actors.Tests.Training;

/// <summary>
/// The director's decision after a failed exchange (<see cref="RecoveryPolicy"/>), case by case: who leaves or is
/// re-created, who survives and at which step, whether it counts, how long to wait, when to give up.
/// </summary>
public sealed class RecoveryPolicySpec
{
    private static readonly TimeSpan Min = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan Max = TimeSpan.FromSeconds(30);

    private static Worker.WorkerFailed Failed(int rank, bool first, long step = -1) =>
        new(rank, "training", step, 0, 0, first ? "boom" : "a peer failed", first);

    private static RankFacts Local() => new(Remote: false, Leaving: false, Gone: false);

    private static RankFacts Remote(bool leaving = false, bool gone = false, long? chunkEnd = null) => new(Remote: true, leaving, gone, chunkEnd);

    private static RecoveryPlan Plan(Worker.WorkerFailed[] failures, RankFacts[] ranks, int inARow = 0, long directorStep = 8, bool elastic = true) =>
        RecoveryPolicy.Plan(failures, ranks, inARow, maxRestarts: 3, Min, Max, directorStep, elastic);

    [Fact]
    public void A_local_rank_that_fails_first_is_recreated_after_the_backoff_and_the_others_survive_at_their_step()
    {
        var plan = Plan([Failed(1, first: true, step: 13), Failed(0, first: false, step: 13), Failed(2, first: false, step: 13)], [Local(), Local(), Local()], elastic: false);

        Assert.Equal([1], plan.Failed);
        Assert.Equal([0, 2], plan.Survivors);
        Assert.Equal(1, plan.Cause.Rank);
        Assert.False(plan.Graceful);
        Assert.Equal(1, plan.FailuresInARow);
        Assert.False(plan.GiveUp);
        Assert.Equal(Min, plan.Delay);
        Assert.Equal(13, plan.SurvivorStep);
    }

    [Fact]
    public void A_killed_node_leaves_and_its_first_loss_regroups_the_survivors_at_once()
    {
        // SIGKILL: the node's rank is gone (lost or disconnected); the survivors' rings raised a peer's failure
        var plan = Plan([Failed(0, first: false, step: 21), Failed(1, first: false, step: 21), Failed(2, first: true)], [Local(), Remote(), Remote(gone: true)]);

        Assert.Equal([2], plan.Failed);
        Assert.Equal([0, 1], plan.Survivors);
        Assert.False(plan.Graceful);
        Assert.Equal(1, plan.FailuresInARow);
        Assert.Equal(TimeSpan.Zero, plan.Delay);
        Assert.Equal(21, plan.SurvivorStep);
        Assert.Equal([2], plan.Remote([Local(), Remote(), Remote(gone: true)]));
    }

    [Fact]
    public void A_second_lost_node_in_a_row_waits_for_the_backoff()
    {
        var plan = Plan([Failed(0, first: false, step: 21), Failed(1, first: true)], [Local(), Remote(gone: true)], inARow: 1);

        Assert.Equal(2, plan.FailuresInARow);
        Assert.Equal(TimeSpan.FromSeconds(2), plan.Delay);
    }

    [Fact]
    public void A_leaver_makes_the_failures_of_the_ranks_it_leaves_behind_its_consequence()
    {
        // the race of a SIGTERM at a chunk's start: the leaver stopped before the chunk, and rank 0's ring raised an error
        // that it reported as a first failure; the leave is still no failure and rank 0 goes on
        var plan = Plan([Failed(1, first: true), Failed(0, first: true, step: 16)], [Local(), Remote(leaving: true, gone: true)], inARow: 2);

        Assert.Equal(1, plan.Cause.Rank);
        Assert.True(plan.CauseIsLeave);
        Assert.Equal([1], plan.Failed);
        Assert.Equal([0], plan.Survivors);
        Assert.True(plan.Graceful);
        Assert.Equal(2, plan.FailuresInARow); // not counted
        Assert.Equal(TimeSpan.Zero, plan.Delay);
        Assert.Equal(16, plan.SurvivorStep);
    }

    [Fact]
    public void Survivors_that_finished_the_chunk_before_the_leaver_stopped_resume_where_it_ended()
    {
        // the leaver finished the chunk (steps 8-15) and stopped; rank 0 answered the chunk, not a failure
        var plan = Plan([Failed(1, first: true)], [new RankFacts(Remote: false, Leaving: false, Gone: false, ChunkEndStep: 16), Remote(leaving: true, gone: true)], directorStep: 8);

        Assert.Equal([0], plan.Survivors);
        Assert.Equal(16, plan.SurvivorStep);
    }

    [Fact]
    public void A_leaver_and_a_lost_node_together_count_as_a_failure()
    {
        var plan = Plan([Failed(1, first: true), Failed(2, first: true), Failed(0, first: false, step: 5)], [Local(), Remote(leaving: true, gone: true), Remote(gone: true)]);

        Assert.Equal([1, 2], plan.Failed);
        Assert.False(plan.Graceful);
        Assert.Equal(1, plan.FailuresInARow);
        Assert.Equal(TimeSpan.Zero, plan.Delay); // remote ranks only, with a survivor: nothing is re-created
        Assert.Equal(5, plan.SurvivorStep);
    }

    [Fact]
    public void When_nobody_survives_every_rank_restarts_after_the_backoff_from_the_directors_step()
    {
        var plan = Plan([Failed(0, first: true, step: 30), Failed(1, first: true)], [Local(), Remote(gone: true)], inARow: 1, directorStep: 24);

        Assert.Empty(plan.Survivors);
        Assert.Equal([0, 1], plan.Failed);
        Assert.Equal(TimeSpan.FromSeconds(2), plan.Delay);
        Assert.Equal(24, plan.SurvivorStep);
    }

    [Fact]
    public void Elastic_survivors_that_report_different_steps_resume_at_the_lowest()
    {
        var plan = Plan([Failed(0, first: false, step: 41), Failed(1, first: false, step: 40), Failed(2, first: true)], [Local(), Remote(), Remote(gone: true)]);

        Assert.Equal(40, plan.SurvivorStep);
    }

    [Fact]
    public void The_failure_past_the_limit_gives_up()
    {
        Assert.False(Plan([Failed(0, first: true)], [Local()], inARow: 2).GiveUp);
        var plan = Plan([Failed(0, first: true)], [Local()], inARow: 3);
        Assert.True(plan.GiveUp);
        Assert.Equal(4, plan.FailuresInARow);
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(2, 2)]
    [InlineData(3, 4)]
    [InlineData(5, 16)]
    [InlineData(6, 30)]
    [InlineData(40, 30)]
    public void The_backoff_doubles_from_its_minimum_up_to_its_maximum(int failuresInARow, double seconds)
    {
        Assert.Equal(TimeSpan.FromSeconds(seconds), RecoveryPolicy.Backoff(failuresInARow, Min, Max));
    }
}
