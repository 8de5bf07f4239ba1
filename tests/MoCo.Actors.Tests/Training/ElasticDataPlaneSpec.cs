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

    private async Task<object> RunAsync(TrainingSettings settings)
    {
        var probe = CreateTestProbe();
        var director = Sys.ActorOf(TrainingDirectorActor.Props(settings, probe.Ref), "training-director-" + settings.RunId);
        probe.Watch(director);
        while (true)
        {
            var message = await probe.ReceiveOneAsync(RunTimeout)
                ?? throw new TimeoutException($"the director said nothing for {RunTimeout.TotalSeconds} s");
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
        var recorder = Sys.ActorOf(RunRecorderActor.Props(runId), "check-" + runId);
        recorder.Tell(RunRecorder.GetState.Instance, probe.Ref);
        var state = await probe.ExpectMsgAsync<RunState>(TimeSpan.FromSeconds(10));
        await recorder.GracefulStop(TimeSpan.FromSeconds(10));
        return state.Checkpoints[^1].Path;
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
