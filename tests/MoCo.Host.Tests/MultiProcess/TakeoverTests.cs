using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using MoCo.Actors.Tests.Persistence;
using MoCo.Model.Checkpoints;
using Xunit.Abstractions;

namespace MoCo.Host.Tests.MultiProcess;

/// <summary>
/// A run whose trainer process is lost: a standby trainer (<c>moco train --standby</c>) in the same cluster takes the run
/// over from the PostgreSQL journal and the workers that outlived the lost director. Processes as in
/// <see cref="MultiProcessTests"/>: 127.0.0.1, one torch thread each, every process killed when the test ends.
/// </summary>
public sealed class TakeoverTests(ITestOutputHelper output) : IDisposable
{
    private const string Secret = "test-secret-0123456789abcdef";
    private static readonly TimeSpan Bound = TimeSpan.FromMinutes(3);
    private readonly MocoProcessGroup _processes = new(output, "moco-takeover-");

    // epochs of 8 steps, a checkpoint after every step
    private static string[] Tiny(int epochs) =>
    [
        "--data", "synthetic:256", "--epochs", epochs.ToString(CultureInfo.InvariantCulture), "--batch-size", "32", "--moco-k", "64",
        "--width", "4", "--moco-dim", "16", "--bn-splits", "4", "--knn-every", "0", "--knn-at-start", "false",
        "--threads", "1", "--loader-threads", "1", "--checkpoint-every-steps", "1", "--keep-checkpoints", "100",
    ];

