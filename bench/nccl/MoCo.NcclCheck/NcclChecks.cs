using System.Diagnostics;
using MoCo.Actors.Collectives.Nccl;
using MoCo.Model.Collectives;
using TorchSharp;
using static TorchSharp.torch;

namespace MoCo.NcclCheck;

/// <summary>
/// The checks, each run by every rank on its own thread and device. Values are small integers, exact in every dtype
/// checked (uint8 included: the largest sum is world × (world + 1) / 2), so results are compared for equality.
/// </summary>
internal sealed class NcclChecks
{
    private static readonly TimeSpan Patient = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan Short = TimeSpan.FromSeconds(5);

    private readonly int _world;
    private readonly object _console = new();
    private int _passed;
    private int _failed;

    public NcclChecks(int world)
    {
        _world = world;
    }

    public int Passed => _passed;

    public int Failed => _failed;

    public void RunAll()
    {
        var collectives = NcclUniqueId.Create();
        OnEveryRank(rank => Collectives(rank, collectives));

        var timeout = NcclUniqueId.Create();
        using (var rankZeroDone = new Barrier(_world))
        {
            OnEveryRank(rank => DeadPeerTimesOut(rank, timeout, rankZeroDone));
        }

        var abort = NcclUniqueId.Create();
        using (var rankZeroDone = new Barrier(_world))
        {
            OnEveryRank(rank => AbortFromAnotherThread(rank, abort, rankZeroDone));
        }
    }

    /// <summary>The three collectives, each dtype, views and uneven shares, on one communicator; then finalize and destroy.</summary>
    private void Collectives(int rank, NcclUniqueId id)
    {
        var device = new Device(DeviceType.CUDA, rank);
        NcclCollective? nccl = null;
        Check(rank, "init (non-blocking, polled)", () => nccl = new NcclCollective(rank, _world, id, rank, Patient));
        if (nccl is null)
        {
            return;
        }

        var sum = _world * (_world + 1) / 2;
        foreach (var dtype in new[] { ScalarType.Float32, ScalarType.Float64, ScalarType.BFloat16, ScalarType.Float16, ScalarType.Int64, ScalarType.Byte })
        {
            Check(rank, $"all-reduce sum {dtype}: every rank holds {sum}", () =>
            {
                using var scope = NewDisposeScope();
                var t = full(1000, rank + 1, dtype: dtype, device: device);
                nccl.AllReduceSum(t);
                Expect(t, full(1000, sum, dtype: ScalarType.Float64));
            });
        }

        Check(rank, "all-reduce of a narrowed view (storage offset): its rows summed, the rows around it untouched", () =>
        {
            using var scope = NewDisposeScope();
            var whole = zeros(10, 4, device: device);
            var rows = whole.narrow(0, 3, 5);
            rows.fill_(rank + 1);
            nccl.AllReduceSum(rows);
            var expected = zeros(10, 4, dtype: ScalarType.Float64);
            expected.narrow(0, 3, 5).fill_(sum);
            Expect(whole, expected);
        });

        Check(rank, "all-reduce ordered on the default stream: after the kernel that wrote its input, before the one that reads it", () =>
        {
            using var scope = NewDisposeScope();
            var x = ones(1 << 24, device: device).mul_(rank + 1);   // a large kernel just before, on the same stream
            nccl.AllReduceSum(x);
            x.mul_(2);                                               // just after
            Expect(x.narrow(0, (1 << 24) - 1000, 1000), full(1000, 2 * sum, dtype: ScalarType.Float64));
        });

        Check(rank, "all-gather, equal shares (ncclAllGather): rank r's rows in place r", () =>
        {
            using var scope = NewDisposeScope();
            var local = full(new long[] { 2, 3 }, rank, device: device);
            var gathered = nccl.AllGather(local, Enumerable.Repeat(2L, _world).ToArray());
            var expected = cat(Enumerable.Range(0, _world).Select(r => full(new long[] { 2, 3 }, r, dtype: ScalarType.Float64)).ToList(), 0);
            Expect(gathered, expected);
        });

        Check(rank, "all-gather, unequal shares (grouped broadcasts): rank r gives r + 1 rows", () =>
        {
            using var scope = NewDisposeScope();
            var counts = Enumerable.Range(0, _world).Select(r => (long)r + 1).ToArray();
            var local = full(new long[] { rank + 1, 3 }, rank, device: device);
            var gathered = nccl.AllGather(local, counts);
            var expected = cat(Enumerable.Range(0, _world).Select(r => full(new long[] { r + 1, 3 }, r, dtype: ScalarType.Float64)).ToList(), 0);
            Expect(gathered, expected);
        });

        Check(rank, "broadcast from the last rank: every rank holds its values", () =>
        {
            using var scope = NewDisposeScope();
            var root = _world - 1;
            var t = arange(0, 100, device: device).add_(100 * rank);
            nccl.Broadcast(t, root);
            Expect(t, arange(0, 100, dtype: ScalarType.Float64).add_(100 * root));
        });

        Check(rank, "a CPU tensor is refused before NCCL sees it", () =>
        {
            using var cpu = zeros(4);
            try
            {
                nccl.AllReduceSum(cpu);
                throw new InvalidOperationException("the CPU tensor was accepted");
            }
            catch (ArgumentException)
            {
            }
        });

        Check(rank, "finalize and destroy within the timeout", () =>
        {
            var clock = Stopwatch.StartNew();
            nccl.Dispose();
            if (nccl.IsAborted || clock.Elapsed > Patient)
            {
                throw new InvalidOperationException($"dispose aborted instead (after {clock.Elapsed.TotalSeconds:F1} s)");
            }
        });
    }

