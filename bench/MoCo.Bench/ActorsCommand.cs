using System.Diagnostics;
using System.Globalization;
using Akka.Actor;
using Akka.Configuration;
using MoCo.Actors.Checkpoints;
using MoCo.Actors.Training;
using MoCo.Actors.Workers;
using MoCo.Model.Collectives;
using MoCo.Model.Data;
using MoCo.Model.Training;
using Spectre.Console;
using TorchSharp;

namespace MoCo.Bench;

/// <summary>
/// <c>moco-bench actors</c>: the same steps of the same run (cifar-small, synthetic data) through (a) the bare
/// in-process loop (<see cref="Pretrainer.TrainStep"/> in a loop), (b) the actor system with one worker, (c) with two
/// in-process workers, and (d) one worker taking a checkpoint every k steps, whose write runs beside training. Prints
/// images/s as ratios to (a) measured in the same process, and the step time while a checkpoint is being written.
/// </summary>
internal static class ActorsCommand
{
    public static int Run(BenchArgs args)
    {
        int batch = args.Int("batch", 256, CifarSmall.BnSplits);
        int steps = args.Int("steps", 30, 2);
        int warmup = args.Int("warmup", 5, 1);
        int every = args.Int("checkpoint-every", 5, 1);
        int threads = args.Int("threads", Environment.ProcessorCount, 1);
        int rounds = args.Int("rounds", 2, 1);
        bool probe = args.String("probe", "off") == "on";
        args.EnsureAllRead();

        int total = warmup + steps;
        var (data, note) = BenchData.Open($"synthetic:{batch * total}", batch, threads);
        var config = CifarSmall.Config(1, batch, "synthetic") with { KnnEvery = 0, CheckpointEverySteps = 0, KeepCheckpoints = 2 };
        AnsiConsole.MarkupLine(Markup.Escape($"cifar-small ({config.Arch} width {config.Width}, K {config.MocoK}), batch {batch}, {warmup} warm-up + {steps} timed steps, {threads} threads; {note}"));
        torch.set_num_threads(threads);

        var root = Path.Combine(Path.GetTempPath(), "moco-bench-actors-" + Guid.NewGuid().ToString("N")[..8]);
        var system = ActorSystem.Create("moco-bench", ConfigurationFactory.ParseString("akka.loglevel = WARNING").WithFallback(TrainingSystem.Dispatchers)
            .WithFallback(MoCo.Actors.Persistence.RunJournal.Sqlite(Path.Combine(root, "journal.db"))));
        try
        {
            Directory.CreateDirectory(root);
            // rounds interleave the configurations (a b c d a b c d ...); each keeps its best round, so a slow moment of
            // the machine does not land on one configuration only
            Measurement? bare = null, bareThread = null, one = null, two = null, ckpt = null;
            var digestSeconds = new List<double>();
            static Measurement Best(Measurement? best, Measurement next) => best is null || next.ImagesPerSecond > best.ImagesPerSecond ? next : best;
            for (int round = 0; round < rounds; round++)
            {
                string r = round.ToString(CultureInfo.InvariantCulture);
                bare = Best(bare, Report("(a) bare loop", BareLoop(config, data, warmup, threads, digestSeconds: digestSeconds)));
                using (var group = new MoCo.Model.Collectives.InProcessGroup(1, TimeSpan.FromMinutes(5)))
                {
                    bareThread = Best(bareThread, Report("(a') bare loop on a new thread, in-process group of one",
                        OnNewThread(threads, () => BareLoop(config, data, warmup, threads, group[0]))));
                }

                if (probe)
                {
                    Report("(a'') bare loop on a new thread, world-of-one collective", OnNewThread(threads, () => BareLoop(config, data, warmup, threads)));
                    Report("(a) bare loop again", BareLoop(config, data, warmup, threads));
                    continue;
                }

                one = Best(one, Report("(b) actors, 1 worker", Director(system, config, data, root, "one-" + r, 1, threads, warmup)));
                two = Best(two, Report("(c) actors, 2 workers", Director(system, config, data, root, "two-" + r, 2, threads, warmup)));
                ckpt = Best(ckpt, Report($"(d) actors, 1 worker, checkpoint every {every} steps",
                    Director(system, config with { CheckpointEverySteps = every }, data, root, "ckpt-" + r, 1, threads, warmup)));
            }

            if (probe)
            {
                return 0; // the diagnostic rounds above measured (a) and its variants only: no table of (b)-(d)
            }

            var table = new Table().Title("moco-bench actors").Border(TableBorder.Markdown);
            table.AddColumn("");
            table.AddColumn("configuration");
            table.AddColumn(new TableColumn("median step (ms)").RightAligned());
            table.AddColumn(new TableColumn("images/s").RightAligned());
            table.AddColumn(new TableColumn("vs (a)").RightAligned());
            foreach (var (letter, what, m) in new[]
            {
                ("(a)", "bare in-process loop (Pretrainer.TrainStep)", bare!),
                ("(a')", "(a) on a new thread through an in-process group of one", bareThread!),
                ("(b)", "moco train path: director + 1 worker actor", one!),
                ("(c)", "director + 2 in-process workers (1 torch thread each)", two!),
                ("(d)", $"(b) + a checkpoint every {every} steps", ckpt!),
            })
            {
                table.AddRow(letter, Markup.Escape(what), Format(m.MedianStep * 1000, 0), Format(m.ImagesPerSecond, 1), Format(m.ImagesPerSecond / bare!.ImagesPerSecond, 3) + "x");
            }

            AnsiConsole.Write(table);
            var stall = new Table().Title("checkpoints in (d)").Border(TableBorder.Markdown);
            stall.AddColumn("quantity");
            stall.AddColumn(new TableColumn("value").RightAligned());
            var written = ckpt!;
            stall.AddRow("checkpoints written (timed part)", written.Writes.ToString(CultureInfo.InvariantCulture));
            stall.AddRow("checkpoint size (MiB)", Format(written.CheckpointMiB, 1));
            stall.AddRow("copy into memory on the worker, mean (ms)", Format(written.TakeSeconds * 1000, 1));
            stall.AddRow("hash + write + fsync on the checkpointer, mean (ms)", Format(written.WriteSeconds * 1000, 1));
            stall.AddRow("median step, no write in flight (ms)", Format(written.MedianQuietStep * 1000, 0));
            stall.AddRow("mean step while a write is in flight (ms)", Format(written.MeanStepDuringWrite * 1000, 0));
            stall.AddRow("step time during a write / normal", Format(written.MeanStepDuringWrite / written.MedianQuietStep, 3) + "x");
            stall.AddRow("step that took the copy / normal", Format(written.MeanTakeStep / written.MedianQuietStep, 3) + "x");
            stall.AddRow("a synchronous write would add per checkpoint (ms)", Format((written.TakeSeconds + written.WriteSeconds) * 1000, 0));
            AnsiConsole.Write(stall);

            // what moco replay --verify needs from every run: a state digest per chunk (rank 0) and every step's loss in
            // the journal. The digest's cost per step is its time over the steps of a chunk; the journal's growth is read
            // from the journal of (b), all of its events together, per step of that run.
            var chunk = new TrainingSettings(config, "x", root, data, 1).ChunkSteps;
            double digest = Median(digestSeconds);
            var (journalBytes, journalEvents) = JournalBytes(Path.Combine(root, "journal.db"), "run-one-0");
            long journalSteps = total;
            var history = new Table().Title("per-step record for moco replay --verify").Border(TableBorder.Markdown);
            history.AddColumn("quantity");
            history.AddColumn(new TableColumn("value").RightAligned());
            history.AddRow("state digest of the whole state (StateDigest.Compute), median of " + digestSeconds.Count.ToString(CultureInfo.InvariantCulture) + " (ms)", Format(digest * 1000, 1));
            history.AddRow("median step of (a) (ms)", Format(bare!.MedianStep * 1000, 0));
            history.AddRow($"digest per step at one digest per chunk of {chunk} steps / step", Format(digest / chunk / bare.MedianStep * 100, 3) + " %");
            history.AddRow("a digest every step would cost / step", Format(digest / bare.MedianStep * 100, 2) + " %");
            history.AddRow($"journal of (b): events, bytes for {journalSteps} steps", $"{journalEvents.ToString(CultureInfo.InvariantCulture)}, {journalBytes.ToString(CultureInfo.InvariantCulture)}");
            history.AddRow($"journal growth per 10k steps at this chunk ({chunk} steps, 1 epoch of {journalSteps} steps) (KiB)", Format(journalBytes * 10_000.0 / journalSteps / 1024, 0));
            AnsiConsole.Write(history);
            return 0;
        }
        finally
        {
            system.Terminate().Wait(TimeSpan.FromSeconds(30));
            try
            {
                Directory.Delete(root, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    private static Measurement BareLoop(RunConfig config, DatasetSplits data, int warmup, int threads, ICollective? collective = null, List<double>? digestSeconds = null)
    {
        using var trainer = new Pretrainer(config, "bench-bare", data, collective ?? SingleProcessCollective.Instance, new BatchLayout(config.BatchSize, config.BnSplits, 1), Math.Max(1, threads / 2));
        var times = new List<long>();
        while (!trainer.Finished)
        {
            trainer.TrainStep();
            times.Add(Stopwatch.GetTimestamp());
        }

        for (int i = 0; digestSeconds is not null && i < 10; i++)
        {
            long before = Stopwatch.GetTimestamp();
            StateDigest.Compute(trainer.StateTensors());
            digestSeconds.Add(Stopwatch.GetElapsedTime(before).TotalSeconds);
        }

        return Measurement.FromStepTimes(times, warmup, config.BatchSize);
    }

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count == 0 ? double.NaN : sorted[sorted.Count / 2];
    }

    /// <summary>The bytes of every journaled event of a persistence id (payload, manifest, id and about 40 bytes of fixed columns), and how many.</summary>
    private static (long Bytes, long Events) JournalBytes(string database, string persistenceId)
    {
        using var connection = new Microsoft.Data.Sqlite.SqliteConnection(MoCo.Actors.Persistence.RunJournal.SqliteConnectionString(database));
        connection.Open();
        using var sum = connection.CreateCommand();
        sum.CommandText = "SELECT COALESCE(SUM(LENGTH(message) + COALESCE(LENGTH(manifest), 0) + LENGTH(persistence_id) + 40), 0), COUNT(*) FROM journal WHERE persistence_id = $id";
        sum.Parameters.AddWithValue("$id", persistenceId);
        using var reader = sum.ExecuteReader();
        reader.Read();
        return (reader.GetInt64(0), reader.GetInt64(1));
    }

    private static Measurement Director(ActorSystem system, RunConfig config, DatasetSplits data, string root, string runId, int devices, int threads, int warmup)
    {
        var settings = new TrainingSettings(config, runId, Path.Combine(root, runId), data, devices)
        {
            Threads = threads,
            LoaderThreads = Math.Max(1, threads / 2 / devices),
            ChunkSteps = 50,
        };
        var done = new TaskCompletionSource<List<(long At, object Message)>>(TaskCreationOptions.RunContinuationsAsynchronously);
        var recorder = system.ActorOf(Props.Create(() => new Recorder(done)), "recorder-" + runId);
        system.ActorOf(TrainingDirectorActor.Props(settings, recorder), "director-" + runId);
        var messages = done.Task.GetAwaiter().GetResult();
        if (messages[^1].Message is not TrainingDirector.RunCompleted)
        {
            throw new InvalidOperationException($"run {runId} did not complete: {messages[^1].Message}");
        }

        var steps = messages.Where(m => m.Message is Worker.StepCompleted).Select(m => m.At).ToList();
        var measurement = Measurement.FromStepTimes(steps, warmup, config.BatchSize);
        var writes = messages.Where(m => m.Message is Checkpointer.Written).ToList();
        var takes = messages.Where(m => m.Message is Worker.CheckpointTaken).ToList();
        if (writes.Count == 0)
        {
            return measurement;
        }

        // a step "during a write" ends inside [written - seconds, written]; the step after a take carried the copy
        var intervals = Enumerable.Range(warmup + 1, steps.Count - warmup - 1).Select(i => (End: steps[i], Seconds: Seconds(steps[i] - steps[i - 1]))).ToList();
        bool InWrite(long end) => writes.Any(w => end > w.At - (long)(((Checkpointer.Written)w.Message).Seconds * Stopwatch.Frequency) && end <= w.At);
        bool AfterTake(long end, long start) => takes.Any(t => t.At > start && t.At <= end);
        var during = intervals.Where(i => InWrite(i.End)).Select(i => i.Seconds).ToList();
        var withTake = intervals.Where(i => AfterTake(i.End, i.End - (long)(i.Seconds * Stopwatch.Frequency))).Select(i => i.Seconds).ToList();
        var quiet = intervals.Where(i => !InWrite(i.End) && !AfterTake(i.End, i.End - (long)(i.Seconds * Stopwatch.Frequency))).Select(i => i.Seconds).Order().ToList();
        return measurement with
        {
            Writes = writes.Count,
            CheckpointMiB = ((Checkpointer.Written)writes[0].Message).Bytes / (1024.0 * 1024.0),
            TakeSeconds = takes.Average(t => ((Worker.CheckpointTaken)t.Message).Seconds),
            WriteSeconds = writes.Average(w => ((Checkpointer.Written)w.Message).Seconds),
            MedianQuietStep = quiet.Count == 0 ? double.NaN : quiet[quiet.Count / 2],
            MeanStepDuringWrite = during.Count == 0 ? double.NaN : during.Average(),
            MeanTakeStep = withTake.Count == 0 ? double.NaN : withTake.Average(),
        };
    }

    /// <summary>Runs <paramref name="measure"/> on a thread of its own with <paramref name="threads"/> torch threads, as a worker actor's pinned thread does.</summary>
    private static Measurement OnNewThread(int threads, Func<Measurement> measure)
    {
        Measurement? result = null;
        var thread = new Thread(() =>
        {
            torch.set_num_threads(threads);
            result = measure();
        });
        thread.Start();
        thread.Join();
        return result ?? throw new InvalidOperationException("the measuring thread produced no result");
    }

    private static Measurement Report(string what, Measurement m)
    {
        AnsiConsole.MarkupLine(Markup.Escape($"{what}: {Format(m.ImagesPerSecond, 1)} img/s, median step {Format(m.MedianStep * 1000, 0)} ms"));
        return m;
    }

    private static double Seconds(long ticks) => (double)ticks / Stopwatch.Frequency;

    private static string Format(double value, int decimals) =>
        double.IsFinite(value) ? value.ToString("F" + decimals.ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture) : "n/a";

    /// <summary>Throughput after the warm-up, from the times at which steps ended.</summary>
    private sealed record Measurement(double ImagesPerSecond, double MedianStep)
    {
        public int Writes { get; init; }

        public double CheckpointMiB { get; init; }

        public double TakeSeconds { get; init; }

        public double WriteSeconds { get; init; }

        public double MedianQuietStep { get; init; }

        public double MeanStepDuringWrite { get; init; }

        public double MeanTakeStep { get; init; }

        public static Measurement FromStepTimes(IReadOnlyList<long> ends, int warmup, int batch)
        {
            if (ends.Count <= warmup + 1)
            {
                throw new InvalidOperationException($"only {ends.Count} steps for a warm-up of {warmup}");
            }

            double seconds = Seconds(ends[^1] - ends[warmup - 1]);
            int timed = ends.Count - warmup;
            var intervals = Enumerable.Range(warmup, timed).Select(i => Seconds(ends[i] - ends[i - 1])).Order().ToList();
            return new Measurement(timed * batch / seconds, intervals[intervals.Count / 2]);
        }
    }

    /// <summary>Records every message from the director with its arrival time; completes on the final one.</summary>
    private sealed class Recorder : ReceiveActor
    {
        private readonly List<(long, object)> _messages = [];

        public Recorder(TaskCompletionSource<List<(long At, object Message)>> done)
        {
            ReceiveAny(message =>
            {
                _messages.Add((Stopwatch.GetTimestamp(), message));
                if (message is TrainingDirector.RunCompleted or TrainingDirector.RunFailed or TrainingDirector.Interrupted)
                {
                    done.TrySetResult(_messages);
                }
            });
        }
    }
}
