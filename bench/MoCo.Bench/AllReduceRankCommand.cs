using System.Diagnostics;
using System.Globalization;
using System.Net;
using MoCo.Actors.Collectives;
using TorchSharp;
using static TorchSharp.torch;

namespace MoCo.Bench;

/// <summary>
/// <c>moco-bench allreduce-rank --rank r --world w ...</c> (started by <c>allreduce</c>, not by hand): one rank of
/// a TCP ring. For each protection, then each chunk size, it binds a listener on 127.0.0.1:0, prints <c>listening HOST:PORT</c>, reads
/// <c>ring SECRET-HEX EP0 EP1 ...</c> from standard input (the parent's rendezvous), joins the ring and, for each
/// size, checks one sum, runs the warm-up calls, a barrier and the timed calls. Rank 0 prints one
/// <see cref="AllReduceMeasurement"/> JSON line per size; every rank prints <c>done</c> at the end.
/// </summary>
internal static class AllReduceRankCommand
{
    /// <summary>Runs the rank; returns the process exit code (1, with the message on standard error, when the ring failed).</summary>
    public static int Run(BenchArgs args)
    {
        try
        {
            return RunRank(args);
        }
        catch (Model.Collectives.CollectiveException e)
        {
            Console.Error.WriteLine($"ring failed: {e.Message}");
            return 1;
        }
    }

    private static int RunRank(BenchArgs args)
    {
        int rank = args.Int("rank", -1, 0);
        int world = args.Int("world", 0, 2);
        var options = AllReduceOptions.From(args);
        if (rank < 0 || rank >= world)
        {
            throw new ArgumentException($"--rank {rank} is not a rank of a world of {world}");
        }
        torch.set_num_threads(1);
        var rings = options.Protections.SelectMany(p => options.ChunkBytes.Select(c => (Protection: p, Chunk: c))).ToList();
        for (int i = 0; i < rings.Count; i++)
        {
            using var ring = Join(rank, world, generation: i + 1, rings[i].Chunk, rings[i].Protection, TimeSpan.FromSeconds(options.TimeoutSeconds));
            if (i == 0 || rings[i].Protection != rings[i - 1].Protection)
            {
                WarmUpProcess(ring); // each protection's hot loop (sealing and opening included) is optimised before it is timed
            }
            foreach (long bytes in options.SizesBytes)
            {
                var measurement = Measure(ring, bytes, options.Warmup, AllReduceOptions.Iterations(bytes));
                if (rank == 0)
                {
                    Console.Out.WriteLine(measurement.ToJson());
                    Console.Out.Flush();
                }
            }
        }
        Console.Out.WriteLine("done");
        Console.Out.Flush();
        return 0;
    }

    private static TcpRingCollective Join(int rank, int world, int generation, int chunkBytes, DataPlaneProtection protection, TimeSpan timeout)
    {
        var listener = TcpRingListener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        Console.Out.WriteLine($"listening {listener.EndPoint}");
        Console.Out.Flush();
        var words = (Console.In.ReadLine() ?? throw new InvalidOperationException("the parent closed standard input before the rendezvous"))
            .Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (words.Length != world + 2 || words[0] != "ring")
        {
            throw new InvalidOperationException($"expected 'ring SECRET EP0 .. EP{world - 1}' from the parent, got {words.Length} words");
        }
        var endpoints = words.Skip(2).Select(TcpRingOptions.ParseEndpoint).ToArray();
        var options = new TcpRingOptions(rank, endpoints, "moco-bench", generation, Convert.FromHexString(words[1]))
        {
            ChunkBytes = chunkBytes,
            Protection = protection,
            ConnectTimeout = TimeSpan.FromSeconds(60),
            OperationTimeout = timeout,
        };
        return TcpRingCollective.Connect(listener, options);
    }

    /// <summary>
    /// Runs the ring's code paths until .NET's tiered compilation has replaced the first, unoptimised code of the hot
    /// loop (the segment loop, the vectorised add) with optimised code: a few hundred calls, well under a second.
    /// Without it the first sizes measured would time the JIT, not the ring.
    /// </summary>
    private static void WarmUpProcess(TcpRingCollective ring)
    {
        using var scope = NewDisposeScope();
        var small = zeros(64 * 1024);
        var large = zeros(2 * 1024 * 1024);
        for (int i = 0; i < 300; i++)
        {
            ring.AllReduceSum(small);
        }
        for (int i = 0; i < 10; i++)
        {
            ring.AllReduceSum(large);
        }
    }

    private static AllReduceMeasurement Measure(TcpRingCollective ring, long bytes, int warmup, int iterations)
    {
        using var scope = NewDisposeScope();
        long elements = bytes / sizeof(float);
        var check = full(elements, (float)(ring.Rank + 1));
        ring.AllReduceSum(check);
        float expected = ring.WorldSize * (ring.WorldSize + 1) / 2f;
        if (!check.eq(expected).all().item<bool>())
        {
            throw new InvalidOperationException($"the ring's all-reduce of {bytes} bytes gave a wrong sum");
        }
        var data = zeros(elements);
        for (int i = 0; i < warmup; i++)
        {
            ring.AllReduceSum(data);
        }
        ring.AllReduceSum(zeros(1)); // barrier: nobody starts the clock before everyone has warmed up
        using var self = Process.GetCurrentProcess();
        var cpu0 = self.TotalProcessorTime;
        long start = Stopwatch.GetTimestamp();
        for (int i = 0; i < iterations; i++)
        {
            ring.AllReduceSum(data);
        }
        double mean = Stopwatch.GetElapsedTime(start).TotalSeconds / iterations;
        self.Refresh();
        double cpu = (self.TotalProcessorTime - cpu0).TotalSeconds / iterations;
        // every rank's mean time and CPU time, shared with one more all-reduce: [time_0 .. time_W-1, cpu_0 .. cpu_W-1]
        var shared = zeros(2 * ring.WorldSize, dtype: ScalarType.Float64);
        shared[ring.Rank].fill_(mean);
        shared[ring.WorldSize + ring.Rank].fill_(cpu);
        ring.AllReduceSum(shared);
        double slowest = shared.narrow(0, 0, ring.WorldSize).max().item<double>();
        double cpuSum = shared.narrow(0, ring.WorldSize, ring.WorldSize).sum().item<double>();
        return new AllReduceMeasurement(ring.WorldSize, bytes, iterations, slowest, cpuSum, ring.Options.ChunkBytes, ring.Options.Protection.Name());
    }
}
