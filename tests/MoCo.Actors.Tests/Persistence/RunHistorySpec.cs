using Akka.Actor;
using MoCo.Actors.Persistence;
using MoCo.Actors.Run;
using MoCo.Actors.Tests.Run;
using Xunit.Abstractions;

namespace MoCo.Actors.Tests.Persistence;

/// <summary>The read side: listing runs and rebuilding their state from the journal alone.</summary>
public sealed class RunHistorySpec : SqliteJournalSpec
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(5);

    public RunHistorySpec(ITestOutputHelper output)
        : base(output)
    {
    }

    [Fact]
    public async Task History_must_list_runs_and_rebuild_their_state()
    {
        var a = await RunToEndAsync("alpha", RunScript.Commands("alpha"));
        var b = await RunToEndAsync("beta", RunScript.Commands("beta").Take(5));

        await using var history = new RunHistory(Sys);

        Assert.Equal(["alpha", "beta"], await history.ListRunIdsAsync());
        Assert.Equal(a, await history.ReplayAsync("alpha"));
        Assert.Equal(b, await history.ReplayAsync("beta"));
        Assert.Equal(RunState.Empty, await history.ReplayAsync("nobody"));
    }

    [Fact]
    public async Task History_must_read_a_journal_file_after_the_run_stopped()
    {
        var a = await RunToEndAsync("alpha", RunScript.Commands("alpha"));
        await StopSystemAsync(Sys);

        await using var history = RunHistory.OpenSqlite(JournalPath);

        Assert.Equal(["alpha"], await history.ListRunIdsAsync());
        var events = await history.ReadEventsAsync("alpha");
        Assert.Equal(RunScript.Commands("alpha").Count, events.Count);
        Assert.IsType<RunStarted>(events[0]);
        Assert.IsType<RunCompleted>(events[^1]);
        var state = await history.ReplayAsync("alpha");
        Assert.Equal(a, state);
        Assert.Equal(a.Timeline.Select(t => t.Description), state.Timeline.Select(t => t.Description));
    }

    [Fact]
    public void History_must_refuse_a_missing_journal_file()
    {
        Assert.Throws<FileNotFoundException>(() => RunHistory.OpenSqlite(Path.Combine(Directory, "missing.db")));
    }

    private async Task<RunState> RunToEndAsync(string runId, IEnumerable<RunRecorder.ICommand> commands)
    {
        var recorder = Sys.ActorOf(RunRecorderActor.Props(runId), "run-recorder-" + runId);
        foreach (var command in commands)
        {
            recorder.Tell(command, TestActor);
            await ExpectMsgAsync<RunRecorder.Ack>(Wait);
        }

        recorder.Tell(RunRecorder.GetState.Instance, TestActor);
        return await ExpectMsgAsync<RunState>(Wait);
    }
}
