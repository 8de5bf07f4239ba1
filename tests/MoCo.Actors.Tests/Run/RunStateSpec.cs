using MoCo.Actors.Run;

namespace MoCo.Actors.Tests.Run;

/// <summary><see cref="RunState.Apply"/> on its own: every event, and every impossible transition refused.</summary>
public sealed class RunStateSpec
{
    private static readonly DateTimeOffset T0 = new(2025, 1, 2, 3, 4, 5, TimeSpan.Zero);
    private static readonly WorkerInfo W0 = new("w0", "node-a", "cpu");
    private static readonly WorkerInfo W1 = new("w1", "node-b", "cuda:0");
    private static readonly EpochMetrics Metrics = new(6.5, 0.25, 0.03, 0.41, 0.83, 12.5, 2048);

    [Fact]
    public void Empty_state_is_not_started()
    {
        var state = RunState.Empty;

        Assert.Equal(RunStatus.NotStarted, state.Status);
        Assert.Equal(0, state.EventCount);
        Assert.Equal(0, state.Generation);
        Assert.Empty(state.Members);
    }

    [Fact]
    public void RunStarted_sets_id_config_status_and_timeline()
    {
        var state = RunState.Empty.Apply(new RunStarted("r1", "{\"k\":1}", T0));

        Assert.Equal("r1", state.RunId);
        Assert.Equal("{\"k\":1}", state.ConfigJson);
        Assert.Equal(RunStatus.Running, state.Status);
        Assert.Equal(T0, state.StartedUtc);
        var entry = Assert.Single(state.Timeline);
        Assert.Equal(1, entry.Sequence);
        Assert.Equal(T0, entry.Utc);
        Assert.Contains("started", entry.Description);
    }

    [Fact]
    public void WorkerJoined_adds_a_member()
    {
        var state = Started().Apply(new WorkerJoined(W0));

        Assert.Equal(W0, state.Members["w0"]);
        Assert.Equal(2, state.EventCount);
    }

    [Fact]
    public void WorkerLeft_removes_the_member()
    {
        var state = Started().Apply(new WorkerJoined(W0)).Apply(new WorkerLeft("w0", "node lost"));

        Assert.Empty(state.Members);
        Assert.Contains("node lost", state.Timeline[^1].Description);
    }

    [Fact]
    public void GenerationStarted_sets_generation_ranks_and_step()
    {
        var state = WithMembers().Apply(new GenerationStarted(1, [W1, W0], 40));

        Assert.Equal(1, state.Generation);
        Assert.Equal([W1, W0], state.CurrentRanks);
        Assert.Equal(40, state.LastStep);
    }

    [Fact]
    public void GenerationStarted_may_resume_behind_the_last_step()
    {
        var state = Training()
            .Apply(new EpochCompleted(0, 100, Metrics))
            .Apply(new GenerationStarted(2, [W0], 60));

        Assert.Equal(2, state.Generation);
        Assert.Equal(60, state.LastStep);
    }

    [Fact]
    public void EpochCompleted_appends_metrics_and_moves_the_step()
    {
        var state = Training().Apply(new EpochCompleted(0, 100, Metrics));

        Assert.Equal(new EpochCompleted(0, 100, Metrics), Assert.Single(state.Epochs));
        Assert.Equal(100, state.LastStep);
        Assert.Equal(state.Epochs[0], state.LastEpoch);
    }

    [Fact]
    public void EpochCompleted_accepts_metrics_without_knn()
    {
        var state = Training().Apply(new EpochCompleted(0, 100, Metrics with { KnnTop1 = null, KnnTop5 = null }));

        Assert.Null(state.Epochs[0].Metrics.KnnTop1);
        Assert.DoesNotContain("knn", state.Timeline[^1].Description);
    }

    [Fact]
    public void CheckpointSaved_appends_a_checkpoint()
    {
        var checkpoint = new CheckpointSaved("/runs/r1/ckpt-0.pt", new string('a', 64), 0, 100);
        var state = Training().Apply(new EpochCompleted(0, 100, Metrics)).Apply(checkpoint);

        Assert.Equal(checkpoint, Assert.Single(state.Checkpoints));
        Assert.Equal(checkpoint, state.LastCheckpoint);
    }

