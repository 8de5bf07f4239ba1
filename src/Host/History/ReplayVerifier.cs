using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using MoCo.Actors.Collectives;
using MoCo.Actors.Run;
using MoCo.Model.Checkpoints;
using MoCo.Model.Collectives;
using MoCo.Model.Data;
using MoCo.Model.Training;
using TorchSharp;

namespace MoCo.Host.History;

/// <summary>How a replayed step or span compares with the journal.</summary>
public enum ReplayVerdict
{
    /// <summary>Every loss bit for bit equal and every state digest equal.</summary>
    Identical,

    /// <summary>Not bit-identical, but every loss within the relative tolerance.</summary>
    WithinTolerance,

    /// <summary>A loss beyond the tolerance, or a restored checkpoint that is not the state the journal recorded.</summary>
    Diverged,
}

/// <summary>What to replay and how.</summary>
/// <param name="From">Replay from the newest valid checkpoint at or before this step (null or 0: from the start).</param>
/// <param name="To">Stop after the steps before this one (null: the last recorded step).</param>
/// <param name="Tolerance">The largest relative loss difference still called within tolerance.</param>
/// <param name="Data">The data set, when it is not where the run read it (the configuration's data spec otherwise).</param>
/// <param name="Threads">Torch threads (null: the recorded threads of the first replayed step).</param>
/// <param name="WorldSize">Replicas replayed in this process (null: the recorded world size of the first replayed step).</param>
/// <param name="DataPlane">How the replicas sum: in-process or tcp-ring over loopback (null: as recorded; NCCL is replayed in-process).</param>
public sealed record ReplayOptions(long? From = null, long? To = null, double Tolerance = ReplayOptions.DefaultTolerance, string? Data = null,
    int? Threads = null, int? WorldSize = null, string? DataPlane = null)
{
    /// <summary>
    /// The default relative loss tolerance. On the same kernels, threads and summation order a replay is bit-identical,
    /// so any difference is news. Another kernel set or summation order changes a float32 loss in its 6th or 7th digit
    /// at first, and two such runs then drift apart step by step (measured on the quickstart, AVX2 kernels against
    /// AVX-512 ones: 5.7e-4 relative after 6 steps, 1e-3 to 7e-3 over the next 30), so they stay within this tolerance
    /// for their first steps only; a longer span replayed on another machine is reported as diverged, with the step and
    /// both losses, and that is the honest answer: it is no longer the same trajectory.
    /// </summary>
    public const double DefaultTolerance = 1e-3;
}

/// <summary>One row of the report: a span of steps with one verdict.</summary>
/// <param name="FirstStep">The first global step of the span.</param>
/// <param name="EndStep">The step after its last one.</param>
/// <param name="Verdict">The verdict of every step in it.</param>
/// <param name="Detail">The evidence: the largest loss difference, the digests compared, the first tensor that differs.</param>
public sealed record ReplaySpan(long FirstStep, long EndStep, ReplayVerdict Verdict, string Detail);

/// <summary>The result of <c>moco replay --verify</c>.</summary>
/// <param name="RunId">The run.</param>
/// <param name="StartedFrom">Where the replay started: a checkpoint's file name, or the seeded initialisation.</param>
/// <param name="FirstStep">The first replayed step.</param>
/// <param name="EndStep">The step after the last replayed one.</param>
/// <param name="WorldSize">Replicas replayed.</param>
/// <param name="Threads">Torch threads.</param>
/// <param name="DataPlane">How the replicas summed (in-process or tcp-ring).</param>
/// <param name="Spans">The rows, in step order.</param>
/// <param name="Notes">What the reader should know (skipped checkpoints, a recorded world size that differs, ...).</param>
public sealed record ReplayReport(string RunId, string StartedFrom, long FirstStep, long EndStep, int WorldSize, int Threads, string DataPlane,
    IReadOnlyList<ReplaySpan> Spans, IReadOnlyList<string> Notes)
{
    /// <summary>The worst verdict of all spans.</summary>
    public ReplayVerdict Verdict => Spans.Count == 0 ? ReplayVerdict.Identical : Spans.Max(s => s.Verdict);

    /// <summary>The process exit code: 0 identical, 10 within tolerance, 11 diverged.</summary>
    public int ExitCode => Verdict switch
    {
        ReplayVerdict.Identical => 0,
        ReplayVerdict.WithinTolerance => 10,
        _ => 11,
    };
}

