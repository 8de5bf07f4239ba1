using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using MoCo.Actors.Collectives;
using MoCo.Model;
using MoCo.Model.Collectives;
using MoCo.Model.Nn;
using MoCo.Model.Training;
using Spectre.Console;
using TorchSharp;
using static TorchSharp.torch;

namespace MoCo.Bench;

/// <summary>
/// <c>moco-bench buckets</c>: the MoCo step of two workers (two threads of this process, each with its own replica and
/// a share of the torch threads) with (a) one flat all-reduce after backward, (b) gradient buckets all-reduced after
/// backward, (c) the same buckets all-reduced on a communication thread while backward runs; over the in-process group
/// and over a TCP ring on 127.0.0.1. Rounds interleave the configurations and each keeps its best median; ratios are to
/// (a) on the same transport, measured in the same run.
/// </summary>
internal static class BucketsCommand
{
    public static int Run(BenchArgs args)
    {
        int batch = args.Int("batch", 64, CifarSmall.BnSplits);
        int width = args.Int("width", 64, 1);
        int steps = args.Int("steps", 8, 2);
        int warmup = args.Int("warmup", 2, 1);
        int rounds = args.Int("rounds", 2, 1);
        int threads = args.Int("threads", Environment.ProcessorCount, 1);
        var bucketing = GradientBucketing.Parse(args.String("bucket-mib", "25"));
        var transports = args.String("transport", "inproc,ring").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        args.EnsureAllRead();
        if (!bucketing.Enabled)
        {
            throw new ArgumentException("--bucket-mib must be positive: the benchmark compares buckets with the flat all-reduce");
        }
        if (transports.Any(t => t is not ("inproc" or "ring")))
        {
            throw new ArgumentException($"--transport takes inproc and/or ring, not '{string.Join(",", transports)}'");
        }

        const int world = 2;
        var config = CifarSmall.Config(1, batch, "synthetic") with { Width = width };
        int perWorker = Math.Max(1, threads / world);
        using (var probe = new Replica(config, GradientBucketing.Off, new BatchLayout(batch, config.BnSplits, world), 0))
        {
            var plan = probe.Plan(bucketing);
            long gradBytes = probe.GradientBytes;
            AnsiConsole.MarkupLine(Markup.Escape(
                $"{config.Arch} width {width} ({gradBytes / 1048576.0:F1} MiB of gradients), global batch {batch} over {world} workers ({perWorker} torch thread(s) each, " +
                $"{Environment.ProcessorCount} cores), {warmup} warm-up + {steps} timed steps, {rounds} round(s); {bucketing.BucketMib:G} MiB buckets: " +
                $"{plan.Buckets.Count} during backward ({string.Join(", ", plan.BucketBytes.Select(b => (b / 1048576.0).ToString("F1", CultureInfo.InvariantCulture)))} MiB) + final {plan.Final.Length} tensors"));
        }

        // (a)-(c): gradients of their own, concatenated and copied back around each all-reduce; (d), (e): the product's
        // layout (Pretrainer), gradients as views of one buffer: (d) all-reduces the buffer where it lies, (e) each
        // bucket's span of it
        var configs = new (string Letter, string What, GradientBucketing Bucketing, bool Flat)[]
        {
            ("(a)", "flat, after backward", GradientBucketing.Off, false),
            ("(b)", "buckets, after backward", bucketing with { Overlap = false }, false),
            ("(c)", "buckets, overlapped", bucketing with { Overlap = true }, false),
            ("(d)", "flat buffer in place, after backward", GradientBucketing.Off, true),
            ("(e)", "bucket spans of the flat buffer, overlapped", bucketing with { Overlap = true }, true),
        };
        var best = new Dictionary<(string, string), Result>();
        for (int round = 0; round < rounds; round++)
        {
            foreach (var transport in transports)
            {
                foreach (var (letter, what, b, flatBuffers) in configs)
                {
                    var result = Measure(config, b, flatBuffers, transport, world, perWorker, warmup, steps);
                    AnsiConsole.MarkupLine(Markup.Escape($"round {round} {transport,-6} {letter} {what}: median {result.MedianStep * 1000:F0} ms, CPU {result.CpuPerStep * 1000:F0} ms/step, all-reduce wait {result.MedianWait * 1000:F0} ms, {result.DuringBackward} bucket(s) during backward"));
                    var key = (transport, letter);
                    if (!best.TryGetValue(key, out var previous) || result.MedianStep < previous.MedianStep)
                    {
                        best[key] = result;
                    }
                }
            }
        }

        var table = new Table().Title("moco-bench buckets (2 workers)").Border(TableBorder.Markdown);
        table.AddColumn("transport");
        table.AddColumn("");
        table.AddColumn("all-reduce");
        table.AddColumn(new TableColumn("median step (ms)").RightAligned());
        table.AddColumn(new TableColumn("wait after backward (ms)").RightAligned());
        table.AddColumn(new TableColumn("buckets in backward").RightAligned());
        table.AddColumn(new TableColumn("step vs (a)").RightAligned());
        table.AddColumn(new TableColumn("CPU (ms/step)").RightAligned());
        table.AddColumn(new TableColumn("CPU vs (a)").RightAligned());
        foreach (var transport in transports)
        {
            var flat = best[(transport, "(a)")];
            foreach (var (letter, what, _, _) in configs)
            {
                var m = best[(transport, letter)];
                table.AddRow(transport, letter, Markup.Escape(what), F(m.MedianStep * 1000, 0), F(m.MedianWait * 1000, 0),
                    m.DuringBackward.ToString(CultureInfo.InvariantCulture), F(m.MedianStep / flat.MedianStep, 3) + "x",
                    F(m.CpuPerStep * 1000, 0), F(m.CpuPerStep / flat.CpuPerStep, 3) + "x");
            }
        }
        AnsiConsole.Write(table);
        return 0;
    }

