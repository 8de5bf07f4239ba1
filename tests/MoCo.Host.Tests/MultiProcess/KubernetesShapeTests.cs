using System.Globalization;
using System.Net;
using System.Text.Json;
using MoCo.Model.Checkpoints;
using Xunit.Abstractions;

namespace MoCo.Host.Tests.MultiProcess;

/// <summary>
/// The Kubernetes deployment's processes on 127.0.0.1, started the way k8s/base starts its pods: the trainer pod as
/// <c>moco train --config hocon/kubernetes.conf --run-dir D --continue</c>, advertising a host name (as the pod's DNS
/// name), and worker pods as <c>moco node --config hocon/kubernetes.conf --join NAME:PORT --stay</c>; the per-pod values
/// (addresses, ports) come from the environment as the StatefulSets set them. What the kubelet does is done by hand:
/// SIGTERM on a scale-down, starting the same command again on a restart. The job shape (k8s/job) is started the way its
/// Jobs start their pods: <c>moco train --config hocon/kubernetes-job.conf --run-dir D --continue</c> and
/// <c>moco node --config hocon/kubernetes-job.conf --join NAME:PORT --until-complete</c>.
/// </summary>
public sealed class KubernetesShapeTests(ITestOutputHelper output) : IDisposable
{
    private const string Secret = "k8s-test-secret-0123456789abcdef";
    private static readonly TimeSpan Bound = TimeSpan.FromMinutes(3);
    private static readonly string Conf = Path.Combine(AppContext.BaseDirectory, "hocon", "kubernetes.conf");
    private static readonly string JobConf = Path.Combine(AppContext.BaseDirectory, "hocon", "kubernetes-job.conf");
    private readonly MocoProcessGroup _processes = new(output, "moco-k8s-");
    private readonly int _trainerPort = MocoProcess.FreePort();
    private readonly int _trainerMetrics = MocoProcess.FreePort();

    private string RunDir => Path.Combine(_processes.Directory, "runs", "moco");

    // epochs of 8 steps (12 unless a test says otherwise); one torch thread per process (see MultiProcessTests)
    private static string[] Run(int epochs) =>
    [
        "--data", "synthetic:256", "--epochs", epochs.ToString(CultureInfo.InvariantCulture), "--batch-size", "32", "--moco-k", "64", "--width", "4", "--moco-dim", "16",
        "--bn-splits", "4", "--knn-every", "0", "--threads", "1", "--loader-threads", "1",
    ];