/// <summary>
/// Re-executes a span of a recorded run and compares it, step by step, with its journal: restores the newest valid
/// checkpoint at or before the span's start (or the seeded initialisation), checks that the restored state is the one
/// the journal recorded there, re-runs the steps with the recorded world size (replicas in this process, an
/// in-process group in place of the data plane) and threads, and compares every loss (bit for bit, then within a
/// relative tolerance) and every chunk's state digest. It stops at the first diverged step once the next digest has
/// named the first tensor that differs.
/// </summary>
public static class ReplayVerifier
{
    /// <summary>Replays and compares.</summary>
    /// <param name="recorded">The journal's record of the run.</param>
    /// <param name="runDir">The run directory (its <c>checkpoints/</c>).</param>
    /// <param name="options">What to replay.</param>
    /// <param name="progress">Called with a line now and then (the step reached).</param>
    /// <exception cref="HistoryError">The span is empty or outside the record, or the data set cannot be opened.</exception>
    public static ReplayReport Verify(RecordedSteps recorded, string runDir, ReplayOptions options, Action<string>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(recorded);
        ArgumentNullException.ThrowIfNull(options);
        var config = RunConfig.FromJson(recorded.ConfigJson);
        if (options.Data is not null)
        {
            config = config with { Data = options.Data };
        }

        long from = Math.Max(0, options.From ?? 0);
        long to = options.To ?? recorded.EndStep;
        if (to > recorded.EndStep || from >= to)
        {
            throw new HistoryError($"cannot replay steps {from} to {to}: the journal records steps 0 to {recorded.EndStep - 1} of run {recorded.RunId}" +
                (options.From is null && options.To is null ? string.Empty : " (--from is the first step, --to the step after the last)"));
        }

        var notes = new List<string>();
        var (checkpoint, startedFrom) = FindStart(runDir, recorded.RunId, from, notes);
        long start = checkpoint?.Header.Step ?? 0;
        int threads = options.Threads ?? (recorded.RecordOf(start) ?? recorded.RecordOf(recorded.Losses.Keys.First(s => s >= start)))?.Threads ?? 1;
        torch.set_num_threads(threads);
        DatasetSplits data;
        try
        {
            data = DataSource.Open(config.Data, DataSourceOptions.For(config));
        }
        catch (Exception e) when (e is IOException or ArgumentException or UnauthorizedAccessException or InvalidDataException)
        {
            checkpoint?.Dispose();
            throw new HistoryError($"cannot open the run's data '{config.Data}' ({e.Message}); give its location with --data");
        }

        using var replicas = new ReplicaSet(config, recorded.RunId, data, threads);
        try
        {
            var (world, plane) = LayoutAt(recorded, start, options, notes);
            replicas.Form(world, plane, checkpoint);
        }
        finally
        {
            checkpoint?.Dispose();
        }

        var spans = new SpanBuilder();
        if (!CheckDigest(recorded, replicas.Rank0, start, spans, atStart: true, startedFrom))
        {
            return new ReplayReport(recorded.RunId, startedFrom, start, start, replicas.World, threads, replicas.Plane, spans.Build(), notes);
        }

        long diverged = -1;
        long step = start;
        while (step < to)
        {
            // a new generation with another world size (a node left or joined): regroup as the run did, from rank 0's state
            var (world, plane) = LayoutAt(recorded, step, options, notes);
            if (world != replicas.World || plane != replicas.Plane)
            {
                notes.Add($"regrouped at step {step}: {replicas.World} -> {world} replica(s) ({plane}), as the run's generations did");
                replicas.Regroup(world, plane, Path.Combine(Path.GetTempPath(), $"moco-replay-{Guid.NewGuid():N}{CheckpointDirectory.Extension}"));
            }

            double loss = replicas.Step();
            if (recorded.Losses.TryGetValue(step, out double expected))
            {
                var verdict = Compare(loss, expected, options.Tolerance, out double relative);
                spans.AddStep(step, verdict, relative, expected, loss);
                if (verdict == ReplayVerdict.Diverged && diverged < 0)
                {
                    diverged = step;
                }
            }
            else
            {
                notes.Add($"step {step} has no recorded loss (the journal holds none for it)");
            }

            step++;
            bool digestChecked = recorded.DigestsAt.ContainsKey(step);
            if (digestChecked)
            {
                CheckDigest(recorded, replicas.Rank0, step, spans, atStart: false, startedFrom);
            }

            if (diverged >= 0 && (digestChecked || step >= to || step - diverged > 1000))
            {
                if (step < to)
                {
                    notes.Add($"stopped after step {step - 1}: the run diverged at step {diverged}");
                }

                break;
            }

            if (step % 50 == 0)
            {
                progress?.Invoke($"replayed up to step {step} of {to}");
            }
        }

        return new ReplayReport(recorded.RunId, startedFrom, start, step, replicas.World, threads, replicas.Plane, spans.Build(), notes);
    }

