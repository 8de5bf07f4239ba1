using Akka.Actor;
using Akka.TestKit.Xunit2;
using MoCo.Actors.Checkpoints;
using MoCo.Model.Checkpoints;
using static TorchSharp.torch;

namespace MoCo.Actors.Tests.Checkpoints;

/// <summary>The checkpointer: writes images, reports them, keeps the last n and the best by kNN, and survives a failed write.</summary>
public sealed class CheckpointerSpec : TestKit, IDisposable
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "moco-checkpointer-" + Guid.NewGuid().ToString("N"));

    private static CheckpointImage Image(long step, float value)
    {
        using var t = full(new long[] { 4 }, value);
        var header = new CheckpointHeader("ckpt-run", Epoch: (int)step, step, DateTimeOffset.UnixEpoch, "{}", new Dictionary<string, string>());
        return CheckpointFile.Encode(header, [new("w", t)]);
    }

    [Fact]
    public async Task Checkpointer_must_write_verify_and_keep_the_last_n_plus_the_best()
    {
        var directory = new CheckpointDirectory(_dir);
        var checkpointer = Sys.ActorOf(CheckpointerActor.Props(_dir, keep: 2, dispatcher: null));
        double[] top1 = [10, 40, 20, 30, 25];
        var written = new List<Checkpointer.Written>();
        for (int step = 1; step <= 5; step++)
        {
            var path = directory.PathFor(step, step);
            checkpointer.Tell(new Checkpointer.Write(path, Image(step, step), top1[step - 1], TestActor));
            written.Add(await ExpectMsgAsync<Checkpointer.Written>(Wait));
        }

        Assert.Equal(written[4].Sha256, CheckpointFile.Verify(written[4].Path, "ckpt-run").Sha256);
        // the last two (steps 4, 5) and the best (step 2, 40%) remain
        Assert.Equal([2L, 4L, 5L], directory.List().Select(p => CheckpointFile.Verify(p).Header.Step));
        Assert.Contains(written[2].Path, written[4].Pruned); // step 3 outlives step 4's pruning: the best (step 2) takes no slot of the last two
    }

    [Fact]
    public async Task Checkpointer_must_report_a_failed_write_and_keep_the_previous_checkpoint()
    {
        var directory = new CheckpointDirectory(_dir);
        var checkpointer = Sys.ActorOf(CheckpointerActor.Props(_dir, keep: 3, dispatcher: null));
        var good = directory.PathFor(0, 1);
        checkpointer.Tell(new Checkpointer.Write(good, Image(1, 1), null, TestActor));
        await ExpectMsgAsync<Checkpointer.Written>(Wait);

        var blocked = Path.Combine(_dir, "not-a-directory");
        File.WriteAllText(blocked, "a file where a directory should be");
        checkpointer.Tell(new Checkpointer.Write(Path.Combine(blocked, "x.mocockpt"), Image(2, 2), null, TestActor));
        var failed = await ExpectMsgAsync<Checkpointer.WriteFailed>(Wait);
        Assert.Equal(2, failed.GlobalStep);
        Assert.Contains("IOException", failed.Error, StringComparison.Ordinal);
        Assert.Equal(1, CheckpointFile.Verify(good, "ckpt-run").Header.Step);
    }

    /// <inheritdoc />
    void IDisposable.Dispose()
    {
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
