using MoCo.Model.Checkpoints;
using MoCo.Model.Collectives;
using MoCo.Model.Training;

namespace MoCo.Model.Tests;

/// <summary>How a re-created or joining replica takes a survivor's state: <see cref="Pretrainer.SyncFrom"/> and <see cref="Pretrainer.Rebind"/>.</summary>
public class PretrainerSyncTests
{
    [Fact]
    public async Task SyncFrom_makes_a_fresh_replica_equal_to_a_trained_one_and_both_then_step_alike()
    {
        var config = PretrainerTests.TinyConfig();
        var data = PretrainerTests.TinyData();
        var layout1 = new BatchLayout(config.BatchSize, config.BnSplits, 1);
        using var trained = new Pretrainer(config, "sync", data, SingleProcessCollective.Instance, layout1, loaderThreads: 1);
        for (int i = 0; i < 5; i++)
        {
            trained.TrainStep(); // crosses the epoch boundary at 4; the optimizer has momentum buffers
        }

        using var fresh = new Pretrainer(config, "sync", data, SingleProcessCollective.Instance, layout1, loaderThreads: 1);
        Assert.False(fresh.Optimizer.HasState);

        // a world of two in one process: rank 0 the trained replica, rank 1 the fresh one
        using var group = new InProcessGroup(2, TimeSpan.FromSeconds(30));
        var layout2 = new BatchLayout(config.BatchSize, config.BnSplits, 2);
        trained.Rebind(group[0], layout2);
        fresh.Rebind(group[1], layout2);
        var sync = Task.Run(() => fresh.SyncFrom(0));
        trained.SyncFrom(0);
        await sync;

        Assert.Equal((trained.Epoch, trained.StepInEpoch, trained.GlobalStep), (fresh.Epoch, fresh.StepInEpoch, fresh.GlobalStep));
        Assert.Equal((1, 1, 5L), (fresh.Epoch, fresh.StepInEpoch, fresh.GlobalStep));
        AssertSame(trained, fresh);

        // both replicas now run the next step of a world of two and stay bit-identical (the all-reduce is rank-ordered)
        var other = Task.Run(() => fresh.TrainStep());
        var mine = trained.TrainStep();
        var theirs = await other;
        Assert.Equal(mine.Loss, theirs.Loss);
        AssertSame(trained, fresh);
    }

    [Fact]
    public void Rebind_refuses_a_layout_that_changes_the_run()
    {
        var config = PretrainerTests.TinyConfig();
        using var trainer = new Pretrainer(config, "sync", PretrainerTests.TinyData(), SingleProcessCollective.Instance,
            new BatchLayout(config.BatchSize, config.BnSplits, 1), loaderThreads: 1);
        var e = Assert.Throws<ArgumentException>(() => trainer.Rebind(SingleProcessCollective.Instance, new BatchLayout(config.BatchSize * 2, config.BnSplits, 1)));
        Assert.Contains("keeps the global batch 16", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_checkpoint_image_writes_the_same_file_as_a_direct_write()
    {
        var config = PretrainerTests.TinyConfig();
        using var trainer = new Pretrainer(config, "image", PretrainerTests.TinyData(), SingleProcessCollective.Instance,
            new BatchLayout(config.BatchSize, config.BnSplits, 1), loaderThreads: 1);
        trainer.TrainStep();
        using var dir = new TempDirectory();
        var header = trainer.Header();
        var image = CheckpointFile.Encode(header, trainer.StateTensors());
        trainer.TrainStep(); // the image is detached: later steps do not change it

        var direct = Path.Combine(dir.Path, "direct.mocockpt");
        var fromImage = Path.Combine(dir.Path, "image.mocockpt");
        var viaImage = image.WriteTo(fromImage);
        Assert.Equal(viaImage, image.WriteTo(fromImage)); // writing twice gives the same file
        Assert.Equal(new FileInfo(fromImage).Length, image.FileLength);
        using var loaded = CheckpointFile.Read(fromImage, "image");
        Assert.Equal(1, loaded.Header.Step);
        Assert.NotEqual(viaImage, CheckpointFile.Write(direct, trainer.Header(), trainer.StateTensors()));
    }

    private static void AssertSame(Pretrainer a, Pretrainer b)
    {
        var sa = a.StateTensors();
        var sb = b.StateTensors().ToDictionary(p => p.Key, p => p.Value);
        Assert.Equal(sa.Select(p => p.Key), sb.Keys);
        foreach (var (name, t) in sa)
        {
            Assert.True(t.eq(sb[name]).all().item<bool>(), $"{name} differs");
        }
    }
}