    /// <summary>The world size and data plane that computed <paramref name="step"/> (or the options' choice).</summary>
    private static (int World, string Plane) LayoutAt(RecordedSteps recorded, long step, ReplayOptions options, List<string> notes)
    {
        var record = recorded.RecordOf(step);
        int world = options.WorldSize ?? record?.WorldSize ?? 1;
        string plane = options.DataPlane ?? record?.DataPlane ?? StepsRecordedPlanes.InProcess;
        if (plane is not (StepsRecordedPlanes.InProcess or StepsRecordedPlanes.TcpRing))
        {
            string note = $"steps summed by {plane} are replayed {StepsRecordedPlanes.InProcess} (another summation order: within tolerance at best)";
            if (!notes.Contains(note))
            {
                notes.Add(note);
            }

            plane = StepsRecordedPlanes.InProcess;
        }

        return (world, world == 1 ? StepsRecordedPlanes.InProcess : plane);
    }

    /// <summary>The relative difference of a replayed loss from the recorded one, and its verdict.</summary>
    public static ReplayVerdict Compare(double replayed, double recorded, double tolerance, out double relative)
    {
        if (BitConverter.DoubleToInt64Bits(replayed) == BitConverter.DoubleToInt64Bits(recorded))
        {
            relative = 0;
            return ReplayVerdict.Identical;
        }

        relative = Math.Abs(replayed - recorded) / Math.Max(Math.Abs(recorded), 1e-12);
        return relative <= tolerance ? ReplayVerdict.WithinTolerance : ReplayVerdict.Diverged; // NaN is never within
    }

    /// <summary>A TCP ring of <paramref name="world"/> ranks on 127.0.0.1 with a throw-away secret: the multi-process data plane's summation order.</summary>
    private static TcpRingCollective[] LoopbackRing(int world, string runId)
    {
        var secret = RandomNumberGenerator.GetBytes(32);
        var listeners = Enumerable.Range(0, world).Select(_ => TcpRingListener.Bind(new IPEndPoint(IPAddress.Loopback, 0))).ToArray();
        var endpoints = listeners.Select(l => (EndPoint)l.EndPoint).ToList();
        var connecting = Enumerable.Range(0, world).Select(r => Task.Factory.StartNew(
            () => TcpRingCollective.Connect(listeners[r], new TcpRingOptions(r, endpoints, runId, 1, secret)
            {
                ConnectTimeout = TimeSpan.FromSeconds(30),
                OperationTimeout = TimeSpan.FromMinutes(10),
            }), TaskCreationOptions.LongRunning)).ToArray();
        try
        {
            Task.WaitAll(connecting);
        }
        catch (AggregateException e)
        {
            foreach (var task in connecting.Where(t => t.IsCompletedSuccessfully))
            {
                task.Result.Dispose();
            }

            throw new HistoryError($"the loopback ring for a {world}-rank replay did not form: {e.InnerException?.Message}");
        }

        return connecting.Select(t => t.Result).ToArray();
    }

