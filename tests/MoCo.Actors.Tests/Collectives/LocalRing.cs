using System.Net;
using MoCo.Actors.Collectives;

namespace MoCo.Actors.Tests.Collectives;

/// <summary>
/// Rings of W ranks inside the test process: each rank binds a listener on 127.0.0.1:0 and joins on a thread of its
/// own, as separate processes would. Timeouts are generous wherever a test does not measure them.
/// </summary>
internal static class LocalRing
{
    /// <summary>The cluster secret of the tests' rings (32 bytes).</summary>
    public static readonly byte[] Secret = Enumerable.Range(0, 32).Select(i => (byte)(i * 7 + 3)).ToArray();

    /// <summary>Options for rank <paramref name="rank"/> of a ring on <paramref name="endpoints"/>, with generous timeouts.</summary>
    public static TcpRingOptions Options(int rank, IReadOnlyList<EndPoint> endpoints, int chunkBytes = TcpRingOptions.DefaultChunkBytes) =>
        new(rank, endpoints, "test-run", 1, Secret)
        {
            ConnectTimeout = TimeSpan.FromSeconds(30),
            OperationTimeout = TimeSpan.FromSeconds(60),
            HandshakeTimeout = TimeSpan.FromSeconds(10),
            ChunkBytes = chunkBytes,
        };

    /// <summary>Binds <paramref name="world"/> listeners on 127.0.0.1 with free ports.</summary>
    public static TcpRingListener[] Listen(int world) =>
        Enumerable.Range(0, world).Select(_ => TcpRingListener.Bind(new IPEndPoint(IPAddress.Loopback, 0))).ToArray();

    /// <summary>Forms a ring of <paramref name="world"/> ranks; <paramref name="adjust"/> may change each rank's options.</summary>
    public static TcpRingCollective[] Form(int world, Func<TcpRingOptions, TcpRingOptions>? adjust = null, int chunkBytes = TcpRingOptions.DefaultChunkBytes)
    {
        var listeners = Listen(world);
        var endpoints = listeners.Select(l => (EndPoint)l.EndPoint).ToArray();
        var outcomes = Connect(listeners, r => (adjust ?? (o => o))(Options(r, endpoints, chunkBytes)));
        var failures = outcomes.Where(o => o.Error is not null).Select(o => o.Error!).ToList();
        if (failures.Count > 0)
        {
            foreach (var o in outcomes)
            {
                o.Ring?.Dispose();
            }
            throw new AggregateException("the ring did not form", failures);
        }
        return outcomes.Select(o => o.Ring!).ToArray();
    }

    /// <summary>Every rank's <see cref="TcpRingCollective.Connect"/>, each on its own thread, and what came of it.</summary>
    public static (TcpRingCollective? Ring, Exception? Error)[] Connect(TcpRingListener[] listeners, Func<int, TcpRingOptions> options)
    {
        var outcomes = new (TcpRingCollective?, Exception?)[listeners.Length];
        OnThreads(listeners.Length, r =>
        {
            try
            {
                outcomes[r] = (TcpRingCollective.Connect(listeners[r], options(r)), null);
            }
            catch (Exception e)
            {
                outcomes[r] = (null, e);
            }
        });
        return outcomes;
    }

    /// <summary>Runs <paramref name="action"/> for every rank on its own thread and returns each rank's exception (null when it succeeded).</summary>
    public static Exception?[] Run(IReadOnlyList<TcpRingCollective> ring, Action<TcpRingCollective> action)
    {
        var errors = new Exception?[ring.Count];
        OnThreads(ring.Count, r =>
        {
            try
            {
                action(ring[r]);
            }
            catch (Exception e)
            {
                errors[r] = e;
            }
        });
        return errors;
    }

    /// <summary>Runs <paramref name="action"/> for every rank and fails the test with every rank's exception if any threw.</summary>
    public static void RunAll(IReadOnlyList<TcpRingCollective> ring, Action<TcpRingCollective> action)
    {
        var errors = Run(ring, action).Where(e => e is not null).Select(e => e!).ToList();
        if (errors.Count > 0)
        {
            throw new AggregateException(errors);
        }
    }

    /// <summary>Disposes every rank.</summary>
    public static void DisposeAll(IEnumerable<TcpRingCollective?> ring)
    {
        foreach (var rank in ring)
        {
            rank?.Dispose();
        }
    }

    private static void OnThreads(int count, Action<int> body)
    {
        var threads = Enumerable.Range(0, count).Select(r => new Thread(() => body(r)) { IsBackground = true, Name = $"test-rank-{r}" }).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
    }
}