    private static string F(double value, int decimals) => value.ToString("F" + decimals.ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);

    /// <summary>
    /// Median step and median wait after backward (rank 0), the process's CPU time per step (both workers and their
    /// communication threads; less disturbed by other jobs than wall time), and buckets sent during backward in the last step.
    /// </summary>
    private sealed record Result(double MedianStep, double MedianWait, double CpuPerStep, int DuringBackward);

    private static Result Measure(RunConfig config, GradientBucketing bucketing, bool flatBuffers, string transport, int world, int threadsPerWorker, int warmup, int steps)
    {
        var layout = new BatchLayout(config.BatchSize, config.BnSplits, world);
        var owned = new List<IDisposable>();
        var replicas = Enumerable.Range(0, world).Select(r => new Replica(config, bucketing, layout, r, flatBuffers)).ToList();
        try
        {
            var members = transport == "ring" ? Ring(world, owned) : InProcess(world, owned);
            var seconds = new double[steps];
            var waits = new double[steps];
            TimeSpan cpuStart = default, cpuEnd = default;
            var errors = new Exception?[world];
            var threads = Enumerable.Range(0, world).Select(r => new Thread(() =>
            {
                try
                {
                    torch.set_num_threads(threadsPerWorker);
                    for (int s = 0; s < warmup + steps; s++)
                    {
                        if (r == 0 && s == warmup)
                        {
                            cpuStart = Process.GetCurrentProcess().TotalProcessorTime;
                        }
                        long t0 = Stopwatch.GetTimestamp();
                        replicas[r].Step(members[r], s);
                        if (r == 0 && s >= warmup)
                        {
                            seconds[s - warmup] = Stopwatch.GetElapsedTime(t0).TotalSeconds;
                            waits[s - warmup] = replicas[r].LastWaitSeconds;
                        }
                    }
                    if (r == 0)
                    {
                        cpuEnd = Process.GetCurrentProcess().TotalProcessorTime;
                    }
                }
                catch (Exception e)
                {
                    errors[r] = e;
                    (owned.OfType<InProcessGroup>().FirstOrDefault())?.Abort();
                    foreach (var m in members.OfType<TcpRingCollective>())
                    {
                        m.Abort();
                    }
                }
            })).ToList();
            threads.ForEach(t => t.Start());
            threads.ForEach(t => t.Join());
            if (errors.FirstOrDefault(e => e is not null) is { } error)
            {
                throw new InvalidOperationException($"a worker failed: {error.Message}", error);
            }
            return new Result(StepClock.Median(seconds), StepClock.Median(waits), (cpuEnd - cpuStart).TotalSeconds / steps, replicas[0].DuringBackward);
        }
        finally
        {
            replicas.ForEach(r => r.Dispose());
            owned.ForEach(o => o.Dispose());
        }
    }