    /// <summary>The newest checkpoint of the run at or before <paramref name="from"/> that verifies, or null (start from the seed).</summary>
    private static (Checkpoint? Checkpoint, string Name) FindStart(string runDir, string runId, long from, List<string> notes)
    {
        if (from > 0)
        {
            var files = new CheckpointDirectory(runDir).List();
            for (int i = files.Count - 1; i >= 0; i--)
            {
                if (!CheckpointDirectory.TryParseFileName(files[i], out _, out long step) || step > from)
                {
                    continue;
                }

                try
                {
                    var checkpoint = CheckpointFile.Read(files[i], runId);
                    return (checkpoint, Path.GetFileName(files[i]));
                }
                catch (Exception e) when (e is CheckpointRejectedException or IOException or UnauthorizedAccessException)
                {
                    notes.Add($"skipped {Path.GetFileName(files[i])}: {(e is CheckpointRejectedException r ? r.Reason : e.Message)}");
                }
            }

            notes.Add($"no valid checkpoint at or before step {from} in {Path.Combine(runDir, CheckpointDirectory.FolderName)}: replayed from the run's seeded start");
        }

        return (null, "the seeded initialisation (step 0)");
    }

    /// <summary>Compares rank 0's state with the digest recorded at <paramref name="step"/>, if any; false when it differs at the start.</summary>
    private static bool CheckDigest(RecordedSteps recorded, Pretrainer replica, long step, SpanBuilder spans, bool atStart, string startedFrom)
    {
        if (!recorded.DigestsAt.TryGetValue(step, out var record))
        {
            return true;
        }

        var state = replica.StateTensors();
        var digest = StateDigest.Compute(state);
        if (digest.Digest == record.Digest)
        {
            if (atStart)
            {
                spans.AddStart(step, ReplayVerdict.Identical, $"{startedFrom}: the restored state equals the journal's digest at step {step}");
            }
            else
            {
                spans.AddDigest(step, equal: true, null);
            }

            return true;
        }

        int index = digest.FirstDifference(record.Checksums!);
        string tensor = index >= 0 && index < state.Count ? state[index].Key : $"tensor #{index}";
        if (atStart)
        {
            spans.AddStart(step, ReplayVerdict.Diverged, $"{startedFrom} is not the state the journal recorded at step {step}: {tensor} differs " +
                "(the file was changed after the run wrote it, or belongs to another computation)");
            return false;
        }

        spans.AddDigest(step, equal: false, tensor);
        return true;
    }

    /// <summary>The replicas of the replay and their data plane; regroups to another world size through a checkpoint of rank 0.</summary>
    private sealed class ReplicaSet(RunConfig config, string runId, DatasetSplits data, int threads) : IDisposable
    {
        private readonly List<Pretrainer> _replicas = [];
        private InProcessGroup? _group;
        private TcpRingCollective[]? _ring;

        public int World => _replicas.Count;

        public string Plane { get; private set; } = StepsRecordedPlanes.InProcess;

        public Pretrainer Rank0 => _replicas[0];

        public void Form(int world, string plane, Checkpoint? checkpoint)
        {
            Plane = plane;
            _group = world > 1 && plane == StepsRecordedPlanes.InProcess ? new InProcessGroup(world, TimeSpan.FromMinutes(10)) : null;
            _ring = world > 1 && plane == StepsRecordedPlanes.TcpRing ? LoopbackRing(world, runId) : null;
            var layout = new BatchLayout(config.BatchSize, config.BnSplits, world);
            for (int rank = 0; rank < world; rank++)
            {
                ICollective collective = _group?[rank] ?? (ICollective?)_ring?[rank] ?? SingleProcessCollective.Instance;
                var replica = new Pretrainer(config, runId, data, collective, layout, Math.Max(1, threads / world));
                _replicas.Add(replica);
                if (checkpoint is not null)
                {
                    replica.LoadCheckpoint(checkpoint);
                }
                else
                {
                    replica.ApplyInit(); // a span from step 0 of a run started with --init
                }
            }
        }