    [Fact]
    public void RunCompleted_finishes_the_run()
    {
        var done = T0.AddHours(2);
        var state = Training().Apply(new RunCompleted(500, done));

        Assert.Equal(RunStatus.Completed, state.Status);
        Assert.True(state.IsFinished);
        Assert.Equal(done, state.FinishedUtc);
        Assert.Equal(500, state.LastStep);
    }

    [Fact]
    public void RunFailed_records_the_reason()
    {
        var state = Training().Apply(new RunFailed("no valid checkpoint", T0.AddHours(1)));

        Assert.Equal(RunStatus.Failed, state.Status);
        Assert.Equal("no valid checkpoint", state.FailureReason);
    }

    [Fact]
    public void Timeline_numbers_events_from_one()
    {
        var state = Training().Apply(new EpochCompleted(0, 100, Metrics));

        Assert.Equal([1L, 2L, 3L, 4L, 5L], state.Timeline.Select(t => t.Sequence));
        Assert.Equal(5, state.EventCount);
    }

    [Fact]
    public void Equal_histories_give_equal_states()
    {
        Assert.Equal(Training().Apply(new EpochCompleted(0, 100, Metrics)), Training().Apply(new EpochCompleted(0, 100, Metrics)));
        Assert.NotEqual(Training().Apply(new EpochCompleted(0, 100, Metrics)), Training().Apply(new EpochCompleted(0, 101, Metrics)));
    }

    [Fact]
    public void Apply_does_not_change_the_original()
    {
        var before = Training();
        _ = before.Apply(new EpochCompleted(0, 100, Metrics));

        Assert.Empty(before.Epochs);
        Assert.Equal(4, before.EventCount);
    }

    [Fact]
    public void Any_event_before_RunStarted_is_refused()
    {
        IRunEvent[] events =
        [
            new WorkerJoined(W0),
            new WorkerLeft("w0", "x"),
            new GenerationStarted(1, [W0], 0),
            new EpochCompleted(0, 1, Metrics),
            new CheckpointSaved("/c.pt", "ab", 0, 1),
            new RunCompleted(1, T0),
            new RunFailed("x", T0),
        ];

        foreach (var e in events)
        {
            var error = Assert.Throws<InvalidOperationException>(() => RunState.Empty.Apply(e));
            Assert.Contains("has not started", error.Message);
        }
    }

    [Fact]
    public void A_second_RunStarted_is_refused()
    {
        var error = Assert.Throws<InvalidOperationException>(() => Started().Apply(new RunStarted("r1", "{}", T0)));

        Assert.Contains("already started", error.Message);
    }

    [Fact]
    public void RunStarted_without_an_id_is_refused()
    {
        Assert.Throws<InvalidOperationException>(() => RunState.Empty.Apply(new RunStarted(" ", "{}", T0)));
    }

    [Fact]
    public void Generations_must_increase()
    {
        var state = Training();

        var same = Assert.Throws<InvalidOperationException>(() => state.Apply(new GenerationStarted(1, [W0], 10)));
        var lower = Assert.Throws<InvalidOperationException>(() => state.Apply(new GenerationStarted(0, [W0], 10)));

        Assert.Contains("does not follow the current generation 1", same.Message);
        Assert.Contains("does not follow", lower.Message);
    }

    [Fact]
    public void Generation_without_workers_is_refused()
    {
        Assert.Throws<InvalidOperationException>(() => WithMembers().Apply(new GenerationStarted(1, [], 0)));
    }

    [Fact]
    public void Generation_with_a_non_member_is_refused()
    {
        var stranger = new WorkerInfo("w9", "node-z", "cpu");

        var error = Assert.Throws<InvalidOperationException>(() => WithMembers().Apply(new GenerationStarted(1, [W0, stranger], 0)));

        Assert.Contains("'w9'", error.Message);
        Assert.Contains("not a member", error.Message);
    }

    [Fact]
    public void Generation_with_a_worker_twice_is_refused()
    {
        var error = Assert.Throws<InvalidOperationException>(() => WithMembers().Apply(new GenerationStarted(1, [W0, W0], 0)));

        Assert.Contains("more than one rank", error.Message);
    }

    [Fact]
    public void Generation_at_a_negative_step_is_refused()
    {
        Assert.Throws<InvalidOperationException>(() => WithMembers().Apply(new GenerationStarted(1, [W0], -1)));
    }

