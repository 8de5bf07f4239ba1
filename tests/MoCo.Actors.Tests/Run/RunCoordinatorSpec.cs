using Akka.Actor;
using Akka.Persistence;
using Akka.TestKit;
using MoCo.Actors.Persistence;
using MoCo.Actors.Run;
using MoCo.Actors.Tests.Persistence;
using Xunit.Abstractions;

namespace MoCo.Actors.Tests.Run;

/// <summary>The run coordinator on a SQLite journal: acknowledgements, refusals, restart and snapshot recovery.</summary>
public sealed class RunCoordinatorSpec : SqliteJournalSpec
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(5);

    public RunCoordinatorSpec(ITestOutputHelper output)
        : base(output)
    {
    }

    [Fact]
    public async Task Coordinator_must_ack_each_command_with_its_event_and_sequence_number()
    {
        var coordinator = Sys.ActorOf(RunCoordinatorActor.Props("r1"), "run-coordinator");
        var commands = RunScript.Commands("r1");

        for (var i = 0; i < commands.Count; i++)
        {
            coordinator.Tell(commands[i], TestActor);
            var ack = await ExpectMsgAsync<RunCoordinator.Ack>(Wait);
            Assert.Equal(i + 1, ack.SequenceNr);
        }

        coordinator.Tell(RunCoordinator.GetState.Instance, TestActor);
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
    public async Task Coordinator_must_recover_same_state_after_restart()
    {
        var coordinator = Sys.ActorOf(RunCoordinatorActor.Props("r1"), "run-coordinator");
        await SendAllAsync(coordinator, RunScript.Commands("r1"), TestActor);
        coordinator.Tell(RunCoordinator.GetState.Instance, TestActor);
        var before = await ExpectMsgAsync<RunState>(Wait);

        await StopSystemAsync(Sys);
        var restarted = StartSystem("moco-restarted");
        var probe = CreateTestProbe(restarted);
        var recovered = restarted.ActorOf(RunCoordinatorActor.Props("r1"), "run-coordinator");
        recovered.Tell(RunCoordinator.GetState.Instance, probe);
        var after = await probe.ExpectMsgAsync<RunState>(Wait);

        Assert.Equal(before, after);
        Assert.Equal(before.StartedUtc, after.StartedUtc);
        Assert.Equal(RunStatus.Completed, after.Status);
    }

    [Fact]
    public async Task Coordinator_must_recover_from_snapshot_plus_later_events()
    {
        var settings = new RunCoordinatorSettings(SnapshotEvery: 3);
        var coordinator = Sys.ActorOf(RunCoordinatorActor.Props("r1", settings), "run-coordinator");
        var script = RunScript.Commands("r1");
        var commands = script.Take(8).ToList();
        await SendAllAsync(coordinator, commands, TestActor);
        coordinator.Tell(RunCoordinator.GetState.Instance, TestActor);
        var before = await ExpectMsgAsync<RunState>(Wait);

        // Snapshots at 3 and 6; the one at 3 is deleted once 6 is saved.
        var pid = RunCoordinatorActor.PersistenceIdFor("r1");
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
        var recovered = restarted.ActorOf(RunCoordinatorActor.Props("r1", settings), "run-coordinator");
        recovered.Tell(RunCoordinator.GetState.Instance, probe);
        var after = await probe.ExpectMsgAsync<RunState>(Wait);
        Assert.Equal(before, after);

        // And it goes on from there, numbering after the recovered events.
        recovered.Tell(script[8], probe);
        var ack = await probe.ExpectMsgAsync<RunCoordinator.Ack>(Wait);
        Assert.Equal(9, ack.SequenceNr);
    }

    [Fact]
    public async Task Coordinator_must_refuse_an_impossible_command_and_persist_nothing()
    {
        var coordinator = Sys.ActorOf(RunCoordinatorActor.Props("r1"), "run-coordinator");
        var early = new RunCoordinator.RecordEpoch(0, 10, RunScript.Metrics(7.0));

        coordinator.Tell(early, TestActor);
        var rejected = await ExpectMsgAsync<RunCoordinator.Rejected>(Wait);
        Assert.Same(early, rejected.Command);
        Assert.Contains("has not started", rejected.Reason);

        coordinator.Tell(new RunCoordinator.StartRun("other", "{}"), TestActor);
        Assert.Contains("'r1'", (await ExpectMsgAsync<RunCoordinator.Rejected>(Wait)).Reason);

        coordinator.Tell(new RunCoordinator.StartRun("r1", "{}"), TestActor);
        Assert.Equal(1, (await ExpectMsgAsync<RunCoordinator.Ack>(Wait)).SequenceNr);

        coordinator.Tell(new RunCoordinator.LeaveWorker("w3", "gone"), TestActor);
        Assert.Contains("not a member", (await ExpectMsgAsync<RunCoordinator.Rejected>(Wait)).Reason);

        await using var history = new RunHistory(Sys);
        var events = await history.ReadEventsAsync("r1");
        Assert.IsType<RunStarted>(Assert.Single(events));

        coordinator.Tell(RunCoordinator.GetState.Instance, TestActor);
        Assert.Equal(1, (await ExpectMsgAsync<RunState>(Wait)).EventCount);
    }

    [Fact]
    public async Task Coordinator_must_number_generations_itself()
    {
        var coordinator = Sys.ActorOf(RunCoordinatorActor.Props("r1"), "run-coordinator");
        await SendAllAsync(coordinator, RunScript.Commands("r1").Take(3).ToList(), TestActor);

        coordinator.Tell(new RunCoordinator.StartGeneration([RunScript.W0, RunScript.W1], 0), TestActor);
        var first = (GenerationStarted)(await ExpectMsgAsync<RunCoordinator.Ack>(Wait)).Event;
        coordinator.Tell(new RunCoordinator.StartGeneration([RunScript.W1], 0), TestActor);
        var second = (GenerationStarted)(await ExpectMsgAsync<RunCoordinator.Ack>(Wait)).Event;

        Assert.Equal(1, first.Generation);
        Assert.Equal(2, second.Generation);
    }

    private async Task SendAllAsync(IActorRef coordinator, IEnumerable<RunCoordinator.ICommand> commands, IActorRef replyTo)
    {
        foreach (var command in commands)
        {
            coordinator.Tell(command, replyTo);
            await ExpectMsgAsync<RunCoordinator.Ack>(Wait);
        }
    }
}