    [PostgresFact]
    public async Task Standby_trainers_must_take_the_run_over_with_the_surviving_workers_after_a_sigterm_and_a_sigkill()
    {
        var connection = PostgresFactAttribute.ConnectionString ?? throw new InvalidOperationException(PostgresFactAttribute.HowToProvide);
        (string, string)[] environment = [("MOCO_CLUSTER_SECRET", Secret), ("MOCO_JOURNAL_CONNECTION_STRING", connection)];
        string runId = "takeover-" + Guid.NewGuid().ToString("N")[..8];
        int[] ports = [MocoProcess.FreePort(), MocoProcess.FreePort(), MocoProcess.FreePort()];
        string[] Trainer(int i, params string[] more) =>
            ["train", .. Tiny(6), "--port", Port(ports[i]), "--min-workers", "3", "--run-id", runId, "--run-dir", RunDir($"trainer-{i}"), .. more];
        var first = Start("trainer-0", Trainer(0), environment);
        await first.WaitForAsync("waiting for workers", Bound);
        var second = Start("trainer-1", Trainer(1, "--standby", "--seed-nodes", $"127.0.0.1:{ports[0]}"), environment);
        await second.WaitForAsync("standing by for run", Bound);
        var nodes = new[] { "node-1", "node-2" }.Select(n => Start(n, ["node", "--join", $"127.0.0.1:{ports[0]}", "--threads", "1", "--loader-threads", "1"], environment)).ToList();
        await first.WaitForAsync(@"3 worker\(s\), generation 1", Bound);
        await first.WaitForAsync("^epoch 0:", Bound);

        // a graceful stop of the trainer (a pod deleted, a node drained): it stops where a chunk ends and hands the run
        // over; the standby goes on at that step with the nodes' workers
        first.Signal("TERM");
        Assert.Equal(130, await first.WaitForExitAsync(Bound));
        long stopped = long.Parse((await first.WaitForAsync(@"interrupted at step (\d+)", TimeSpan.FromSeconds(5))).Groups[1].Value, CultureInfo.InvariantCulture);
        var handedOver = await second.WaitForAsync(@"took run \S+ over at step (\d+)", Bound);
        Assert.Equal(stopped, long.Parse(handedOver.Groups[1].Value, CultureInfo.InvariantCulture));
        await second.WaitForAsync(@"3 worker\(s\), generation 2", Bound);

        // a new standby joins; the trainer that took over is killed: the new standby takes over from the workers' state
        var third = Start("trainer-2", Trainer(2, "--standby", "--seed-nodes", $"127.0.0.1:{ports[1]}"), environment);
        await third.WaitForAsync("standing by for run", Bound);
        await second.WaitForAsync(@"^epoch [1-9]:", Bound);
        second.Signal("KILL");
        var clock = Stopwatch.StartNew();
        var took = await third.WaitForAsync(@"took run \S+ over at step (\d+)", Bound);
        long takeoverStep = long.Parse(took.Groups[1].Value, CultureInfo.InvariantCulture);
        await third.WaitForAsync(@"3 worker\(s\), generation 3", Bound);
        output.WriteLine($"SIGTERM: handed over at step {stopped}; SIGKILL to the new standby's generation 3: {clock.Elapsed.TotalSeconds:F1} s, at step {takeoverStep}");
        Assert.Equal(0, await third.WaitForExitAsync(Bound));
        foreach (var node in nodes)
        {
            Assert.Equal(0, await node.WaitForExitAsync(TimeSpan.FromSeconds(60)));
            Assert.Contains("node done: RunCompleted", node.Output, StringComparison.Ordinal);
        }

        var history = History(connection, runId);
        Assert.Equal("Completed", history.GetProperty("status").GetString());
        HistoryChecks.EveryStepRecordedOnce(history, 48); // the steps a lost director ran but did not journal came with the workers
        HistoryChecks.GenerationsStartWhereTheRecordedStepsEnd(history);
        Assert.Equal(Enumerable.Range(0, 6), history.GetProperty("epochs").EnumerateArray().Select(e => e.GetProperty("epoch").GetInt32()));
        Assert.Empty(history.GetProperty("failures").EnumerateArray());
        var generations = history.GetProperty("generations").EnumerateArray().ToList();
        Assert.Equal([0, stopped, takeoverStep], generations.Select(g => g.GetProperty("step").GetInt64()));
        // the nodes' workers keep their ids through both take-overs: the same replicas under another director
        var ids = generations.Select(g => g.GetProperty("ranks").EnumerateArray().Skip(1).Select(r => r.GetProperty("workerId").GetString()).ToList()).ToList();
        Assert.Equal(ids[0], ids[1]);
        Assert.Equal(ids[0], ids[2]);

        // The math did not change: from the last trainer's first checkpoint after its take-over, the run equals one
        // resumed there by a trainer and two nodes (tolerance 0: the same ring of three in the same order, one torch
        // thread each).
        var resumeAt = new CheckpointDirectory(RunDir("trainer-2")).List()
            .First(p => CheckpointDirectory.TryParseFileName(p, out _, out long step) && step > takeoverStep);
        var copy = Path.Combine(RunDir("replay"), "checkpoints", Path.GetFileName(resumeAt));
        Directory.CreateDirectory(Path.GetDirectoryName(copy)!);
        File.Copy(resumeAt, copy);
        int replayPort = MocoProcess.FreePort();
        var replay = Start("replay", ["train", .. Tiny(6), "--port", Port(replayPort), "--min-workers", "3", "--resume", copy], environment[0]);
        foreach (var name in new[] { "replay-1", "replay-2" })
        {
            Start(name, ["node", "--join", $"127.0.0.1:{replayPort}", "--threads", "1", "--loader-threads", "1"], environment[0]);
        }

        Assert.Equal(0, await replay.WaitForExitAsync(Bound));
        var (worst, where) = CheckpointComparison.LargestDifference(new CheckpointDirectory(RunDir("trainer-2")).List()[^1], new CheckpointDirectory(RunDir("replay")).List()[^1]);
        output.WriteLine($"taken-over run vs resumed from {Path.GetFileName(resumeAt)}: largest absolute difference {worst:E2} ({where})");
        Assert.True(worst == 0, $"{where} differs by {worst:E2}");
    }

    private MocoProcess Start(string name, string[] args, params (string, string)[] environment) => _processes.Start(name, args, environment);

    private string RunDir(string name) => Path.Combine(_processes.Directory, name);

    private static string Port(int port) => port.ToString(CultureInfo.InvariantCulture);

    private JsonElement History(string connection, string runId)
    {
        var history = Start("history", ["history", connection, "--run", runId, "--json"]);
        Assert.Equal(0, history.WaitForExitAsync(TimeSpan.FromSeconds(60)).GetAwaiter().GetResult());
        return JsonDocument.Parse(history.Output).RootElement.Clone();
    }

    /// <inheritdoc />
    public void Dispose() => _processes.Dispose();
}
