using MoCo.Actors.Collectives;

namespace MoCo.Actors.Tests.Collectives;

/// <summary>
/// The ring algorithms without sockets: every rank's plan is executed on in-memory links (one FIFO of segments per
/// ring edge), sends in plan order as soon as their dependencies allow, receives in plan order.
/// </summary>
public sealed class RingScheduleTests
{
    [Theory]
    [InlineData(1, 10, 4)]
    [InlineData(2, 0, 4)]
    [InlineData(2, 1, 4)]
    [InlineData(3, 2, 4)]   // fewer elements than ranks: some blocks are empty
    [InlineData(3, 100, 4)]
    [InlineData(4, 1001, 7)]
    [InlineData(5, 333, 1)]
    [InlineData(6, 5, 64)]
    public void All_reduce_plans_sum_every_element_on_in_memory_links(int world, int elements, int segmentElements)
    {
        // integers held in doubles: sums are exact in any order, so equality is the right test
        var inputs = Enumerable.Range(0, world).Select(r => Enumerable.Range(0, elements).Select(i => (double)(r * 1000 + i)).ToArray()).ToArray();
        var buffers = inputs.Select(x => (double[])x.Clone()).ToArray();
        var plans = Enumerable.Range(0, world).Select(r => RingSchedule.AllReduce(r, world, elements, sizeof(double), segmentElements * sizeof(double))).ToArray();

        Simulate(plans, buffers, sizeof(double), reduce: (dst, src) => dst + src);

        var expected = Enumerable.Range(0, elements).Select(i => inputs.Sum(x => x[i])).ToArray();
        for (int r = 0; r < world; r++)
        {
            Assert.Equal(expected, buffers[r]);
        }
    }

    [Theory]
    [InlineData(2, new long[] { 3, 0 })]
    [InlineData(3, new long[] { 1, 5, 2 })]
    [InlineData(4, new long[] { 0, 0, 9, 1 })]
    public void All_gather_plans_copy_every_block_in_rank_order(int world, long[] counts)
    {
        long total = counts.Sum();
        long[] offsets = counts.Select((_, b) => counts.Take(b).Sum()).ToArray();
        var buffers = Enumerable.Range(0, world).Select(r =>
        {
            var b = new double[total];
            for (long i = 0; i < counts[r]; i++)
            {
                b[offsets[r] + i] = r * 100 + i + 1;
            }
            return b;
        }).ToArray();
        var plans = Enumerable.Range(0, world).Select(r => RingSchedule.AllGather(r, world, counts.Select(c => c * sizeof(double)).ToArray(), 2 * sizeof(double))).ToArray();

        Simulate(plans, buffers, sizeof(double), reduce: null);

        var expected = Enumerable.Range(0, world).SelectMany(r => Enumerable.Range(0, (int)counts[r]).Select(i => (double)(r * 100 + i + 1))).ToArray();
        for (int r = 0; r < world; r++)
        {
            Assert.Equal(expected, buffers[r]);
        }
    }

    [Theory]
    [InlineData(3, 0)]
    [InlineData(3, 2)]
    [InlineData(4, 1)]
    public void Broadcast_plans_copy_the_root_to_every_rank(int world, int root)
    {
        const int elements = 11;
        var buffers = Enumerable.Range(0, world).Select(r => Enumerable.Range(0, elements).Select(i => r == root ? i + 0.5 : -1.0).ToArray()).ToArray();
        var plans = Enumerable.Range(0, world).Select(r => RingSchedule.Broadcast(r, world, root, elements * sizeof(double), 3 * sizeof(double))).ToArray();

        Simulate(plans, buffers, sizeof(double), reduce: null);

        for (int r = 0; r < world; r++)
        {
            Assert.Equal(Enumerable.Range(0, elements).Select(i => i + 0.5), buffers[r]);
        }
    }

    /// <summary>
    /// Runs the plans round-robin: each rank sends every segment its dependencies allow onto the edge to its
    /// successor, then receives what is waiting on the edge from its predecessor; a round without progress fails
    /// (a deadlock). Every received segment must be exactly the next one the receiver's plan expects.
    /// </summary>
    private static void Simulate(RingPlan[] plans, double[][] buffers, int elementSize, Func<double, double, double>? reduce)
    {
        int world = plans.Length;
        var edges = Enumerable.Range(0, world).Select(_ => new Queue<(long Offset, int Length, double[] Data)>()).ToArray(); // edge r: r -> r + 1
        var sent = new int[world];
        var received = new int[world];
        bool progress = true;
        while (progress)
        {
            progress = false;
            for (int r = 0; r < world; r++)
            {
                while (sent[r] < plans[r].Sends.Length && plans[r].Sends[sent[r]].AfterReceives <= received[r])
                {
                    var s = plans[r].Sends[sent[r]++];
                    var data = buffers[r].AsSpan((int)(s.Offset / elementSize), s.Length / elementSize).ToArray();
                    edges[r].Enqueue((s.Offset, s.Length, data));
                    progress = true;
                }
                var incoming = edges[(r + world - 1) % world];
                while (incoming.Count > 0)
                {
                    Assert.True(received[r] < plans[r].Receives.Length, $"rank {r} got a segment its plan does not expect");
                    var expect = plans[r].Receives[received[r]++];
                    var (offset, length, data) = incoming.Dequeue();
                    Assert.Equal(expect.Length, length); // the wire carries bytes only: the receiver trusts its own offsets
                    int at = (int)(expect.Offset / elementSize);
                    for (int i = 0; i < data.Length; i++)
                    {
                        buffers[r][at + i] = expect.Reduce ? reduce!(buffers[r][at + i], data[i]) : data[i];
                    }
                    progress = true;
                }
            }
        }
        for (int r = 0; r < world; r++)
        {
            Assert.True(sent[r] == plans[r].Sends.Length, $"rank {r} is stuck after {sent[r]} of {plans[r].Sends.Length} sends");
            Assert.True(received[r] == plans[r].Receives.Length, $"rank {r} is stuck after {received[r]} of {plans[r].Receives.Length} receives");
        }
    }
}
