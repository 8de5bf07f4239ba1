using Akka.Actor;
using Akka.TestKit.Xunit2;
using MoCo.Actors.Queue;

namespace MoCo.Actors.Tests.Queue;

/// <summary>The queue keeper: canonical copy, replica checks and the published age.</summary>
public sealed class QueueKeeperSpec : TestKit
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(5);

    private static QueueKeeper.Report Report(int rank, long step, long pointer, string digest, float[]? keys = null) =>
        new(rank, Generation: 1, step, pointer, digest, keys, Dim: 2);

    [Fact]
    public async Task Keeper_must_publish_the_age_once_every_replica_reported_and_serve_rank_zeros_keys()
    {
        var subscriber = CreateTestProbe();
        var keeper = Sys.ActorOf(QueueKeeperActor.Props(new QueueLedger(8, 4), 2, subscriber.Ref));
        keeper.Tell(new QueueKeeper.StartGeneration(1, 2));
        keeper.Tell(QueueKeeper.GetQueue.Instance, TestActor);
        await ExpectMsgAsync<QueueKeeper.Empty>(Wait);

        float[] keys = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16];
        keeper.Tell(Report(0, 3, 4, "same", keys)); // 3 steps of 4 keys in a queue of 8: pointer 12 mod 8 = 4
        await subscriber.ExpectNoMsgAsync(TimeSpan.FromMilliseconds(200));
        keeper.Tell(Report(1, 3, 4, "same"));
        var age = await subscriber.ExpectMsgAsync<QueueKeeper.Age>(Wait);
        Assert.Equal(new QueueKeeper.Age(3, 8, 8, 1), age); // slots hold steps 1 and 2: the oldest is 1 step old

        keeper.Tell(QueueKeeper.GetQueue.Instance, TestActor);
        var snapshot = await ExpectMsgAsync<QueueKeeper.Snapshot>(Wait);
        Assert.Equal(keys, snapshot.Keys);
        Assert.Equal([2, 2, 2, 2, 1, 1, 1, 1], snapshot.WrittenAt);
    }

    [Fact]
    public async Task Keeper_must_report_replicas_that_disagree_and_a_pointer_off_the_ledger()
    {
        var subscriber = CreateTestProbe();
        var keeper = Sys.ActorOf(QueueKeeperActor.Props(new QueueLedger(8, 4), 2, subscriber.Ref));
        keeper.Tell(new QueueKeeper.StartGeneration(1, 2));

        keeper.Tell(Report(0, 1, 4, "a", new float[16]));
        keeper.Tell(Report(1, 1, 4, "b"));
        var differ = await subscriber.ExpectMsgAsync<QueueKeeper.Inconsistent>(Wait);
        Assert.Equal("the queue replicas of rank(s) 1 differ from rank 0's after step 1", differ.Problem);
        await subscriber.ExpectMsgAsync<QueueKeeper.Age>(Wait);

        keeper.Tell(Report(0, 2, 4, "c", new float[16]));
        var off = await subscriber.ExpectMsgAsync<QueueKeeper.Inconsistent>(Wait);
        Assert.Equal("rank 0's queue pointer is 4 after 2 steps; the ledger says 0", off.Problem);
    }

    [Fact]
    public async Task Keeper_must_drop_reports_of_an_older_generation()
    {
        var subscriber = CreateTestProbe();
        var keeper = Sys.ActorOf(QueueKeeperActor.Props(new QueueLedger(8, 4), 2, subscriber.Ref));
        keeper.Tell(new QueueKeeper.StartGeneration(2, 1));
        keeper.Tell(Report(0, 1, 4, "old")); // generation 1
        await subscriber.ExpectNoMsgAsync(TimeSpan.FromMilliseconds(200));
        keeper.Tell(Report(0, 1, 4, "new") with { Generation = 2 });
        Assert.Equal(1, (await subscriber.ExpectMsgAsync<QueueKeeper.Age>(Wait)).GlobalStep);
    }
}