    [Fact]
    public async Task Pods_with_the_kubernetes_configuration_must_form_the_run_scale_and_survive_a_trainer_restart()
    {
        // the trainer pod: min-workers 2 in kubernetes.conf, so it waits for one worker pod
        var trainer = StartTrainer("trainer");
        await trainer.WaitForAsync("waiting for workers: 1 of the 2", Bound);
        var first = StartNode("worker-0");
        await trainer.WaitForAsync(@"2 worker\(s\), generation 1", Bound);
        await first.WaitForAsync("joined the cluster", Bound);
        await trainer.WaitForAsync("^epoch 0:", Bound);
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync($"http://127.0.0.1:{_trainerMetrics}/ready")).StatusCode);
        // two workers: every step's all-reduce wait reaches the trainer's histogram
        var scrape = await http.GetStringAsync($"http://127.0.0.1:{_trainerMetrics}/metrics");
        var count = System.Text.RegularExpressions.Regex.Match(scrape, @"^moco_allreduce_duration_seconds_count(?:\{[^}]*\})? (\S+)$", System.Text.RegularExpressions.RegexOptions.Multiline);
        Assert.True(count.Success && double.Parse(count.Groups[1].Value, CultureInfo.InvariantCulture) > 0, $"no all-reduce recorded:\n{scrape}");

        // kubectl scale --replicas=0: the worker pod gets SIGTERM and leaves (--stay or not, a signal ends it); the
        // trainer goes on alone
        first.Signal("TERM");
        Assert.Equal(0, await first.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        Assert.DoesNotContain("joining again", first.Output, StringComparison.Ordinal);
        await trainer.WaitForAsync(@"generation 2\b.*1 worker\(s\) go on", Bound);

        // kubectl scale --replicas=1: a new worker pod joins at the next chunk boundary
        var second = StartNode("worker-0b");
        await trainer.WaitForAsync(@"generation 3\b.*2 worker\(s\)", Bound);

        // the trainer pod is deleted (or its node drained): SIGTERM interrupts, checkpoints where it stops, exits 130
        trainer.Signal("TERM");
        Assert.Equal(130, await trainer.WaitForExitAsync(Bound));
        var stopped = await trainer.WaitForAsync(@"interrupted at step (\d+)", TimeSpan.FromSeconds(5));
        long stopStep = long.Parse(stopped.Groups[1].Value, CultureInfo.InvariantCulture);
        var latest = CheckpointDirectory.Latest(RunDir, RunId());
        Assert.NotNull(latest.Found);
        Assert.Equal(stopStep, latest.Found.Header.Step); // nothing trained is lost
        // the worker pod stays (--stay): its run is gone, so it joins again until the trainer is back
        await second.WaitForAsync("--stay: joining again", TimeSpan.FromSeconds(60));
        Assert.False(second.HasExited, "the worker pod's process ended with its trainer");

        // the kubelet restarts the trainer's container with the same command: it resumes where it stopped, with the
        // worker that was waiting for it
        var restarted = StartTrainer("trainer-restarted");
        var resumed = await restarted.WaitForAsync(@"resuming run \S+ at epoch (\d+), step (\d+) \((\d+) steps/epoch\)", Bound);
        Assert.Equal(stopStep, (long.Parse(resumed.Groups[1].Value, CultureInfo.InvariantCulture) * 8) + long.Parse(resumed.Groups[2].Value, CultureInfo.InvariantCulture));
        await restarted.WaitForAsync(@"2 worker\(s\), generation 4", Bound);
        Assert.Equal(0, await restarted.WaitForExitAsync(Bound));
        await second.WaitForAsync("node done: RunCompleted", TimeSpan.FromSeconds(60));

        var history = History();
        output.WriteLine(history.ToString());
        Assert.Equal(96, history.GetProperty("lastStep").GetInt64()); // 12 epochs x 8 steps, none skipped or repeated
        Assert.Equal(Enumerable.Range(0, 12), history.GetProperty("epochs").EnumerateArray().Select(e => e.GetProperty("epoch").GetInt32()));
        Assert.Equal([2, 1, 2, 2], history.GetProperty("generations").EnumerateArray().Select(g => g.GetProperty("ranks").GetArrayLength()));
        Assert.Contains(history.GetProperty("membership").EnumerateArray(), m => m.GetProperty("reason").GetString()?.Contains("leaving gracefully (SIGTERM)", StringComparison.Ordinal) == true);
        Assert.Empty(history.GetProperty("failures").EnumerateArray()); // a scale-down is no failure
        HistoryChecks.GenerationsStartWhereTheRecordedStepsEnd(history);

        // the run is complete: a further restart neither trains nor exits (an exit would be restarted again)
        var idle = StartTrainer("trainer-idle");
        await idle.WaitForAsync("is complete", Bound);
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync($"http://127.0.0.1:{_trainerMetrics}/alive")).StatusCode);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, (await http.GetAsync($"http://127.0.0.1:{_trainerMetrics}/ready")).StatusCode);
        await Task.Delay(1000);
        Assert.False(idle.HasExited, "the idle trainer exited");
        idle.Signal("TERM");
        Assert.Equal(0, await idle.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        Assert.False(second.HasExited, "the staying worker pod ended without a signal");
        second.Signal("TERM");
        Assert.Equal(0, await second.WaitForExitAsync(TimeSpan.FromSeconds(90)));
        Assert.Equal(96, History().GetProperty("lastStep").GetInt64());
    }

    [Fact]
    public async Task Pods_of_the_job_shape_must_run_the_run_to_completion_and_exit_0()
    {
        // A Job starts its pods in no particular order: the worker pods first here, before the trainer is reachable
        // (--until-complete keeps joining rather than failing), then the trainer pod. The run waits for all three
        // workers (min-workers 4 with the trainer's own), so that each of them is in its first generation.
        var workers = new[] { StartJobNode("job-worker-0"), StartJobNode("job-worker-1"), StartJobNode("job-worker-2") };
        var trainer = StartTrainer("job-trainer", JobConf, epochs: 4, ("MOCO_CLUSTER_MIN_WORKERS", "4"));
        await trainer.WaitForAsync(@"4 worker\(s\), generation 1\b", Bound);
        await trainer.WaitForAsync("^epoch 0:", Bound);

        // a lower parallelism (kubectl patch job): the Job controller deletes a worker pod, which leaves gracefully and
        // exits 143, neither a success (the Job would stop replacing workers) nor a failure (podFailurePolicy ignores
        // it); the run goes on without it
        workers[2].Signal("TERM");
        Assert.Equal(ExitCodes.LeftBeforeCompletion, await workers[2].WaitForExitAsync(TimeSpan.FromSeconds(60)));
        // a generation of the three that remain: the next one, or the one after where the leave cut a collective short
        // and a rank was re-created (seen once here); either way the journal must end at step 32 with each epoch once
        await trainer.WaitForAsync(@"generation \d+\b.*\b3 worker\(s\)", Bound);

        // the run completes: the trainer exits 0 (its Job completes) and so does every remaining worker (the worker Job
        // completes once all its pods have ended, one with success being enough to say the work is done)
        Assert.Equal(ExitCodes.Success, await trainer.WaitForExitAsync(Bound));
        await trainer.WaitForAsync(@"done\b.*32 steps", TimeSpan.FromSeconds(5));
        foreach (var worker in workers[..2])
        {
            Assert.Equal(ExitCodes.Success, await worker.WaitForExitAsync(TimeSpan.FromSeconds(60)));
            await worker.WaitForAsync("node done: RunCompleted", TimeSpan.FromSeconds(5));
        }

        var history = History();
        output.WriteLine(history.ToString());
        Assert.Equal(32, history.GetProperty("lastStep").GetInt64()); // 4 epochs x 8 steps
        Assert.Equal(Enumerable.Range(0, 4), history.GetProperty("epochs").EnumerateArray().Select(e => e.GetProperty("epoch").GetInt32()));
        Assert.Equal(4, history.GetProperty("generations")[0].GetProperty("ranks").GetArrayLength());
        Assert.Contains(history.GetProperty("membership").EnumerateArray(), m => m.GetProperty("reason").GetString()?.Contains("leaving gracefully (SIGTERM)", StringComparison.Ordinal) == true);
        Assert.Empty(history.GetProperty("failures").EnumerateArray()); // a scale-down is no failure
        HistoryChecks.GenerationsStartWhereTheRecordedStepsEnd(history);

        // a new trainer pod after the run completed (its predecessor died after the journal recorded the completion):
        // it says so and exits 0 at once (idle-when-complete = false), where the StatefulSet's trainer would idle
        var again = StartTrainer("job-trainer-again", JobConf, epochs: 4);
        await again.WaitForAsync("is complete", Bound);
        Assert.Equal(ExitCodes.Success, await again.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        Assert.Equal(32, History().GetProperty("lastStep").GetInt64());
    }

    private MocoProcess StartTrainer(string name) => StartTrainer(name, Conf, epochs: 12);

    private MocoProcess StartTrainer(string name, string conf, int epochs, params (string, string)[] environment) => Start(name,
        ["train", "--config", conf, "--run-dir", RunDir, "--continue", .. Run(epochs)],
        [.. TrainerEnvironment, .. environment]);

    private (string, string)[] TrainerEnvironment =>
    [
        ("MOCO_CLUSTER_HOSTNAME", "127.0.0.1"),
        ("MOCO_CLUSTER_PUBLIC_HOSTNAME", "localhost"), // a host name, as the pod's DNS name in k8s
        ("MOCO_CLUSTER_PORT", Port(_trainerPort)),
        ("MOCO_CLUSTER_DATA_PLANE_PORT", "0"),
        ("MOCO_METRICS_PORT", Port(_trainerMetrics)),
        ("MOCO_CLUSTER_SECRET", Secret),
    ];

    private MocoProcess StartNode(string name) => StartNode(name, Conf, "--stay");

    private MocoProcess StartJobNode(string name) => StartNode(name, JobConf, "--until-complete");

    private MocoProcess StartNode(string name, string conf, string mode) => Start(name,
        ["node", "--config", conf, "--join", $"localhost:{_trainerPort}", mode, "--threads", "1", "--loader-threads", "1"],
        ("MOCO_CLUSTER_HOSTNAME", "127.0.0.1"),
        ("MOCO_CLUSTER_PUBLIC_HOSTNAME", "127.0.0.1"), // the pod IP
        ("MOCO_CLUSTER_PORT", Port(MocoProcess.FreePort())),
        ("MOCO_CLUSTER_DATA_PLANE_PORT", "0"),
        ("MOCO_METRICS_PORT", Port(MocoProcess.FreePort())),
        ("MOCO_CLUSTER_SECRET", Secret));

    private MocoProcess Start(string name, string[] args, params (string, string)[] environment) => _processes.Start(name, args, environment);

    private string RunId() => CheckpointFile.Verify(new CheckpointDirectory(RunDir).List()[^1]).Header.RunId;

    private static string Port(int port) => port.ToString(CultureInfo.InvariantCulture);

    private JsonElement History() => _processes.History(RunDir);

    /// <inheritdoc />
    public void Dispose() => _processes.Dispose();
}
