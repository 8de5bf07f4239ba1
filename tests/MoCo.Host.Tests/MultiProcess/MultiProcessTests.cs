using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using MoCo.Model.Checkpoints;
using Xunit.Abstractions;

namespace MoCo.Host.Tests.MultiProcess;

/// <summary>
/// Runs of several <c>moco</c> processes on 127.0.0.1: a run started by <c>moco train --port</c>, nodes that join with
/// <c>moco node --join</c>, the TCP ring between them. Every process is killed when its test ends, also on failure.
/// Each process gets one torch thread (two processes with two threads each on two cores stall each other).
/// </summary>
public sealed class MultiProcessTests(ITestOutputHelper output) : IDisposable
{
    private const string Secret = "test-secret-0123456789abcdef";
    private static readonly TimeSpan Bound = TimeSpan.FromMinutes(3);
    private readonly MocoProcessGroup _processes = new(output, "moco-multi-");

    private static string[] Tiny(int epochs, int threads = 1, int checkpointEvery = 4) =>
    [
        "--data", "synthetic:256", "--epochs", epochs.ToString(CultureInfo.InvariantCulture), "--batch-size", "32", "--moco-k", "64",
        "--width", "4", "--moco-dim", "16", "--bn-splits", "4", "--knn-every", "0", "--knn-at-start", "false",
        "--threads", threads.ToString(CultureInfo.InvariantCulture), "--loader-threads", "1", "--checkpoint-every-steps", checkpointEvery.ToString(CultureInfo.InvariantCulture), "--keep-checkpoints", "100",
    ];

    private static readonly (string, string) SecretVariable = ("MOCO_CLUSTER_SECRET", Secret);

    [Fact]
    public async Task Two_processes_must_compute_what_one_process_with_two_workers_computes()
    {
        var single = Start("single", ["train", .. Tiny(1, threads: 2), "--devices", "2", "--run-dir", RunDir("single")]);
        Assert.Equal(0, await single.WaitForExitAsync(Bound));

        int port = MocoProcess.FreePort();
        var train = Start("train", ["train", .. Tiny(1), "--port", Port(port), "--min-workers", "2", "--run-dir", RunDir("multi")], SecretVariable);
        await train.WaitForAsync("waiting for workers: 1 of the 2", Bound);
        var node = Start("node", ["node", "--join", $"127.0.0.1:{port}", "--threads", "1", "--loader-threads", "1"], SecretVariable);

        await train.WaitForAsync("2 worker\\(s\\), generation 1", Bound);
        Assert.Equal(0, await train.WaitForExitAsync(Bound));
        Assert.Equal(0, await node.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        Assert.Contains("node done: RunCompleted", node.Output, StringComparison.Ordinal);

        // Tolerance 0: two workers sum their two shares in the same order whether the ring is in one process or two
        // (a + b is exact-commutative), each with one torch thread; the node's replica took rank 0's state by broadcast.
        var (worst, name) = CheckpointComparison.LargestDifference(LastCheckpoint("single"), LastCheckpoint("multi"));
        output.WriteLine($"2 processes vs 1 process with 2 workers after 8 steps: largest absolute difference {worst:E2} ({name})");
        Assert.True(worst == 0, $"{name} differs by {worst:E2}");
        var history = History("multi");
        var generation = Assert.Single(history.GetProperty("generations").EnumerateArray());
        var ranks = generation.GetProperty("ranks").EnumerateArray().Select(r => r.GetProperty("workerId").GetString()!).ToList();
        Assert.Equal(2, ranks.Count);
        Assert.Contains("/worker-", ranks[1], StringComparison.Ordinal); // the node's worker, named by its node's address
    }

    [Fact]
    public async Task A_node_that_joins_mid_run_must_take_its_share_within_bounded_time()
    {
        int port = MocoProcess.FreePort();
        var train = Start("train", ["train", .. Tiny(6), "--port", Port(port), "--run-dir", RunDir("grow")], SecretVariable);
        await train.WaitForAsync("^epoch 0:", Bound);
        var clock = Stopwatch.StartNew();
        var node = Start("node", ["node", "--join", $"127.0.0.1:{port}", "--threads", "1", "--loader-threads", "1"], SecretVariable);

        var joined = await train.WaitForAsync(@"generation 2\b.*2 worker\(s\).*resumes at step (\d+)", Bound);
        output.WriteLine($"the node joined and its generation formed {clock.Elapsed.TotalSeconds:F1} s after the node was started, at step {joined.Groups[1].Value}");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(60), $"joining took {clock.Elapsed.TotalSeconds:F0} s");
        Assert.Equal(0, await train.WaitForExitAsync(Bound));
        Assert.Equal(0, await node.WaitForExitAsync(TimeSpan.FromSeconds(60)));

        var history = History("grow");
        var generations = history.GetProperty("generations").EnumerateArray().ToList();
        Assert.Equal([1, 2], generations.Select(g => g.GetProperty("ranks").GetArrayLength()));
        Assert.Equal(48, history.GetProperty("lastStep").GetInt64()); // 6 epochs x 8 steps: no step skipped or repeated
        Assert.Equal(Enumerable.Range(0, 6), history.GetProperty("epochs").EnumerateArray().Select(e => e.GetProperty("epoch").GetInt32()));
    }

