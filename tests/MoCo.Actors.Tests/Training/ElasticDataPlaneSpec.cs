using Akka.Actor;
using Akka.Configuration;
using Akka.TestKit.Xunit2;
using MoCo.Actors.Collectives;
using MoCo.Actors.Tests.Collectives;
using MoCo.Actors.Run;
using MoCo.Actors.Training;
using MoCo.Model.Checkpoints;
using MoCo.Model.Data;
using MoCo.Model.Training;
using Xunit.Abstractions;

namespace MoCo.Actors.Tests.Training;

/// <summary>
/// The network path of the director (an elastic run, which prepares every generation) inside one process with two local
/// workers: over the TCP ring (listeners, endpoints) and over NCCL (rank 0's unique id, here through the fake rendezvous).
/// The actor system is a one-node cluster that never joins itself: the director only subscribes to membership events.
/// </summary>
[Collection(BitIdenticalTraining.Name)]
public sealed class ElasticDataPlaneSpec : TestKit
{
    private static readonly TimeSpan RunTimeout = TimeSpan.FromSeconds(60);
    private static readonly Lazy<DatasetSplits> Data = new(() =>
        DataSource.Open("synthetic", new DataSourceOptions { SyntheticTrainCount = 64, SyntheticTestCount = 32, SyntheticSeed = 5 }));

    private readonly string _root;

    /// <summary>A cluster-provider system on loopback, journaling to a fresh temporary directory.</summary>
    public ElasticDataPlaneSpec(ITestOutputHelper output)
        : this(Path.Combine(Path.GetTempPath(), "moco-elastic-" + Guid.NewGuid().ToString("N")), output)
    {
    }

    private ElasticDataPlaneSpec(string root, ITestOutputHelper output)
        : base(ConfigurationFactory.ParseString("""
            akka.loglevel = WARNING
            akka.actor.provider = cluster
            akka.remote.dot-netty.tcp.hostname = 127.0.0.1
            akka.remote.dot-netty.tcp.port = 0
            """).WithFallback(TrainingSystem.ForRunDirectory(root)), "moco-elastic", output)
    {
        _root = root;
    }

    [Fact]
    public async Task Elastic_run_on_nccl_must_carry_the_id_and_compute_what_the_tcp_ring_computes()
    {
        using var nccl = new FakeNcclCommunicators(TimeSpan.FromSeconds(20));
        Assert.IsType<TrainingDirector.RunCompleted>(await RunAsync(Settings("ring")));
        Assert.IsType<TrainingDirector.RunCompleted>(await RunAsync(Settings("gpu") with { Backend = DataPlaneKind.Nccl, Nccl = nccl }));

        var id = Assert.Single(nccl.Created);
        Assert.Equal([0, 1], nccl.Joins.Select(j => j.Rank).Order());
        Assert.All(nccl.Joins, j => Assert.Equal(id, j.UniqueId));

        // Tolerance 0: with two ranks every sum has two terms (a + b == b + a), gathers and broadcasts copy bytes, so the
        // ring and the in-process group behind the fake agree bit for bit (as TcpRingTrainingTests holds for single steps)
        using var ring = CheckpointFile.Read(await FinalCheckpointAsync("ring"), "ring");
        using var gpu = CheckpointFile.Read(await FinalCheckpointAsync("gpu"), "gpu");
        Assert.Equal(ring.Names.Order(), gpu.Names.Order());
        foreach (var name in ring.Names)
        {
            Assert.True(ring[name].IsSameAs(gpu[name]), $"{name} differs between the TCP ring and the NCCL path");
        }
    }