        public void Regroup(int world, string plane, string scratch)
        {
            try
            {
                Rank0.SaveCheckpoint(scratch);
                Release();
                using var checkpoint = CheckpointFile.Read(scratch, runId);
                Form(world, plane, checkpoint);
            }
            finally
            {
                File.Delete(scratch);
            }
        }

        public double Step()
        {
            if (_replicas.Count == 1)
            {
                return _replicas[0].TrainStep().Loss;
            }

            var results = _replicas.Select(r => Task.Factory.StartNew(() => r.TrainStep(), TaskCreationOptions.LongRunning)).ToArray();
            Task.WaitAll(results);
            return results[0].Result.Loss;
        }

        public void Dispose() => Release();

        private void Release()
        {
            foreach (var replica in _replicas)
            {
                replica.Dispose();
            }

            _replicas.Clear();
            foreach (var member in _ring ?? [])
            {
                member.Dispose();
            }

            _ring = null;
            _group?.Dispose();
            _group = null;
        }
    }

    /// <summary>Gathers per-step verdicts into rows of consecutive steps with one verdict.</summary>
    private sealed class SpanBuilder
    {
        private readonly List<ReplaySpan> _spans = [];
        private long _first = -1;
        private long _end;
        private ReplayVerdict _verdict;
        private double _worst;
        private long _worstStep;
        private int _digestsEqual;
        private string? _digestDiffers;
        private string? _diverged;

        public void AddStart(long step, ReplayVerdict verdict, string detail) => _spans.Add(new ReplaySpan(step, step, verdict, detail));

        public void AddStep(long step, ReplayVerdict verdict, double relative, double recorded, double replayed)
        {
            if (_first >= 0 && verdict != _verdict)
            {
                Close();
            }

            if (_first < 0)
            {
                (_first, _verdict, _worst, _worstStep, _digestsEqual, _digestDiffers, _diverged) = (step, verdict, 0, step, 0, null, null);
            }

            _end = step + 1;
            if (relative > _worst || double.IsNaN(relative))
            {
                (_worst, _worstStep) = (relative, step);
            }

            if (verdict == ReplayVerdict.Diverged && _diverged is null)
            {
                _diverged = string.Create(CultureInfo.InvariantCulture, $"step {step}: recorded loss {recorded:R}, replayed {replayed:R}");
            }
        }

        public void AddDigest(long step, bool equal, string? tensor)
        {
            if (equal)
            {
                _digestsEqual++;
            }
            else
            {
                _digestDiffers ??= $"state differs at step {step} (first tensor: {tensor})";
                if (_first >= 0 && _verdict == ReplayVerdict.Identical)
                {
                    // bit-equal losses but another state: not identical
                    _verdict = ReplayVerdict.WithinTolerance;
                }
            }
        }

        public IReadOnlyList<ReplaySpan> Build()
        {
            Close();
            return _spans;
        }

        private void Close()
        {
            if (_first < 0)
            {
                return;
            }

            var c = CultureInfo.InvariantCulture;
            var parts = new List<string>();
            parts.Add(_verdict switch
            {
                ReplayVerdict.Identical => "every loss bit for bit equal",
                ReplayVerdict.WithinTolerance when _worst == 0 => "every loss bit for bit equal",
                _ => string.Create(c, $"largest relative loss difference {_worst:0.0e+0} (step {_worstStep})"),
            });
            if (_diverged is not null)
            {
                parts.Add(_diverged);
            }

            if (_digestsEqual > 0)
            {
                parts.Add(string.Create(c, $"state digest equal at {_digestsEqual} chunk end(s)"));
            }

            if (_digestDiffers is not null)
            {
                parts.Add(_digestDiffers);
            }

            _spans.Add(new ReplaySpan(_first, _end, _verdict, string.Join("; ", parts)));
            _first = -1;
        }
    }
}