    [Fact]
    public async Task A_killed_node_must_leave_the_run_which_goes_on_with_the_survivors()
    {
        int port = MocoProcess.FreePort();
        // a checkpoint after every step: the state the survivors regroup from is on disk, whatever step the kill hits
        var train = Start("train", ["train", .. Tiny(4, checkpointEvery: 1), "--port", Port(port), "--min-workers", "3", "--run-dir", RunDir("kill")], SecretVariable);
        await train.WaitForAsync("waiting for workers", Bound);
        var first = Start("node-1", ["node", "--join", $"127.0.0.1:{port}", "--threads", "1", "--loader-threads", "1"], SecretVariable);
        var second = Start("node-2", ["node", "--join", $"127.0.0.1:{port}", "--threads", "1", "--loader-threads", "1"], SecretVariable);
        await train.WaitForAsync("3 worker\\(s\\), generation 1", Bound);
        await train.WaitForAsync("^epoch 0:", Bound);

        second.Signal("KILL");
        var clock = Stopwatch.StartNew();
        var regrouped = await train.WaitForAsync(@"generation 2\b.*2 worker\(s\) go on.*resumes at step (\d+)", Bound);
        output.WriteLine($"SIGKILL to the next generation: {clock.Elapsed.TotalSeconds:F1} s (resumed at step {regrouped.Groups[1].Value})");
        Assert.Equal(0, await train.WaitForExitAsync(Bound));
        Assert.Equal(0, await first.WaitForExitAsync(TimeSpan.FromSeconds(60)));

        var history = History("kill");
        Assert.Equal([3, 2], history.GetProperty("generations").EnumerateArray().Select(g => g.GetProperty("ranks").GetArrayLength()));
        HistoryChecks.GenerationsStartWhereTheRecordedStepsEnd(history);
        Assert.Equal(32, history.GetProperty("lastStep").GetInt64());
        Assert.Equal(Enumerable.Range(0, 4), history.GetProperty("epochs").EnumerateArray().Select(e => e.GetProperty("epoch").GetInt32()));
        Assert.Contains(history.GetProperty("membership").EnumerateArray(), m => m.GetProperty("change").GetString() == "left");

        // Against an undisturbed run of the same three processes (one checkpoint per step): up to the regroup step both
        // are the same computation (tolerance 0: the same ring of three in the same order, one torch thread each); the
        // step the survivors redo with two workers equals the undisturbed run's step within float32 rounding (the
        // three-way sum in another order: measured 1.7e-6 relative; tolerance 1e-3), while a step off - a batch
        // skipped or seen twice - differs by far more (measured 0.79; checked, so the tolerance tells them apart). Later steps
        // are not compared with a tolerance: this tiny net amplifies rounding about 30-fold per step (a W=1 vs W=3
        // probe: 2e-5, 6e-4, 3e-2, 0.3 after steps 1-4); WorldSizeInvarianceTests holds those steps in float64.
        long regroupAt = long.Parse(regrouped.Groups[1].Value, CultureInfo.InvariantCulture);
        int calmPort = MocoProcess.FreePort();
        var calm = Start("calm", ["train", .. Tiny(4, checkpointEvery: 1), "--port", Port(calmPort), "--min-workers", "3", "--run-dir", RunDir("calm")], SecretVariable);
        await calm.WaitForAsync("waiting for workers", Bound);
        var calmNodes = new[] { "calm-1", "calm-2" }.Select(n => Start(n, ["node", "--join", $"127.0.0.1:{calmPort}", "--threads", "1", "--loader-threads", "1"], SecretVariable)).ToList();
        Assert.Equal(0, await calm.WaitForExitAsync(Bound));
        string At(string run, long step) => new CheckpointDirectory(RunDir(run)).List().Single(p => CheckpointDirectory.TryParseFileName(p, out _, out long s) && s == step);
        var (before, beforeName) = LargestRelativeDifference(At("kill", regroupAt), At("calm", regroupAt));
        var (redone, redoneName) = LargestRelativeDifference(At("kill", regroupAt + 1), At("calm", regroupAt + 1));
        var (stepOff, _) = LargestRelativeDifference(At("kill", regroupAt + 1), At("calm", regroupAt + 2));
        output.WriteLine($"killed vs undisturbed: step {regroupAt} {before:E2} ({beforeName}); redone step {regroupAt + 1} {redone:E2} ({redoneName}); one step off {stepOff:E2}");
        Assert.True(before == 0, $"before the kill the runs differ by {before:E2} in {beforeName}");
        Assert.True(redone < 1e-3, $"the redone step differs from the undisturbed run's by {redone:E2} in {redoneName}");
        Assert.True(stepOff > 1e-2, $"a step off differs by only {stepOff:E2}: the tolerance could not tell");

        // The math did not change: the killed run equals a run that resumes from the checkpoint of the regroup step
        // with the surviving world (one process, two workers). Tolerance 0: from that step on both sum the same two
        // shares in the same order with one torch thread per worker (2 processes = 1 process with 2 workers, above).
        long regroupStep = long.Parse(regrouped.Groups[1].Value, CultureInfo.InvariantCulture);
        var source = new CheckpointDirectory(RunDir("kill")).List().Single(p => CheckpointDirectory.TryParseFileName(p, out _, out long step) && step == regroupStep);
        var copy = Path.Combine(RunDir("replay"), "checkpoints", Path.GetFileName(source));
        Directory.CreateDirectory(Path.GetDirectoryName(copy)!);
        File.Copy(source, copy);
        var replay = Start("replay", ["train", .. Tiny(4, threads: 2, checkpointEvery: 1), "--devices", "2", "--resume", copy]);
        Assert.Equal(0, await replay.WaitForExitAsync(Bound));
        Assert.Equal(32, CheckpointFile.Verify(LastCheckpoint("replay")).Header.Step);
        var (worst, name) = CheckpointComparison.LargestDifference(LastCheckpoint("kill"), LastCheckpoint("replay"));
        output.WriteLine($"killed run vs resumed from step {regroupStep} with 2 workers: largest absolute difference {worst:E2} ({name})");
        Assert.True(worst == 0, $"{name} differs by {worst:E2}");

        // moco replay --verify re-executes the killed run from its seeded start, as its journal recorded it: generation 1
        // on a loopback TCP ring of three replicas, generation 2 on a ring of two from the regroup step, one torch thread
        // (as recorded). The same summation orders: every loss bit for bit and every chunk's state digest (tolerance 0).
        var verify = Start("verify", ["replay", RunDir("kill"), "--verify"]);
        int verified = await verify.WaitForExitAsync(Bound);
        output.WriteLine(verify.Output);
        Assert.True(verified == 0, verify.Output);
        Assert.Contains($"regrouped at step {regroupStep}: 3 -> 2 replica(s) (tcp-ring)", verify.Output, StringComparison.Ordinal);
        Assert.Contains("verdict: identical", verify.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_node_that_stops_answering_mid_all_reduce_must_be_left_behind_within_the_timeout()
    {
        int port = MocoProcess.FreePort();
        string[] timeout = ["--collective-timeout-seconds", "5"];
        var train = Start("train", ["train", .. Tiny(4), .. timeout, "--port", Port(port), "--min-workers", "3", "--run-dir", RunDir("frozen")], SecretVariable);
        await train.WaitForAsync("waiting for workers", Bound);
        var first = Start("node-1", ["node", "--join", $"127.0.0.1:{port}", "--threads", "1", "--loader-threads", "1", .. timeout], SecretVariable);
        var frozen = Start("node-2", ["node", "--join", $"127.0.0.1:{port}", "--threads", "1", "--loader-threads", "1", .. timeout], SecretVariable);
        await train.WaitForAsync("3 worker\\(s\\), generation 1", Bound);
        await train.WaitForAsync("^epoch 0:", Bound);

        frozen.Signal("STOP");
        var clock = Stopwatch.StartNew();
        await train.WaitForAsync(@"generation 2\b.*2 worker\(s\) go on", Bound);
        output.WriteLine($"SIGSTOP to the next generation: {clock.Elapsed.TotalSeconds:F1} s (collective timeout 5 s)");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(60), $"regrouping took {clock.Elapsed.TotalSeconds:F0} s");
        Assert.Equal(0, await train.WaitForExitAsync(Bound));
        Assert.Equal(0, await first.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        Assert.Equal(32, History("frozen").GetProperty("lastStep").GetInt64());
    }

    [Fact]
    public async Task Train_must_serve_metrics_and_health_while_it_runs()
    {
        int metricsPort = MocoProcess.FreePort();
        var train = Start("train", ["train", .. Tiny(40), "--run-dir", RunDir("metrics")], ("MOCO_METRICS_PORT", Port(metricsPort)));
        await train.WaitForAsync("^epoch 1:", Bound);
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        var text = await http.GetStringAsync($"http://127.0.0.1:{metricsPort}/metrics");
        output.WriteLine(text);
        foreach (var name in new[] { "moco_global_step", "moco_loss", "moco_lr", "moco_generation", "moco_world_size", "moco_checkpoint_duration_seconds" })
        {
            Assert.Contains(name, text, StringComparison.Ordinal);
        }

        // values, not just names: the run is past epoch 0 (8 steps), and its step rate is measured
        double Value(string name)
        {
            var match = System.Text.RegularExpressions.Regex.Match(text, $@"^{name}(?:\{{[^}}]*\}})? (\S+)$", System.Text.RegularExpressions.RegexOptions.Multiline);
            Assert.True(match.Success, $"{name} is not in the scrape");
            return double.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture);
        }

        Assert.True(Value("moco_global_step") >= 8, $"moco_global_step {Value("moco_global_step")}");
        Assert.True(Value("moco_step_rate") > 0 && Value("moco_images_per_second") > 0, "no step rate");
        Assert.Equal(1, Value("moco_world_size"));

        Assert.Equal(System.Net.HttpStatusCode.OK, (await http.GetAsync($"http://127.0.0.1:{metricsPort}/ready")).StatusCode);
        Assert.Equal(System.Net.HttpStatusCode.OK, (await http.GetAsync($"http://127.0.0.1:{metricsPort}/alive")).StatusCode);
        // SIGTERM (the kubelet's stop) interrupts: the chunk ends, a checkpoint is written, exit 130, resumable
        train.Signal("TERM");
        Assert.Equal(130, await train.WaitForExitAsync(Bound));
        await train.WaitForAsync("interrupted at step", TimeSpan.FromSeconds(5));
    }

    [Fact]
    public async Task A_node_stopped_with_sigterm_must_leave_gracefully_without_quarantine()
    {
        int port = MocoProcess.FreePort();
        var train = Start("train", ["train", .. Tiny(4), "--port", Port(port), "--min-workers", "2", "--run-dir", RunDir("leave")], SecretVariable);
        await train.WaitForAsync("waiting for workers", Bound);
        var node = Start("node", ["node", "--join", $"127.0.0.1:{port}", "--threads", "1", "--loader-threads", "1"], SecretVariable);
        await train.WaitForAsync("^epoch 0:", Bound);

        node.Signal("TERM");
        Assert.Equal(0, await node.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        Assert.Contains("SIGTERM: left the cluster", node.Output, StringComparison.Ordinal);
        await train.WaitForAsync(@"leaving gracefully \(SIGTERM\); rank\(s\) 1 leave the run; the others go on", Bound);
        await train.WaitForAsync(@"generation 2\b.*1 worker\(s\) go on", Bound);
        Assert.Equal(0, await train.WaitForExitAsync(Bound));

        var history = History("leave");
        Assert.Equal(32, history.GetProperty("lastStep").GetInt64());
        var left = Assert.Single(history.GetProperty("membership").EnumerateArray(), m => m.GetProperty("change").GetString() == "left");
        Assert.Contains("leaving gracefully (SIGTERM)", left.GetProperty("reason").GetString(), StringComparison.Ordinal);
        // a leave is no failure, of the leaver or of the rank it leaves behind, and the survivor loses no step
        Assert.Empty(history.GetProperty("failures").EnumerateArray());
        HistoryChecks.GenerationsStartWhereTheRecordedStepsEnd(history);
    }

    [Fact]
    public async Task A_node_without_the_secret_must_be_refused_and_downed()
    {
        int port = MocoProcess.FreePort();
        // 40 epochs (about a minute on 2 quiet cores): the run outlasts the stranger's start and its 10 s to prove itself
        var train = Start("train", ["train", .. Tiny(40), "--port", Port(port), "--run-dir", RunDir("stranger")], SecretVariable);
        await train.WaitForAsync("1 worker\\(s\\), generation 1", Bound);
        var stranger = Start("stranger", ["node", "--join", $"127.0.0.1:{port}", "--threads", "1"], ("MOCO_CLUSTER_SECRET", "not-the-secret-but-long-enough"));

        // with another secret it cannot even read the director's request for its offer (the message key differs), so it
        // never proves anything: downed when its time is up (moco.cluster member-proof timeout, 10 s)
        await train.WaitForAsync("did not prove it holds the cluster's secret", Bound);
        Assert.Equal(1, await stranger.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        Assert.Contains("this node left the cluster (downed or removed)", stranger.Output, StringComparison.Ordinal);
        // the 40-epoch run takes about a minute on 2 quiet cores; beside the other test assemblies it took over 3 once
        Assert.Equal(0, await train.WaitForExitAsync(Bound * 2));
        Assert.Single(History("stranger").GetProperty("generations").EnumerateArray());
    }

    private MocoProcess Start(string name, string[] args, params (string, string)[] environment) => _processes.Start(name, args, environment);

    private string RunDir(string name) => Path.Combine(_processes.Directory, name);

    private static string Port(int port) => port.ToString(CultureInfo.InvariantCulture);

    private string LastCheckpoint(string run) => new CheckpointDirectory(RunDir(run)).List()[^1];

    private JsonElement History(string run) => _processes.History(RunDir(run));

    /// <summary>The largest relative difference ||x - y|| / ||x|| over the floating-point tensors of two checkpoints.</summary>
    private static (double Worst, string Name) LargestRelativeDifference(string a, string b)
    {
        using var x = CheckpointFile.Read(a);
        using var y = CheckpointFile.Read(b);
        double worst = 0;
        string where = "";
        foreach (var name in x.Names.Where(n => x[n].is_floating_point()))
        {
            var xd = x[name].to(TorchSharp.torch.ScalarType.Float64);
            var yd = y[name].to(TorchSharp.torch.ScalarType.Float64);
            double diff = xd.sub(yd).norm().item<double>() / Math.Max(1e-12, xd.norm().item<double>());
            if (diff > worst)
            {
                worst = diff;
                where = name;
            }
        }

        return (worst, where);
    }

    /// <inheritdoc />
    public void Dispose() => _processes.Dispose();
}