    /// <summary>Rank 0 calls an all-reduce the others never call: it must throw within the timeout, not hang.</summary>
    private void DeadPeerTimesOut(int rank, NcclUniqueId id, Barrier rankZeroDone)
    {
        OnCommunicatorThenMeet(rank, id, Short, rankZeroDone, nccl =>
            Check(rank, $"a collective no peer joins throws within the {Short.TotalSeconds:F0} s timeout and aborts", () =>
            {
                using var t = ones(1000, device: new Device(DeviceType.CUDA, rank));
                ExpectCollectiveFailure(() => nccl.AllReduceSum(t), Short + TimeSpan.FromSeconds(10));
                if (!nccl.IsAborted)
                {
                    throw new InvalidOperationException("the communicator was not aborted");
                }
            }));
    }

    /// <summary>Rank 0 waits on a collective no peer joins, with a long timeout; another thread aborts it after 2 s.</summary>
    private void AbortFromAnotherThread(int rank, NcclUniqueId id, Barrier rankZeroDone)
    {
        OnCommunicatorThenMeet(rank, id, TimeSpan.FromMinutes(5), rankZeroDone, nccl =>
            Check(rank, "Abort() from another thread ends a waiting collective long before its timeout", () =>
            {
                using var t = ones(1000, device: new Device(DeviceType.CUDA, rank));
                using var aborter = new Timer(_ => nccl.Abort(), null, TimeSpan.FromSeconds(2), Timeout.InfiniteTimeSpan);
                ExpectCollectiveFailure(() => nccl.AllReduceSum(t), TimeSpan.FromSeconds(20));
            }));
    }

    /// <summary>
    /// Every rank joins a communicator; rank 0 alone runs <paramref name="rankZero"/> while the others wait at
    /// <paramref name="rankZeroDone"/> (so they never join its collective); then every rank aborts its communicator.
    /// </summary>
    private void OnCommunicatorThenMeet(int rank, NcclUniqueId id, TimeSpan timeout, Barrier rankZeroDone, Action<NcclCollective> rankZero)
    {
        NcclCollective? nccl = null;
        try
        {
            nccl = new NcclCollective(rank, _world, id, rank, timeout);
            if (rank == 0)
            {
                rankZero(nccl);
            }
        }
        finally
        {
            // Signalled even when init failed, so no rank waits for one that is gone.
            rankZeroDone.SignalAndWait(TimeSpan.FromMinutes(2));
            nccl?.Abort();
            nccl?.Dispose();
        }
    }

    private static void ExpectCollectiveFailure(Action call, TimeSpan within)
    {
        var clock = Stopwatch.StartNew();
        try
        {
            call();
        }
        catch (CollectiveException)
        {
            if (clock.Elapsed > within)
            {
                throw new InvalidOperationException($"it threw, but after {clock.Elapsed.TotalSeconds:F1} s (more than {within.TotalSeconds:F0} s)");
            }

            return;
        }

        throw new InvalidOperationException("the collective returned although no peer joined it");
    }

    private static void Expect(Tensor actual, Tensor expected)
    {
        using var scope = NewDisposeScope();
        var got = actual.cpu().to_type(ScalarType.Float64);
        if (!got.shape.SequenceEqual(expected.shape) || !got.eq(expected).all().item<bool>())
        {
            var wrong = got.shape.SequenceEqual(expected.shape) ? (got != expected).sum().item<long>() : -1;
            throw new InvalidOperationException(
                $"got shape [{string.Join(", ", got.shape)}], expected [{string.Join(", ", expected.shape)}]; {wrong} elements differ " +
                $"(first values {string.Join(", ", got.flatten().narrow(0, 0, Math.Min(5, got.numel())).data<double>().ToArray())})");
        }
    }

    private void OnEveryRank(Action<int> body)
    {
        var threads = Enumerable.Range(0, _world).Select(rank => new Thread(() =>
        {
            try
            {
                body(rank);
            }
            catch (Exception e)
            {
                Report(rank, "rank thread", e);
            }
        })
        {
            Name = $"nccl-rank-{rank}",
        }).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
    }

    private void Check(int rank, string name, Action check)
    {
        try
        {
            check();
            Interlocked.Increment(ref _passed);
            lock (_console)
            {
                Console.WriteLine($"PASS rank {rank}: {name}");
            }
        }
        catch (Exception e)
        {
            Report(rank, name, e);
        }
    }

    private void Report(int rank, string name, Exception e)
    {
        Interlocked.Increment(ref _failed);
        lock (_console)
        {
            Console.WriteLine($"FAIL rank {rank}: {name}: {e.GetType().Name}: {e.Message}");
        }
    }
}