    private static ICollective[] InProcess(int world, List<IDisposable> owned)
    {
        var group = new InProcessGroup(world, TimeSpan.FromMinutes(5));
        owned.Add(group);
        return Enumerable.Range(0, world).Select(r => group[r]).ToArray();
    }

    /// <summary>A TCP ring on 127.0.0.1 between this process's threads, default segment size.</summary>
    private static ICollective[] Ring(int world, List<IDisposable> owned)
    {
        var secret = RandomNumberGenerator.GetBytes(32);
        var listeners = Enumerable.Range(0, world).Select(_ => TcpRingListener.Bind(new IPEndPoint(IPAddress.Loopback, 0))).ToArray();
        var endpoints = listeners.Select(l => (EndPoint)l.EndPoint).ToArray();
        var rings = new TcpRingCollective?[world];
        var errors = new Exception?[world];
        var threads = Enumerable.Range(0, world).Select(r => new Thread(() =>
        {
            try
            {
                rings[r] = TcpRingCollective.Connect(listeners[r], new TcpRingOptions(r, endpoints, "bench-buckets", 1, secret));
            }
            catch (Exception e)
            {
                errors[r] = e;
            }
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
        owned.AddRange(rings.Where(x => x is not null).Select(x => (IDisposable)x!));
        if (errors.FirstOrDefault(e => e is not null) is { } error)
        {
            throw new InvalidOperationException($"the ring did not form: {error.Message}", error);
        }
        return rings.Select(x => (ICollective)x!).ToArray();
    }

    /// <summary>One worker's replica and fixed views of its share (no data loading).</summary>
    private sealed class Replica : IDisposable
    {
        private readonly RunConfig _config;
        private readonly BatchLayout _layout;
        private readonly MomentumContrast _model;
        private readonly Sgd _optimizer;
        private readonly MocoTrainStep _step;
        private readonly Tensor _view1;
        private readonly Tensor _view2;

        public Replica(RunConfig config, GradientBucketing bucketing, BatchLayout layout, int rank, bool flatBuffers = false)
        {
            _config = config;
            _layout = layout;
            var spec = config.Encoder;
            _model = new MomentumContrast(() => new ResNet(spec), config.Moco, config.Seed);
            _optimizer = new Sgd(_model.EncoderQ.named_parameters().Select(p => ("encoder_q." + p.name, p.parameter)), config.SgdMomentum, config.Wd);
            if (flatBuffers)
            {
                _model.UseFlatParameters();
                _optimizer.UseFlat(_model.FlatQ!);
            }
            _step = new MocoTrainStep(_model, _optimizer, config.Seed, bucketing);
            var g = new Generator((ulong)(1000 + rank));
            int n = layout.Positions(rank).Count;
            _view1 = randn(n, 3, config.ImageSize, config.ImageSize, generator: g);
            _view2 = randn(n, 3, config.ImageSize, config.ImageSize, generator: g);
        }

        public long GradientBytes => _optimizer.Parameters.Sum(p => p.Param.numel() * p.Param.ElementSize);

        /// <summary>Seconds from the end of backward to the end of the gradient all-reduce, in the last step.</summary>
        public double LastWaitSeconds => _step.LastReduceWaitSeconds;

        public int DuringBackward => _step.LastBucketsDuringBackward;

        public GradientBucketPlan Plan(GradientBucketing bucketing)
        {
            _step.Bucketing = bucketing;
            return _step.BucketPlan();
        }

        public void Step(ICollective collective, int index) =>
            _step.Run(_view1, _view2, collective, _layout, 0, index, index, _config.Lr);

        public void Dispose()
        {
            _view2.Dispose();
            _view1.Dispose();
            _optimizer.Dispose();
            _model.Dispose();
        }
    }
}
