using System.Diagnostics;
using MoCo.Actors.Collectives;
using MoCo.Model.Collectives;
using static MoCo.Actors.Tests.Collectives.Messages;
using static TorchSharp.torch;

namespace MoCo.Actors.Tests.Collectives;

/// <summary>
/// A ring whose peer dies, goes silent or is aborted must fail with <see cref="CollectiveException"/> within the
/// operation timeout, never hang. Ranks are threads; "silent" is a rank whose receiving thread stops in the middle
/// of an all-reduce (its connections stay open, as with SIGSTOP).
/// </summary>
public sealed class TcpRingFailureTests
{
    private const long Elements = 1_000_000; // 4 MB in 16 KiB segments: the failure lands mid-operation
    private const int Chunk = 16 * 1024;

    /// <summary>Scheduling slack on a loaded 2-core machine, on top of the timeout a test measures.</summary>
    private static readonly TimeSpan Slack = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task A_silent_peer_fails_the_others_within_the_timeout()
    {
        var timeout = TimeSpan.FromSeconds(2);
        var ring = LocalRing.Form(3, o => o with { OperationTimeout = timeout }, Chunk);
        using var release = new ManualResetEventSlim();
        try
        {
            ring[2].AfterReceive = i =>
            {
                if (i == 3)
                {
                    release.Wait(); // rank 2 stops reading and sending; its sockets stay open
                }
            };
            var elapsed = new TimeSpan[3];
            var errors = LocalRing.Run(ring.Take(2).ToArray(), rank =>
            {
                var clock = Stopwatch.StartNew();
                try
                {
                    using var t = ones(Elements);
                    rank.AllReduceSum(t);
                }
                finally
                {
                    elapsed[rank.Rank] = clock.Elapsed;
                }
            });
            var silent = Task.Factory.StartNew(() =>
            {
                using var t = ones(Elements);
                ring[2].AllReduceSum(t);
            }, TaskCreationOptions.LongRunning);
            release.Set();

            for (int r = 0; r < 2; r++)
            {
                var e = Assert.IsType<CollectiveException>(errors[r]);
                Assert.StartsWith($"rank {r}: all-reduce #1", e.Message);
                Assert.True(elapsed[r] < timeout + Slack, $"rank {r} failed only after {elapsed[r].TotalSeconds:F1} s");
            }
            // rank 0 receives from rank 2: it names the silent peer and its address
            AssertMentions(errors[0]!.Message, $"rank 2 at {ring[0].Options.Endpoints[2]}");
            AssertMentions(errors[0]!.Message + errors[1]!.Message, "before the operation's deadline");
            await Assert.ThrowsAsync<CollectiveException>(() => silent); // its peers hung up on it
        }
        finally
        {
            release.Set();
            LocalRing.DisposeAll(ring);
        }
    }

    [Fact]
    public void A_peer_that_dies_mid_operation_fails_the_others_promptly()
    {
        // rank 2 closes its connections in the middle of the all-reduce; the operation timeout is long, so the others
        // must notice the closed connections, not a timeout
        var ring = LocalRing.Form(3, o => o with { OperationTimeout = TimeSpan.FromSeconds(120) }, Chunk);
        try
        {
            ring[2].AfterReceive = i =>
            {
                if (i == 3)
                {
                    ring[2].Abort(); // as a dying process: its connections close
                }
            };
            var clock = Stopwatch.StartNew();
            var errors = LocalRing.Run(ring, rank =>
            {
                using var t = ones(Elements);
                rank.AllReduceSum(t);
            });

            Assert.True(clock.Elapsed < Slack, $"the ring noticed the dead peer only after {clock.Elapsed.TotalSeconds:F1} s");
            Assert.All(errors, e => Assert.IsType<CollectiveException>(e));
            var toZero = errors[0]!.Message;
            AssertMentions(toZero, $"rank 2 at {ring[0].Options.Endpoints[2]}");
        }
        finally
        {
            LocalRing.DisposeAll(ring);
        }
    }

    [Fact]
    public async Task Abort_unblocks_a_pending_call_and_every_later_one()
    {
        var ring = LocalRing.Form(2, o => o with { OperationTimeout = TimeSpan.FromSeconds(120) }, Chunk);
        using var stalled = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        try
        {
            // rank 1 stops inside the all-reduce, so rank 0's call cannot finish until it is aborted
            ring[1].AfterReceive = i =>
            {
                if (i == 0)
                {
                    stalled.Set();
                    release.Wait();
                }
            };
            var stuck = Task.Factory.StartNew(() =>
            {
                using var t = ones(Elements);
                ring[1].AllReduceSum(t);
            }, TaskCreationOptions.LongRunning);
            var clock = new Stopwatch();
            var pending = Task.Factory.StartNew(() =>
            {
                using var t = ones(Elements);
                ring[0].AllReduceSum(t);
            }, TaskCreationOptions.LongRunning);
            Assert.True(stalled.Wait(TimeSpan.FromSeconds(60)), "rank 1 never entered the all-reduce");

            clock.Start();
            ring[0].Abort();
            var e = await Assert.ThrowsAsync<CollectiveException>(() => pending);
            clock.Stop();

            AssertMentions(e.Message, "aborted");
            Assert.True(clock.Elapsed < Slack, $"the aborted call returned only after {clock.Elapsed.TotalSeconds:F1} s");
            using var later = ones(3);
            var again = Assert.Throws<CollectiveException>(() => ring[0].AllReduceSum(later));
            AssertMentions(again.Message, "broken ring");
            release.Set();
            await Assert.ThrowsAsync<CollectiveException>(() => stuck); // rank 0 hung up on it
        }
        finally
        {
            release.Set();
            LocalRing.DisposeAll(ring);
        }
    }

    [Fact]
    public void Abort_of_a_world_of_one_fails_later_calls()
    {
        var ring = LocalRing.Form(1);
        try
        {
            ring[0].Abort();
            using var t = ones(3);
            Assert.Throws<CollectiveException>(() => ring[0].AllReduceSum(t));
        }
        finally
        {
            LocalRing.DisposeAll(ring);
        }
    }

    [Fact]
    public void Calls_after_dispose_are_refused()
    {
        var ring = LocalRing.Form(2);
        LocalRing.DisposeAll(ring);
        using var t = ones(3);
        Assert.Throws<ObjectDisposedException>(() => ring[0].AllReduceSum(t));
    }
}
