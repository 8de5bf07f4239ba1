using System.Text.Json;
using MoCo.Actors.Tests.Persistence;

namespace MoCo.Host.Tests;

/// <summary>
/// <c>moco train</c> as a user runs it: the built host in a process of its own, through Akka.Hosting (a one-node
/// cluster, the recorder singleton, the journal in the run directory), then <c>moco history --json</c> on its journal.
/// </summary>
public sealed class TrainCommandTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "moco-train-cli-" + Guid.NewGuid().ToString("N"));

    private static readonly string[] Tiny =
    [
        "--data", "synthetic:256", "--epochs", "1", "--batch-size", "32", "--moco-k", "64", "--width", "4",
        "--moco-dim", "16", "--bn-splits", "4", "--knn-every", "0",
    ];

    [Fact]
    public void Train_with_two_devices_must_run_two_workers_through_the_cluster_and_journal_them()
    {
        var runDir = Path.Combine(_dir, "two");
        var (code, output) = Run(["train", .. Tiny, "--devices", "2", "--run-dir", runDir]);

        Assert.True(code == 0, output);
        // the tests' libtorch is TorchSharp's CPU package: auto is the CPU on any machine
        Assert.Contains("device: CPU (moco.host.device = auto and libtorch sees no CUDA device", output, StringComparison.Ordinal);
        Assert.Contains("2 worker(s), generation 1", output, StringComparison.Ordinal);
        Assert.Contains("done: 8 steps", output, StringComparison.Ordinal);

        var (historyCode, json) = Run(["history", runDir, "--json"]);
        Assert.True(historyCode == 0, json);
        using var doc = JsonDocument.Parse(json);
        var root = doc.RootElement;
        Assert.Equal("Completed", root.GetProperty("status").GetString());
        var generation = Assert.Single(root.GetProperty("generations").EnumerateArray());
        Assert.Equal(["worker-0", "worker-1"], generation.GetProperty("ranks").EnumerateArray().Select(w => w.GetProperty("workerId").GetString()));
        Assert.Single(root.GetProperty("checkpoints").EnumerateArray());
    }

    [Fact]
    public void Shards_written_by_moco_shards_must_train_with_two_workers_and_be_refused_to_overwrite_without_force()
    {
        var shards = Path.Combine(_dir, "shards");
        var (written, log) = Run(["shards", "--data", "synthetic:256", "--out", shards, "--shard-mib", "1"]);
        Assert.True(written == 0, log);
        Assert.Contains("wrote 1 train and 3 test shards, 1256 samples", log, StringComparison.Ordinal);
        string pattern = Path.Combine(shards, "train-000000.tar");
        Assert.Contains($"moco train --data '{pattern}'", log, StringComparison.Ordinal);
        Assert.True(File.Exists(Path.Combine(shards, "classes.txt")));

        var (code, output) = Run(["train", .. Tiny[2..], "--data", pattern, "--devices", "2", "--run-dir", Path.Combine(_dir, "from-shards")]);
        Assert.True(code == 0, output);
        Assert.Contains("WebDataset shards", output, StringComparison.Ordinal);
        Assert.Contains("256 train samples in 1 shards", output, StringComparison.Ordinal);
        Assert.Contains("done: 8 steps", output, StringComparison.Ordinal);

        var (again, refusal) = Run(["shards", "--data", "synthetic:256", "--out", shards]);
        Assert.Equal(2, again);
        Assert.Contains("--force", refusal, StringComparison.Ordinal);
        Assert.True(File.Exists(pattern), "a refused write must leave the shards there");
    }

    [Fact]
    public void Train_must_write_tensorboard_events_with_the_losses_of_every_step_and_epoch()
    {
        var runDir = Path.Combine(_dir, "tensorboard");
        var (code, output) = Run(["train", .. Tiny[..2], "--epochs", "2", .. Tiny[4..], "--run-dir", runDir]);
        Assert.True(code == 0, output);

        var values = TensorBoardEvents.ReadAll(Path.Combine(runDir, "tb"));
        // 256 images in batches of 32: 8 steps an epoch, global steps 0..15, each once
        var losses = values.Where(v => v.Tag == "train/loss").ToList();
        Assert.Equal(Enumerable.Range(0, 16).Select(i => (long)i), losses.Select(v => v.Step));
        Assert.All(losses, v => Assert.True(v.SimpleValue is > 0 and < 100, $"loss {v.SimpleValue} at step {v.Step}"));
        Assert.Equal(16, values.Count(v => v.Tag == "train/instance_accuracy"));
        Assert.Equal(16, values.Count(v => v.Tag == "train/lr"));

        // epoch/loss is metrics.csv's loss column: tolerance 1e-5 relative, the csv's G6 rounding (5e-6) plus float32's (6e-8)
        var rows = File.ReadAllLines(Path.Combine(runDir, "metrics.csv")).Skip(1).Select(l => l.Split(',')).ToList();
        var epochLosses = values.Where(v => v.Tag == "epoch/loss").ToList();
        Assert.Equal(rows.Select(r => long.Parse(r[0], System.Globalization.CultureInfo.InvariantCulture)), epochLosses.Select(v => v.Step));
        for (int i = 0; i < rows.Count; i++)
        {
            double csv = double.Parse(rows[i][2], System.Globalization.CultureInfo.InvariantCulture);
            Assert.True(Math.Abs(epochLosses[i].SimpleValue!.Value - csv) <= 1e-5 * Math.Abs(csv), $"epoch/loss {epochLosses[i].SimpleValue} vs metrics.csv {csv}");

            // and the mean of the epoch's train/loss values (float32 each: 1e-6 relative covers their rounding)
            double mean = losses.Skip(8 * i).Take(8).Average(v => (double)v.SimpleValue!.Value);
            Assert.True(Math.Abs(mean - epochLosses[i].SimpleValue!.Value) <= 1e-6 * Math.Abs(mean), $"epoch {i}: mean train/loss {mean} vs epoch/loss {epochLosses[i].SimpleValue}");
        }

        Assert.Equal(2, values.Count(v => v.Tag == "epoch/images_per_second"));
        Assert.DoesNotContain(values, v => v.Tag == "epoch/knn_top1"); // --knn-every 0: no monitor, no value
        var config = Assert.Single(values, v => v.Tag == "config/text_summary");
        Assert.Contains("\"batch-size\": 32", System.Text.Encoding.UTF8.GetString(config.Raw), StringComparison.Ordinal);
        var generation = Assert.Single(values, v => v.Tag == "generation/text_summary");
        Assert.Contains("generation 1: 1 worker(s)", System.Text.Encoding.UTF8.GetString(generation.Raw), StringComparison.Ordinal);
        Assert.Equal(1f, Assert.Single(values, v => v.Tag == "train/world_size").SimpleValue);
        // K 64, 32 keys a step: the queue is full after 2 steps and no key in it can be older than K / 32 = 2 steps;
        // nothing is reported while a random initial key remains
        var ages = values.Where(v => v.Tag == "train/queue_age_steps").ToList();
        Assert.NotEmpty(ages);
        Assert.All(ages, v => Assert.InRange(v.SimpleValue!.Value, 0f, 2f));
        Assert.All(ages, v => Assert.True(v.Step >= 2, $"an age at step {v.Step}, before the queue was full"));

        // once per epoch, the first 8 images of its order beside their two views: 3 tiles of 32 and 2-pixel gaps
        var views = values.Where(v => v.Tag == "augmentation/views").ToList();
        Assert.Equal([0L, 1L], views.Select(v => v.Step));
        var grids = views.Select(v => TensorBoardEvents.Image(v)!.Value).ToList();
        foreach (var grid in grids)
        {
            Assert.Equal((8 * 32 + 9 * 2, 3 * 32 + 4 * 2), (grid.Height, grid.Width));
            Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, grid.Encoded[..4]);
        }
        using var first = SkiaSharp.SKBitmap.Decode(grids[0].Encoded);
        using var second = SkiaSharp.SKBitmap.Decode(grids[1].Encoded);
        Assert.Equal(grids[0].Width, first.Width);
        // the two views of an image differ (cropped and coloured apart), and so do two epochs' grids
        Assert.NotEqual(Tile(first, row: 0, column: 1), Tile(first, row: 0, column: 2));
        Assert.NotEqual(Tile(first, 0, 1), Tile(second, 0, 1));

    }

    [Fact]
    public async Task An_interrupted_and_resumed_run_must_write_every_step_once_across_its_tensorboard_files()
    {
        var runDir = Path.Combine(_dir, "tensorboard-resumed");
        string[] args = ["train", .. Tiny[..2], "--epochs", "3", .. Tiny[4..], "--run-dir", runDir];
        using (var first = MultiProcess.MocoProcess.Start("moco train", args))
        {
            await first.WaitForAsync(@"epoch 0:", TimeSpan.FromMinutes(2));
            first.Signal("TERM"); // stops at the end of the chunk, with a checkpoint
            Assert.True(await first.WaitForExitAsync(TimeSpan.FromMinutes(2)) == 130, first.Output);
        }
        var (code, output) = Run(["train", "--resume", runDir]);
        Assert.True(code == 0, output);

        // a second event file in the same folder; over both, every step and every epoch's views once
        Assert.Equal(2, Directory.GetFiles(Path.Combine(runDir, "tb")).Length);
        var values = TensorBoardEvents.ReadAll(Path.Combine(runDir, "tb"));
        Assert.Equal(Enumerable.Range(0, 24).Select(i => (long)i), values.Where(v => v.Tag == "train/loss").Select(v => v.Step).Order());
        Assert.Equal([0L, 1L, 2L], values.Where(v => v.Tag == "augmentation/views").Select(v => v.Step).Order());
        Assert.Contains(values, v => v.Tag == "generation/text_summary" && System.Text.Encoding.UTF8.GetString(v.Raw).Contains(" resumed at step ", StringComparison.Ordinal));
    }

    /// <summary>The RGB bytes of one 32x32 tile of an augmentation grid.</summary>
    private static byte[] Tile(SkiaSharp.SKBitmap grid, int row, int column)
    {
        var bytes = new List<byte>(32 * 32 * 3);
        for (int y = 0; y < 32; y++)
        {
            for (int x = 0; x < 32; x++)
            {
                var c = grid.GetPixel(2 + column * 34 + x, 2 + row * 34 + y);
                bytes.Add(c.Red);
                bytes.Add(c.Green);
                bytes.Add(c.Blue);
            }
        }
        return bytes.ToArray();
    }

    [Fact]
    public void Train_must_write_no_tensorboard_events_when_turned_off_and_only_json_lines_with_log_format_json()
    {
        var runDir = Path.Combine(_dir, "no-tensorboard");
        var (code, output) = Run(["train", .. Tiny, "--run-dir", runDir, "--print-freq", "2", "--log-format", "json"], ("MOCO_HOST_TENSORBOARD", "false"));
        Assert.True(code == 0, output);
        Assert.True(File.Exists(Path.Combine(runDir, "metrics.csv")), output);
        Assert.False(Directory.Exists(Path.Combine(runDir, "tb")));

        // every line the process printed (stdout and stderr) is one JSON object with the record's fields
        var records = output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(line =>
        {
            try
            {
                return JsonDocument.Parse(line).RootElement.Clone();
            }
            catch (JsonException e)
            {
                throw new Xunit.Sdk.XunitException($"not a JSON line: {line} ({e.Message})\n{output}");
            }
        }).ToList();
        Assert.All(records, r => Assert.True(r.TryGetProperty("time", out _) && r.TryGetProperty("level", out _) && r.TryGetProperty("message", out _), r.ToString()));
        // the step records carry the run's place and their values as fields
        var steps = records.Where(r => r.GetProperty("category").GetString() == "MoCo.Progress" && r.TryGetProperty("loss", out _)
            && !r.TryGetProperty("seconds", out _)).ToList();
        Assert.Equal(4, steps.Count); // 8 steps, one record every 2
        string runId = steps[0].GetProperty("run_id").GetString()!;
        Assert.StartsWith("run-", runId, StringComparison.Ordinal);
        for (int i = 0; i < steps.Count; i++)
        {
            Assert.Equal(runId, steps[i].GetProperty("run_id").GetString());
            Assert.Equal(1, steps[i].GetProperty("generation").GetInt32());
            Assert.Equal(0, steps[i].GetProperty("rank").GetInt32());
            Assert.Equal(0, steps[i].GetProperty("epoch").GetInt32());
            Assert.Equal(2 * i + 1, steps[i].GetProperty("step").GetInt64());
            Assert.True(steps[i].GetProperty("loss").GetDouble() > 0);
        }
        var epoch = Assert.Single(records, r => r.TryGetProperty("seconds", out _));
        Assert.Equal(8, epoch.GetProperty("global_step").GetInt64());
        var done = records[^1];
        Assert.StartsWith("done: 8 steps", done.GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Equal(runId, done.GetProperty("run_id").GetString());
    }

    [Fact]
    public void Log_format_must_be_text_or_json_and_a_worker_record_names_its_rank()
    {
        Assert.Equal(Logging.LogFormat.Json, Logging.ProcessLogging.Parse(" JSON "));
        Assert.Equal(Logging.LogFormat.Text, Logging.ProcessLogging.Parse(null));
        var e = Assert.Throws<Configuration.ConfigurationError>(() => Logging.ProcessLogging.Parse("xml"));
        Assert.Contains("text or json", e.Message);

        // an Akka warning of a worker of the director: rank from the actor's path, the run's place from the context
        var line = Logging.JsonLineFormatter.Format(DateTimeOffset.UnixEpoch, Microsoft.Extensions.Logging.LogLevel.Warning, "Akka.Actor.ActorCell",
            "[WARNING][12/02/2026 19:09:30.286Z][Thread 0019][akka://moco/user/training-director/worker-2] Rank 2 stopped", null, new InvalidOperationException("boom"),
            new Logging.RunLogContext.Snapshot("run-x", 3, 4, 5, 678));
        var r = JsonDocument.Parse(line).RootElement;
        Assert.Equal("1970-01-01T00:00:00.000Z", r.GetProperty("time").GetString());
        Assert.Equal("warning", r.GetProperty("level").GetString());
        Assert.Equal("Rank 2 stopped", r.GetProperty("message").GetString());
        Assert.Equal("akka://moco/user/training-director/worker-2", r.GetProperty("source").GetString());
        Assert.Equal(19, r.GetProperty("thread").GetInt32());
        Assert.Equal("run-x", r.GetProperty("run_id").GetString());
        Assert.Equal(3, r.GetProperty("generation").GetInt32());
        Assert.Equal(4, r.GetProperty("world_size").GetInt32());
        Assert.Equal(2, r.GetProperty("rank").GetInt32());
        Assert.Equal(5, r.GetProperty("epoch").GetInt32());
        Assert.Equal(678, r.GetProperty("step").GetInt64());
        Assert.Contains("boom", r.GetProperty("exception").GetString());
        // a structured value wins over the context, and NaN stays readable (JSON has no NaN)
        line = Logging.JsonLineFormatter.Format(DateTimeOffset.UnixEpoch, Microsoft.Extensions.Logging.LogLevel.Information, "MoCo.Progress", "m",
            [new("Epoch", 9), new("Loss", double.NaN), new("{OriginalFormat}", "m")], null, new Logging.RunLogContext.Snapshot("run-x", null, null, 5, 678));
        r = JsonDocument.Parse(line).RootElement;
        Assert.Equal(9, r.GetProperty("epoch").GetInt32());
        Assert.Equal("NaN", r.GetProperty("loss").GetString());
        Assert.False(r.TryGetProperty("generation", out _));
        Assert.False(r.TryGetProperty("OriginalFormat", out _));

        // the text format: one time stamp and one level for Akka's records, the source in brackets
        var text = Logging.TextLineFormatter.Format(DateTimeOffset.UnixEpoch, Microsoft.Extensions.Logging.LogLevel.Warning, "Akka.Actor.ActorSystem",
            "[WARNING][12/02/2026 19:09:30.286Z][Thread 0019][akka://moco/system/cluster/core/daemon] Marking node(s) as UNREACHABLE", null);
        Assert.Equal("1970-01-01T00:00:00.000Z warn: [akka://moco/system/cluster/core/daemon] Marking node(s) as UNREACHABLE", text);
        text = Logging.TextLineFormatter.Format(DateTimeOffset.UnixEpoch, Microsoft.Extensions.Logging.LogLevel.Error, "MoCo", "error: x", new InvalidOperationException("boom"));
        Assert.StartsWith("1970-01-01T00:00:00.000Z fail: MoCo error: x" + Environment.NewLine, text, StringComparison.Ordinal);
        Assert.Contains("boom", text, StringComparison.Ordinal);
    }

    [Fact]
    public void Continue_must_start_a_run_in_an_empty_directory_and_refuse_a_changed_key_that_defines_it()
    {
        var runDir = Path.Combine(_dir, "continued");
        var (code, output) = Run(["train", .. Tiny, "--run-dir", runDir, "--continue"]);
        Assert.True(code == 0, output);
        Assert.Contains("starting run", output, StringComparison.Ordinal); // no checkpoint yet: a new run, there

        // the run has completed: a Job's pod (idle-when-complete = false) says so and exits 0 at once instead of
        // waiting for SIGTERM (the default, for a StatefulSet's pod: KubernetesShapeTests)
        (code, output) = Run(["train", .. Tiny, "--run-dir", runDir, "--continue", "--idle-when-complete", "false"]);
        Assert.True(code == ExitCodes.Success, output);
        Assert.Contains("is complete (its journal says so); nothing to train (idle-when-complete = false: exiting)", output, StringComparison.Ordinal);
        Assert.DoesNotContain("Waiting for SIGTERM", output, StringComparison.Ordinal);

        // the configuration is declarative under --continue: the environment counts as given, and lr defines the run
        (code, output) = Run(["train", .. Tiny, "--run-dir", runDir, "--continue"], ("MOCO_RUN_LR", "0.5"));
        Assert.Equal(2, code);
        Assert.Contains("cannot change lr to 0.5 (the run has 0.06)", output, StringComparison.Ordinal);

        (code, output) = Run(["train", .. Tiny, "--continue"]);
        Assert.Equal(2, code);
        Assert.Contains("--continue needs --run-dir", output, StringComparison.Ordinal);
        (code, output) = Run(["train", .. Tiny, "--run-dir", runDir, "--continue", "--resume", runDir]);
        Assert.Equal(2, code);
        Assert.Contains("--continue and --resume exclude each other", output, StringComparison.Ordinal);
    }

    [Fact]
    public void Doctor_must_check_the_presets_network_against_float64_and_name_the_machine()
    {
        var (code, output) = Run(["doctor", "--preset", "cifar-small", "--precision", "bf16-mixed"]);

        Assert.True(code == 0, output);
        // every distinct layer of the width-16 ResNet-18 (convolutions, BatchNorms, the head) and the whole network
        Assert.Matches(@"numerics passed: \d+ checks against float64, worst ", output);
        Assert.Contains("resnet18 width 16 cifar stem, bf16-mixed, 32px", output, StringComparison.Ordinal);
        Assert.Matches(@"cpu, \d+ torch threads; .*oneDNN ISA ", output);
        Assert.Contains("network (bf16-mixed, eval mode)", output, StringComparison.Ordinal);

        var (refused, message) = Run(["doctor", "--preset", "cifar-huge"]);
        Assert.NotEqual(0, refused);
        Assert.Contains("cifar-huge", message, StringComparison.Ordinal);
    }

    [Fact]
    public void Train_must_refuse_more_devices_than_bn_groups_naming_both()
    {
        var (code, output) = Run(["train", .. Tiny, "--devices", "5", "--run-dir", Path.Combine(_dir, "five")]);

        Assert.Equal(2, code);
        Assert.Contains("--devices 5 exceeds --bn-splits 4", output, StringComparison.Ordinal);
    }

    [Fact]
    public void Train_must_name_a_mistyped_cluster_variable_and_a_bad_seed_node()
    {
        var (code, output) = Run(["train", .. Tiny, "--run-dir", Path.Combine(_dir, "env")], ("MOCO_CLUSTER_PORTT", "4053"));
        Assert.Equal(2, code);
        Assert.Contains("MOCO_CLUSTER_PORTT names no key of moco.cluster", output, StringComparison.Ordinal);

        (code, output) = Run(["train", .. Tiny, "--run-dir", Path.Combine(_dir, "seed"), "--seed-nodes", "localhost"]);
        Assert.Equal(2, code);
        Assert.Contains("moco.cluster.seed-nodes: 'localhost' is not host:port", output, StringComparison.Ordinal);
    }

    [Fact]
    public void A_trainer_that_joins_another_must_be_a_named_standby_of_a_run_journaled_in_postgresql()
    {
        // every refusal comes before anything is written or any cluster is joined (the seed is never contacted)
        (string, string)[] secret = [("MOCO_CLUSTER_SECRET", "test-secret-0123456789abcdef")];
        var (code, output) = Run(["train", .. Tiny, "--run-dir", Path.Combine(_dir, "joins"), "--seed-nodes", "127.0.0.1:9"], secret);
        Assert.Equal(2, code);
        Assert.Contains("that makes this process a standby", output, StringComparison.Ordinal);

        (code, output) = Run(["train", .. Tiny, "--run-dir", Path.Combine(_dir, "unnamed"), "--standby", "--seed-nodes", "127.0.0.1:9"], secret);
        Assert.Equal(2, code);
        Assert.Contains("--standby needs --run-id", output, StringComparison.Ordinal);

        (code, output) = Run(["train", .. Tiny, "--run-dir", Path.Combine(_dir, "alone"), "--standby", "--run-id", "r1"], secret);
        Assert.Equal(2, code);
        Assert.Contains("--standby needs the running trainer's cluster to join", output, StringComparison.Ordinal);

        (code, output) = Run(["train", .. Tiny, "--run-dir", Path.Combine(_dir, "sqlite"), "--standby", "--run-id", "r1", "--seed-nodes", "127.0.0.1:9"], secret);
        Assert.Equal(2, code);
        Assert.Contains("--standby needs the run's journal in PostgreSQL", output, StringComparison.Ordinal);

        (code, output) = Run(["train", .. Tiny, "--run-dir", Path.Combine(_dir, "badid"), "--run-id", "../escape"]);
        Assert.Equal(2, code);
        Assert.Contains("--run-id '../escape': use 1 to 128 letters", output, StringComparison.Ordinal);
        foreach (var dir in new[] { "joins", "unnamed", "alone", "sqlite", "badid" })
        {
            Assert.False(Directory.Exists(Path.Combine(_dir, dir)), $"a run directory was made for a trainer that cannot start ({dir})");
        }
    }

    [Fact]
    public void A_node_must_say_which_data_plane_it_chose_and_refuse_forced_nccl_without_cuda_and_libnccl()
    {
        var (code, output) = Run(["node", "--join", "127.0.0.1:1"], ("MOCO_CLUSTER_SECRET", "0123456789abcdef0123456789abcdef"), ("MOCO_DATA_PLANE_BACKEND", "nccl"));
        Assert.Equal(2, code);
        Assert.Contains("moco.data-plane.backend = nccl, but this host cannot run NCCL: CUDA absent", output, StringComparison.Ordinal);
        Assert.Contains("set moco.data-plane.backend = auto (or tcp)", output, StringComparison.Ordinal);

        (code, output) = Run(["node", "--join", "127.0.0.1:1"], ("MOCO_DATA_PLANE_BACKEND", "tcp"));
        Assert.Equal(2, code);
        Assert.Contains("a run of several processes needs the cluster's shared secret on every node: set MOCO_CLUSTER_SECRET", output, StringComparison.Ordinal);
    }

    [Fact]
    public void A_node_must_refuse_stay_with_until_complete_and_map_only_a_completed_or_failed_run_to_an_exit()
    {
        var (code, output) = Run(["node", "--join", "127.0.0.1:1", "--stay", "--until-complete"], ("MOCO_CLUSTER_SECRET", "0123456789abcdef0123456789abcdef"));
        Assert.Equal(ExitCodes.ConfigurationError, code);
        Assert.Contains("--stay and --until-complete exclude each other", output, StringComparison.Ordinal);

        // --until-complete ends on the outcomes the director sends when the run is over (the name of its final
        // message), and joins again on every other end of a membership: an interrupt, a director that is gone, a run
        // that was finishing when the node offered itself, a node that never became Up
        Assert.Equal(ExitCodes.Success, Commands.NodeCommand.UntilCompleteExit(nameof(MoCo.Actors.Training.TrainingDirector.RunCompleted)));
        Assert.Equal(ExitCodes.RunFailed, Commands.NodeCommand.UntilCompleteExit(nameof(MoCo.Actors.Training.TrainingDirector.RunFailed)));
        foreach (var outcome in new[] { nameof(MoCo.Actors.Training.TrainingDirector.Interrupted), nameof(MoCo.Actors.Training.TrainingDirector.AlreadyFinished),
            "the run's director is gone", "the run is finishing", "this node left the cluster (downed or removed)", null })
        {
            Assert.Null(Commands.NodeCommand.UntilCompleteExit(outcome));
        }
    }

    [Fact]
    public void Train_must_refuse_cuda_where_libtorch_has_none_and_nccl_for_workers_on_the_cpu()
    {
        var (code, output) = Run(["train", .. Tiny, "--device", "cuda", "--run-dir", Path.Combine(_dir, "cuda")]);
        Assert.Equal(2, code);
        Assert.Contains("moco.host.device = cuda, but libtorch sees no CUDA device", output, StringComparison.Ordinal);
        Assert.False(Directory.Exists(Path.Combine(_dir, "cuda")), "a run directory was made for a run that cannot start");

        (code, output) = Run(["train", .. Tiny, "--run-dir", Path.Combine(_dir, "nccl")], ("MOCO_HOST_DEVICE", "cpu"), ("MOCO_DATA_PLANE_BACKEND", "nccl"));
        Assert.Equal(2, code);
        Assert.Contains("moco.data-plane.backend = nccl, but this host cannot run NCCL", output, StringComparison.Ordinal);
    }

    [PostgresFact]
    public void Train_must_journal_to_postgresql_when_configured_and_history_must_read_it_there()
    {
        var connection = PostgresFactAttribute.ConnectionString ?? throw new InvalidOperationException(PostgresFactAttribute.HowToProvide);
        var runDir = Path.Combine(_dir, "pg");
        var (code, output) = Run(["train", .. Tiny, "--run-dir", runDir], ("MOCO_JOURNAL_CONNECTION_STRING", connection));
        Assert.True(code == 0, output);
        Assert.False(File.Exists(Path.Combine(runDir, "journal.db")), "the SQLite journal was written although PostgreSQL was configured");
        var runId = System.Text.RegularExpressions.Regex.Match(output, @"starting run (\S+)").Groups[1].Value;

        var (historyCode, json) = Run(["history", connection, "--run", runId, "--json"]);
        Assert.True(historyCode == 0, json);
        using var doc = JsonDocument.Parse(json);
        Assert.Equal("Completed", doc.RootElement.GetProperty("status").GetString());
        Assert.Equal(8, doc.RootElement.GetProperty("lastStep").GetInt64());

        // the run re-executed and compared with its PostgreSQL journal: the checkpoints from the run directory, the
        // journal named by --journal (here through env:, so that the password is on no command line)
        var (verifyCode, verified) = Run(["replay", runDir, "--verify", "--journal", "env:MOCO_TEST_JOURNAL", "--run", runId], ("MOCO_TEST_JOURNAL", connection));
        Assert.True(verifyCode == 0, verified);
        Assert.Contains($"verifying run {runId}: the journal records steps 0 to 7", verified, StringComparison.Ordinal);
        Assert.Contains("verdict: identical", verified, StringComparison.Ordinal);

        // without --journal the run directory holds no journal to compare with: named, nothing written
        var (missing, missingOutput) = Run(["replay", runDir, "--verify"]);
        Assert.NotEqual(0, missing);
        Assert.Contains("for a run journaled in PostgreSQL name it: --journal", missingOutput, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(runDir, "journal.db")), "replay --verify created a journal in the run directory");
    }

    [Fact]
    public void Resume_must_accept_changeable_keys_and_name_the_ones_that_define_the_run()
    {
        var saved = new MoCo.Model.Training.RunConfig { Epochs = 5, Lr = 0.03 };
        var requested = saved with { Epochs = 9, Lr = 0.5, KnnEvery = 3 };

        var resumed = Commands.TrainCommand.ResumedConfig(saved, requested, ["epochs", "knn-every"]);
        Assert.Equal((saved with { Epochs = 9, KnnEvery = 3 }).ToJson(), resumed.ToJson());

        var e = Assert.Throws<MoCo.Host.Configuration.ConfigurationError>(() => Commands.TrainCommand.ResumedConfig(saved, requested, ["epochs", "lr"]));
        Assert.Contains("cannot change lr to 0.5 (the run has 0.03)", e.Message, StringComparison.Ordinal);
        Assert.Contains("only epochs, data, knn-k", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Continue_must_take_the_run_id_from_the_newest_valid_checkpoint_past_crafted_ones()
    {
        // one crafted file in checkpoints/ made every --continue start crash (only its own exception was caught)
        string corpus = Path.Combine(RepositoryRoot(), "tests", "corpus", "checkpoints");
        var directory = new MoCo.Model.Checkpoints.CheckpointDirectory(Path.Combine(_dir, "crafted"));
        Directory.CreateDirectory(directory.Folder);
        File.Copy(Path.Combine(corpus, "valid.mocockpt"), directory.PathFor(0, 0));
        string[] crafted = ["null-tensor-entry", "shape-overflows-long", "lengths-wrap-around", "null-run-id", "header-length-4gib"];
        for (int i = 0; i < crafted.Length; i++)
        {
            File.Copy(Path.Combine(corpus, crafted[i] + ".mocockpt"), directory.PathFor(0, i + 1));
        }
        File.CreateSymbolicLink(directory.PathFor(1, 0), "nowhere.mocockpt");

        Assert.Equal("corpus-run", Commands.TrainCommand.ReadRunId(directory.RunDir));
        var latest = directory.Latest("corpus-run");
        Assert.Equal(directory.PathFor(0, 0), latest.Found?.Path);
        Assert.Equal(crafted.Length + 1, latest.Skipped.Count);
    }

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "MoCo.Actors.sln")))
            {
                return dir.FullName;
            }
        }
        throw new DirectoryNotFoundException($"no MoCo.Actors.sln above {AppContext.BaseDirectory}");
    }

    internal static (int Code, string Output) Run(string[] args, params (string Name, string Value)[] environment)
    {
        using var process = MultiProcess.MocoProcess.Start("moco " + args[0], args, environment);
        int code = process.WaitForExitAsync(TimeSpan.FromMinutes(3)).GetAwaiter().GetResult();
        return (code, process.Output);
    }

    /// <inheritdoc />
    public void Dispose()
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