    [Fact]
    public void A_worker_joining_twice_is_refused()
    {
        var error = Assert.Throws<InvalidOperationException>(() => WithMembers().Apply(new WorkerJoined(W0)));

        Assert.Contains("already a member", error.Message);
    }

    [Fact]
    public void A_worker_that_never_joined_cannot_leave()
    {
        var error = Assert.Throws<InvalidOperationException>(() => Started().Apply(new WorkerLeft("w7", "gone")));

        Assert.Contains("'w7'", error.Message);
        Assert.Contains("not a member", error.Message);
    }

    [Fact]
    public void A_worker_cannot_leave_twice()
    {
        var state = WithMembers().Apply(new WorkerLeft("w0", "gone"));

        Assert.Throws<InvalidOperationException>(() => state.Apply(new WorkerLeft("w0", "gone again")));
    }

    [Fact]
    public void Epochs_must_not_go_backwards_or_repeat()
    {
        var state = Training().Apply(new EpochCompleted(3, 400, Metrics));

        var backwards = Assert.Throws<InvalidOperationException>(() => state.Apply(new EpochCompleted(2, 500, Metrics)));
        var repeated = Assert.Throws<InvalidOperationException>(() => state.Apply(new EpochCompleted(3, 500, Metrics)));

        Assert.Contains("does not follow the last completed epoch 3", backwards.Message);
        Assert.Contains("epoch 3", repeated.Message);
    }

    [Fact]
    public void Epoch_ending_behind_the_last_step_is_refused()
    {
        var state = Training().Apply(new EpochCompleted(0, 400, Metrics));

        var error = Assert.Throws<InvalidOperationException>(() => state.Apply(new EpochCompleted(1, 399, Metrics)));

        Assert.Contains("behind the last step 400", error.Message);
    }

    [Fact]
    public void Checkpoint_behind_the_last_checkpoint_is_refused()
    {
        var state = Training().Apply(new CheckpointSaved("/c1.pt", "ab", 1, 200));

        var error = Assert.Throws<InvalidOperationException>(() => state.Apply(new CheckpointSaved("/c0.pt", "cd", 0, 100)));

        Assert.Contains("behind the last checkpoint at step 200", error.Message);
    }

    [Fact]
    public void Checkpoint_without_path_or_sha256_is_refused()
    {
        Assert.Throws<InvalidOperationException>(() => Training().Apply(new CheckpointSaved("", "ab", 0, 1)));
        Assert.Throws<InvalidOperationException>(() => Training().Apply(new CheckpointSaved("/c.pt", "", 0, 1)));
    }

    [Fact]
    public void Completing_behind_the_last_step_is_refused()
    {
        var state = Training().Apply(new EpochCompleted(0, 300, Metrics));

        Assert.Throws<InvalidOperationException>(() => state.Apply(new RunCompleted(299, T0)));
    }

    [Fact]
    public void Nothing_follows_RunCompleted()
    {
        var state = Training().Apply(new RunCompleted(10, T0));

        var error = Assert.Throws<InvalidOperationException>(() => state.Apply(new EpochCompleted(5, 20, Metrics)));
        Assert.Contains("already completed", error.Message);
        Assert.Throws<InvalidOperationException>(() => state.Apply(new RunFailed("late", T0)));
        Assert.Throws<InvalidOperationException>(() => state.Apply(new RunStarted("r1", "{}", T0)));
    }

    [Fact]
    public void Nothing_follows_RunFailed()
    {
        var state = Training().Apply(new RunFailed("disk full", T0));

        var error = Assert.Throws<InvalidOperationException>(() => state.Apply(new WorkerJoined(new WorkerInfo("w5", "n", "cpu"))));
        Assert.Contains("already failed", error.Message);
        Assert.Throws<InvalidOperationException>(() => state.Apply(new RunCompleted(10, T0)));
    }

    private static RunState Started()
    {
        return RunState.Empty.Apply(new RunStarted("r1", "{}", T0));
    }

    private static RunState WithMembers()
    {
        return Started().Apply(new WorkerJoined(W0)).Apply(new WorkerJoined(W1));
    }

    private static RunState Training()
    {
        return WithMembers().Apply(new GenerationStarted(1, [W0, W1], 0));
    }
}