    /// <summary>
    /// A run resumed from its journal with no checkpoint given and no worker that outlived its previous director (a standby
    /// whose nodes kept nothing): it starts from the journal's last checkpoint once that file, hashed off the director's
    /// thread, passes the checkpoint reader's checks and has the SHA-256 the journal recorded, and ends as the uninterrupted
    /// run does; a corrupted file, or another run's, is refused by name and nothing is journaled. (Before this test the
    /// director hashed the whole file, trailer included, which never equals the recorded trailer: every such resume was
    /// refused.)
    /// </summary>
    [Fact]
    public async Task A_resumed_run_with_no_worker_to_adopt_must_start_from_the_journals_checkpoint_only_when_its_hash_matches()
    {
        Assert.IsType<TrainingDirector.RunCompleted>(await RunAsync(Settings("steady")));
        var interrupted = Assert.IsType<TrainingDirector.Interrupted>(await RunAsync(Settings("lost") with { ChunkSteps = 2 },
            react: (message, director) =>
            {
                if (message is TrainingDirector.RunStarting)
                {
                    director.Tell(TrainingDirector.Interrupt.Instance);
                }
            }));
        string checkpoint = interrupted.LastCheckpoint!;
        Assert.InRange(interrupted.GlobalStep, 1, 3); // mid-epoch: 4 steps per epoch

        // the file changed after the journal recorded it, or replaced by another run's: refused by name, nothing journaled
        var before = await JournalStateAsync("lost");
        byte[] original = await File.ReadAllBytesAsync(checkpoint);
        byte[] changed = (byte[])original.Clone();
        changed[changed.Length / 2] ^= 0x5A;
        foreach (var (bytes, why) in new[] { (changed, "checksum mismatch"), (await File.ReadAllBytesAsync(await FinalCheckpointAsync("steady")), "belongs to run steady") })
        {
            await File.WriteAllBytesAsync(checkpoint, bytes);
            var refused = Assert.IsType<TrainingDirector.RunFailed>(await RunAsync(Settings("lost")));
            Assert.False(refused.Recorded);
            Assert.Contains("cannot be used here", refused.Reason, StringComparison.Ordinal);
            Assert.Contains(why, refused.Reason, StringComparison.Ordinal);
            Assert.Equal(before.Timeline.Count, (await JournalStateAsync("lost")).Timeline.Count);
        }

        // the file as recorded: the run goes on from it and ends bit for bit as the uninterrupted one
        await File.WriteAllBytesAsync(checkpoint, original);
        var messages = new List<object>();
        Assert.IsType<TrainingDirector.RunCompleted>(await RunAsync(Settings("lost"), messages));
        Assert.Contains(messages, m => m is TrainingDirector.Notice n && n.Text.Contains("resuming from the journal's checkpoint", StringComparison.Ordinal));

        // Tolerance 0: two ranks (every sum has two terms), the state restored from an exact copy, every draw a function
        // of (seed, epoch, step)
        using var steady = CheckpointFile.Read(await FinalCheckpointAsync("steady"), "steady");
        using var resumed = CheckpointFile.Read(await FinalCheckpointAsync("lost"), "lost");
        foreach (var name in steady.Names)
        {
            Assert.True(steady[name].IsSameAs(resumed[name]), $"{name} differs between the uninterrupted and the resumed run");
        }
    }

    private TrainingSettings Settings(string runId) =>
        new(new RunConfig
        {
            Arch = "resnet18",
            Width = 4,
            Stem = "cifar",
            MocoDim = 8,
            MocoK = 40,
            MocoM = 0.99,
            MocoT = 0.1,
            BnSplits = 4,
            BatchSize = 16,
            Epochs = 1,
            Lr = 0.05,
            Cos = true,
            Wd = 5e-4,
            Seed = 123,
            KnnEvery = 0,
        }, runId, Path.Combine(_root, runId), Data.Value, 2)
        {
            Threads = 2,
            LoaderThreads = 1,
            CollectiveTimeout = TimeSpan.FromSeconds(20),
            Elastic = true,
            MinWorkers = 2,
        };

    private async Task<object> RunAsync(TrainingSettings settings, List<object>? messages = null, Action<object, IActorRef>? react = null)
    {
        var probe = CreateTestProbe();
        var director = Sys.ActorOf(TrainingDirectorActor.Props(settings, probe.Ref), "training-director-" + settings.RunId + "-" + Guid.NewGuid().ToString("N")[..6]);
        probe.Watch(director);
        while (true)
        {
            var message = await probe.ReceiveOneAsync(RunTimeout)
                ?? throw new TimeoutException($"the director said nothing for {RunTimeout.TotalSeconds} s");
            messages?.Add(message);
            react?.Invoke(message, director);
            if (message is TrainingDirector.RunCompleted or TrainingDirector.RunFailed or TrainingDirector.Interrupted)
            {
                await probe.ExpectTerminatedAsync(director, TimeSpan.FromSeconds(10));
                return message;
            }
        }
    }

    private async Task<string> FinalCheckpointAsync(string runId)
    {
        var probe = CreateTestProbe();
        return (await JournalStateAsync(runId)).Checkpoints[^1].Path;
    }

    private async Task<RunState> JournalStateAsync(string runId)
    {
        var probe = CreateTestProbe();
        var recorder = Sys.ActorOf(RunRecorderActor.Props(runId), "check-" + runId + "-" + Guid.NewGuid().ToString("N")[..6]);
        recorder.Tell(RunRecorder.GetState.Instance, probe.Ref);
        var state = await probe.ExpectMsgAsync<RunState>(TimeSpan.FromSeconds(10));
        await recorder.GracefulStop(TimeSpan.FromSeconds(10));
        return state;
    }

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing);
        if (!disposing)
        {
            return;
        }

        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (IOException)
        {
            // a file still held open stays in the temporary directory; nothing depends on it
        }
    }
}
