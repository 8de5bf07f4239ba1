using static MoCo.Actors.Tests.Collectives.Messages;
using static TorchSharp.torch;

namespace MoCo.Actors.Tests.Collectives;

/// <summary>All-gather and broadcast over a TCP ring (threads of this process, 127.0.0.1). Both copy bytes, so results are exact.</summary>
public sealed class TcpRingGatherBroadcastTests
{
    [Theory]
    [InlineData(new long[] { 5 })]
    [InlineData(new long[] { 3, 4 })]
    [InlineData(new long[] { 2, 0, 7 })]      // a rank with no rows
    [InlineData(new long[] { 1, 1, 2, 300 })]
    public void All_gather_concatenates_uneven_shares_in_rank_order(long[] counts)
    {
        int world = counts.Length;
        var ring = LocalRing.Form(world, chunkBytes: 1024);
        try
        {
            // rows of 3 x 5 float32; row i of rank r holds r * 10000 + i * 15 + (0..14)
            Tensor Local(int r) => arange(counts[r] * 15, dtype: ScalarType.Float32).add(r * 10000).view(counts[r], 3, 5);
            var gathered = new Tensor[world];
            LocalRing.RunAll(ring, rank => gathered[rank.Rank] = rank.AllGather(Local(rank.Rank), counts));

            var expected = cat(Enumerable.Range(0, world).Select(Local).ToList(), 0);
            for (int r = 0; r < world; r++)
            {
                Assert.Equal(expected.shape, gathered[r].shape);
                Assert.True(gathered[r].IsSameAs(expected), $"rank {r} gathered something else");
            }
        }
        finally
        {
            LocalRing.DisposeAll(ring);
        }
    }

    [Fact]
    public void All_gather_copies_any_dtype_by_bytes()
    {
        long[] counts = [4, 1, 3];
        var ring = LocalRing.Form(3, chunkBytes: 1024);
        try
        {
            Tensor Local(int r) => arange(counts[r], dtype: ScalarType.Int64).add(long.MaxValue / 2 + r);
            var gathered = new Tensor[3];
            LocalRing.RunAll(ring, rank => gathered[rank.Rank] = rank.AllGather(Local(rank.Rank), counts));

            var expected = cat(Enumerable.Range(0, 3).Select(Local).ToList(), 0);
            Assert.All(gathered, g => Assert.True(g.IsSameAs(expected)));
        }
        finally
        {
            LocalRing.DisposeAll(ring);
        }
    }

    [Fact]
    public void All_gather_refuses_counts_that_do_not_match_the_local_rows()
    {
        var ring = LocalRing.Form(1);
        try
        {
            using var local = zeros(3, 2);
            var e = Assert.Throws<ArgumentException>(() => ring[0].AllGather(local, [4]));
            AssertMentions(e.Message, "3 rows");
        }
        finally
        {
            LocalRing.DisposeAll(ring);
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    public void Broadcast_from_each_root_overwrites_every_rank(int world)
    {
        const long elements = 10_007; // not a multiple of the segment
        var ring = LocalRing.Form(world, chunkBytes: 4096);
        try
        {
            for (int root = 0; root < world; root++)
            {
                var tensors = Enumerable.Range(0, world).Select(r => full(elements, (double)r, dtype: ScalarType.Float64)).ToArray();
                tensors[root] = randn(elements, dtype: ScalarType.Float64, generator: new Generator((ulong)root));
                var sent = tensors[root].clone();
                int from = root;
                LocalRing.RunAll(ring, rank => rank.Broadcast(tensors[rank.Rank], from));

                for (int r = 0; r < world; r++)
                {
                    Assert.True(tensors[r].IsSameAs(sent), $"root {root}: rank {r} did not receive the root's tensor");
                }
            }
        }
        finally
        {
            LocalRing.DisposeAll(ring);
        }
    }

    [Fact]
    public void Broadcast_into_a_transposed_view_writes_through_it()
    {
        var ring = LocalRing.Form(2);
        try
        {
            var matrices = Enumerable.Range(0, 2).Select(r => full(3, 4, (float)r)).ToArray();
            matrices[1] = arange(12, dtype: ScalarType.Float32).view(3, 4);
            LocalRing.RunAll(ring, rank =>
            {
                using var view = matrices[rank.Rank].t();
                rank.Broadcast(view, 1);
            });

            Assert.True(matrices[0].IsSameAs(arange(12, dtype: ScalarType.Float32).view(3, 4)));
        }
        finally
        {
            LocalRing.DisposeAll(ring);
        }
    }

    [Fact]
    public void Many_consecutive_operations_stay_in_step()
    {
        // 300 calls of varying kinds and sizes, each checked: a single desynchronised frame would corrupt a result
        // or trip the operation header
        const int world = 3;
        var ring = LocalRing.Form(world, chunkBytes: 1024);
        try
        {
            LocalRing.RunAll(ring, rank =>
            {
                for (int i = 0; i < 300; i++)
                {
                    using var scope = NewDisposeScope();
                    int size = 1 + (i * 37) % 900;
                    switch (i % 3)
                    {
                        case 0:
                            var t = full(size, (float)(rank.Rank + i));
                            rank.AllReduceSum(t);
                            float expected = Enumerable.Range(0, world).Sum(r => (float)(r + i));
                            Assert.True(t.eq(expected).all().item<bool>(), $"call {i}: all-reduce of {size} gave {t[0].item<float>()}, not {expected}");
                            break;
                        case 1:
                            long[] counts = Enumerable.Range(0, world).Select(r => (long)((size + r) % 5)).ToArray();
                            var g = rank.AllGather(full(counts[rank.Rank], 2, (double)(rank.Rank * 1000 + i), dtype: ScalarType.Float64), counts);
                            var want = cat(Enumerable.Range(0, world).Select(r => full(counts[r], 2, (double)(r * 1000 + i), dtype: ScalarType.Float64)).ToList(), 0);
                            Assert.True(g.IsSameAs(want), $"call {i}: all-gather of [{string.Join(", ", counts)}] differs");
                            break;
                        default:
                            int root = i % world;
                            var b = rank.Rank == root ? arange(size, dtype: ScalarType.Int32).add(i) : zeros(size, dtype: ScalarType.Int32);
                            rank.Broadcast(b, root);
                            Assert.True(b.IsSameAs(arange(size, dtype: ScalarType.Int32).add(i)), $"call {i}: broadcast from {root} differs");
                            break;
                    }
                }
            });
        }
        finally
        {
            LocalRing.DisposeAll(ring);
        }
    }
}
