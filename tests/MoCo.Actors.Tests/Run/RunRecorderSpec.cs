using Akka.Actor;
using Akka.Persistence;
using Akka.TestKit;
using MoCo.Actors.Persistence;
using MoCo.Actors.Run;
using MoCo.Actors.Tests.Persistence;
using Xunit.Abstractions;

namespace MoCo.Actors.Tests.Run;

/// <summary>The run recorder on a SQLite journal: acknowledgements, refusals, restart and snapshot recovery.</summary>
public sealed class RunRecorderSpec : SqliteJournalSpec
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(5);

    public RunRecorderSpec(ITestOutputHelper output)
        : base(output)
    {
    }

    [Fact]
    public async Task Recorder_must_ack_each_command_with_its_event_and_sequence_number()
    {
        var recorder = Sys.ActorOf(RunRecorderActor.Props("r1"), "run-recorder");
        var commands = RunScript.Commands("r1");

        for (var i = 0; i < commands.Count; i++)
        {
            recorder.Tell(commands[i], TestActor);
            var ack = await ExpectMsgAsync<RunRecorder.Ack>(Wait);
            Assert.Equal(i + 1, ack.SequenceNr);
        }

        recorder.Tell(RunRecorder.GetState.Instance, TestActor);
        var state = await ExpectMsgAsync<RunState>(Wait);
        Assert.Equal(RunStatus.Completed, state.Status);
        Assert.Equal(2, state.Generation);
        Assert.Equal([RunScript.W0], state.CurrentRanks);
        Assert.Equal(["w0"], state.Members.Keys);
        Assert.Equal(2, state.Epochs.Count);
        Assert.Single(state.Checkpoints);
        Assert.Equal(200, state.LastStep);
        Assert.Equal(commands.Count, state.EventCount);
    }

    [Fact]
    public async Task Recorder_must_recover_same_state_after_restart()
    {
        var recorder = Sys.ActorOf(RunRecorderActor.Props("r1"), "run-recorder");
        await SendAllAsync(recorder, RunScript.Commands("r1"), TestActor);
        recorder.Tell(RunRecorder.GetState.Instance, TestActor);
        var before = await ExpectMsgAsync<RunState>(Wait);

        await StopSystemAsync(Sys);
        var restarted = StartSystem("moco-restarted");
        var probe = CreateTestProbe(restarted);
        var recovered = restarted.ActorOf(RunRecorderActor.Props("r1"), "run-recorder");
        recovered.Tell(RunRecorder.GetState.Instance, probe);
        var after = await probe.ExpectMsgAsync<RunState>(Wait);

        Assert.Equal(before, after);
        Assert.Equal(before.StartedUtc, after.StartedUtc);
        Assert.Equal(RunStatus.Completed, after.Status);
    }

    [Fact]
    public async Task Recorder_must_recover_from_snapshot_plus_later_events()
    {
        var settings = new RunRecorderSettings(SnapshotEvery: 3);
        var recorder = Sys.ActorOf(RunRecorderActor.Props("r1", settings), "run-recorder");
        var script = RunScript.Commands("r1");
        var commands = script.Take(8).ToList();
        await SendAllAsync(recorder, commands, TestActor);
        recorder.Tell(RunRecorder.GetState.Instance, TestActor);
        var before = await ExpectMsgAsync<RunState>(Wait);

        // Snapshots at 3 and 6; the one at 3 is deleted once 6 is saved.
        var pid = RunRecorderActor.PersistenceIdFor("r1");
        var snapshotStore = Akka.Persistence.Persistence.Instance.Apply(Sys).SnapshotStoreFor(null);
        await AwaitAssertAsync(async () =>
        {
            var loaded = await snapshotStore.Ask<LoadSnapshotResult>(
                new LoadSnapshot(pid, SnapshotSelectionCriteria.Latest, long.MaxValue), Wait);
            Assert.Equal(6, loaded.Snapshot?.Metadata.SequenceNr);
        }, Wait);

        // Remove the events the snapshot covers: recovery can then only succeed through the snapshot.
        var journal = Akka.Persistence.Persistence.Instance.Apply(Sys).JournalFor(null);
        journal.Tell(new DeleteMessagesTo(pid, 6, TestActor));
        await ExpectMsgAsync<DeleteMessagesSuccess>(Wait);

        await StopSystemAsync(Sys);
        var restarted = StartSystem("moco-restarted");
        var probe = CreateTestProbe(restarted);
        var recovered = restarted.ActorOf(RunRecorderActor.Props("r1", settings), "run-recorder");
        recovered.Tell(RunRecorder.GetState.Instance, probe);
        var after = await probe.ExpectMsgAsync<RunState>(Wait);
        Assert.Equal(before, after);

        // And it goes on from there, numbering after the recovered events.
        recovered.Tell(script[8], probe);
        var ack = await probe.ExpectMsgAsync<RunRecorder.Ack>(Wait);
        Assert.Equal(9, ack.SequenceNr);
    }

    [Fact]
    public async Task Recorder_must_refuse_an_impossible_command_and_persist_nothing()
    {
        var recorder = Sys.ActorOf(RunRecorderActor.Props("r1"), "run-recorder");
        var early = new RunRecorder.RecordEpoch(0, 10, RunScript.Metrics(7.0));

        recorder.Tell(early, TestActor);
        var rejected = await ExpectMsgAsync<RunRecorder.Rejected>(Wait);
        Assert.Same(early, rejected.Command);
        Assert.Contains("has not started", rejected.Reason);

        recorder.Tell(new RunRecorder.StartRun("other", "{}"), TestActor);
        Assert.Contains("'r1'", (await ExpectMsgAsync<RunRecorder.Rejected>(Wait)).Reason);

        recorder.Tell(new RunRecorder.StartRun("r1", "{}"), TestActor);
        Assert.Equal(1, (await ExpectMsgAsync<RunRecorder.Ack>(Wait)).SequenceNr);

        recorder.Tell(new RunRecorder.LeaveWorker("w3", "gone"), TestActor);
        Assert.Contains("not a member", (await ExpectMsgAsync<RunRecorder.Rejected>(Wait)).Reason);

        await using var history = new RunHistory(Sys);
        var events = await history.ReadEventsAsync("r1");
        Assert.IsType<RunStarted>(Assert.Single(events));

        recorder.Tell(RunRecorder.GetState.Instance, TestActor);
        Assert.Equal(1, (await ExpectMsgAsync<RunState>(Wait)).EventCount);
    }

    [Fact]
    public async Task Recorder_must_number_generations_itself()
    {
        var recorder = Sys.ActorOf(RunRecorderActor.Props("r1"), "run-recorder");
        await SendAllAsync(recorder, RunScript.Commands("r1").Take(3).ToList(), TestActor);

        recorder.Tell(new RunRecorder.StartGeneration([RunScript.W0, RunScript.W1], 0), TestActor);
        var first = (GenerationStarted)(await ExpectMsgAsync<RunRecorder.Ack>(Wait)).Event;
        recorder.Tell(new RunRecorder.StartGeneration([RunScript.W1], 0), TestActor);
        var second = (GenerationStarted)(await ExpectMsgAsync<RunRecorder.Ack>(Wait)).Event;

        Assert.Equal(1, first.Generation);
        Assert.Equal(2, second.Generation);
    }

    private async Task SendAllAsync(IActorRef recorder, IEnumerable<RunRecorder.ICommand> commands, IActorRef replyTo)
    {
        foreach (var command in commands)
        {
            recorder.Tell(command, replyTo);
            await ExpectMsgAsync<RunRecorder.Ack>(Wait);
        }
    }
}
