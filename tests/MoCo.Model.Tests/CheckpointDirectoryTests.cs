using MoCo.Model.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace MoCo.Model.Tests;

public sealed class CheckpointDirectoryTests : IDisposable
{
    private readonly string _runDir = Directory.CreateTempSubdirectory("moco-run-").FullName;

    public void Dispose() => Directory.Delete(_runDir, recursive: true);

    private static string Save(CheckpointDirectory directory, int epoch, long step, string runId = "run-a")
    {
        using var weight = torch.full([4], (float)step);
        var header = new CheckpointHeader(runId, epoch, step, DateTimeOffset.UtcNow, "{}", []);
        string path = directory.PathFor(epoch, step);
        CheckpointFile.Write(path, header, [new("w", weight)]);
        return path;
    }

    [Fact]
    public void File_names_follow_the_layout_and_parse_back()
    {
        var directory = new CheckpointDirectory(_runDir);
        string path = directory.PathFor(7, 12345);
        Assert.Equal(Path.Combine(_runDir, "checkpoints", "ckpt-e0007-s00012345.mocockpt"), path);
        Assert.True(CheckpointDirectory.TryParseFileName(path, out int epoch, out long step));
        Assert.Equal((7, 12345L), (epoch, step));
        Assert.False(CheckpointDirectory.TryParseFileName(path + ".tmp-abc", out _, out _));
    }

    [Fact]
    public void Latest_skips_a_corrupt_newest_checkpoint_and_returns_the_previous_one()
    {
        var directory = new CheckpointDirectory(_runDir);
        Save(directory, 0, 100);
        string previous = Save(directory, 1, 200);
        string newest = Save(directory, 2, 300);
        byte[] bytes = File.ReadAllBytes(newest);
        bytes[bytes.Length / 2] ^= 0xFF;
        File.WriteAllBytes(newest, bytes);

        var latest = CheckpointDirectory.Latest(_runDir, "run-a");

        Assert.NotNull(latest.Found);
        Assert.Equal(previous, latest.Found!.Path);
        Assert.Equal(200, latest.Found.Header.Step);
        var skipped = Assert.Single(latest.Skipped);
        Assert.Equal(newest, skipped.Path);
        Assert.Equal("checksum mismatch (file is corrupt)", skipped.Reason);
        using var checkpoint = CheckpointFile.Read(latest.Found.Path, "run-a");
        Assert.Equal(200f, checkpoint["w"][0].item<float>());
    }

    [Fact]
    public void Latest_skips_checkpoints_of_another_run_and_orders_by_epoch_then_step()
    {
        var directory = new CheckpointDirectory(_runDir);
        string mine = Save(directory, 1, 9_999);
        Save(directory, 1, 10_000, runId: "run-b");
        Save(directory, 0, 50_000);

        var latest = directory.Latest("run-a");

        Assert.Equal(mine, latest.Found?.Path);
        Assert.Equal("belongs to run run-b, this run is run-a", Assert.Single(latest.Skipped).Reason);
    }

    [Fact]
    public void Latest_in_an_empty_run_finds_nothing()
    {
        var latest = CheckpointDirectory.Latest(_runDir, "run-a");
        Assert.Null(latest.Found);
        Assert.Empty(latest.Skipped);
    }

    [Fact]
    public void Prune_keeps_the_newest_and_the_protected_ones()
    {
        var directory = new CheckpointDirectory(_runDir);
        var paths = Enumerable.Range(0, 6).Select(i => Save(directory, i, i * 10L)).ToList();

        var deleted = directory.Prune(keepLast: 2, keepPaths: [paths[1]]);

        Assert.Equal([paths[0], paths[2], paths[3]], deleted);
        Assert.Equal([paths[1], paths[4], paths[5]], directory.List());
    }
}
