using MoCo.Actors.Collectives;
using MoCo.Model.Collectives;
using TorchSharp;
using static MoCo.Actors.Tests.Collectives.Messages;
using static TorchSharp.torch;

namespace MoCo.Actors.Tests.Collectives;

/// <summary>All-reduce over a TCP ring of W ranks (threads of this process, 127.0.0.1).</summary>
public sealed class TcpRingAllReduceTests
{
    /// <summary>Rank r's input: seeded normal values, different on every rank.</summary>
    private static Tensor Input(int rank, long elements, ScalarType dtype) =>
        randn([elements], dtype: ScalarType.Float64, generator: new Generator((ulong)(1000 + rank))).to(dtype);

    [Theory]
    [InlineData(1, 1000)]
    [InlineData(2, 1)]          // fewer elements than ranks
    [InlineData(2, 1001)]       // not divisible by W
    [InlineData(3, 2)]
    [InlineData(3, 100_003)]
    [InlineData(4, 3)]
    [InlineData(4, 65_537)]
    public void All_reduce_sums_float32_like_a_float64_reference(int world, long elements)
    {
        var ring = LocalRing.Form(world, chunkBytes: 16 * 1024); // small segments: many segments per block
        try
        {
            var inputs = Enumerable.Range(0, world).Select(r => Input(r, elements, ScalarType.Float32)).ToArray();
            var results = inputs.Select(t => t.clone()).ToArray();
            LocalRing.RunAll(ring, rank => rank.AllReduceSum(results[rank.Rank]));

            AssertSum(inputs, results, unitRoundoff: Math.Pow(2, -24));
        }
        finally
        {
            LocalRing.DisposeAll(ring);
        }
    }

    [Theory]
    [InlineData(2, 10_001)]
    [InlineData(3, 7)]
    public void All_reduce_sums_float64_in_float64(int world, long elements)
    {
        var ring = LocalRing.Form(world, chunkBytes: 4096);
        try
        {
            var inputs = Enumerable.Range(0, world).Select(r => Input(r, elements, ScalarType.Float64)).ToArray();
            var results = inputs.Select(t => t.clone()).ToArray();
            LocalRing.RunAll(ring, rank => rank.AllReduceSum(results[rank.Rank]));

            AssertSum(inputs, results, unitRoundoff: Math.Pow(2, -53));
        }
        finally
        {
            LocalRing.DisposeAll(ring);
        }
    }

    [Fact]
    public void All_reduce_sums_bfloat16_with_rounding_to_nearest_even()
    {
        var ring = LocalRing.Form(3, chunkBytes: 2048);
        try
        {
            var inputs = Enumerable.Range(0, 3).Select(r => Input(r, 5000, ScalarType.BFloat16)).ToArray();
            var results = inputs.Select(t => t.clone()).ToArray();
            LocalRing.RunAll(ring, rank => rank.AllReduceSum(results[rank.Rank]));

            AssertSum(inputs, results, unitRoundoff: Math.Pow(2, -8));
        }
        finally
        {
            LocalRing.DisposeAll(ring);
        }
    }

    [Fact]
    public void All_reduce_of_a_few_million_elements_matches_the_reference_on_every_rank()
    {
        const long elements = 3_000_001;
        var ring = LocalRing.Form(3);
        try
        {
            var inputs = Enumerable.Range(0, 3).Select(r => Input(r, elements, ScalarType.Float32)).ToArray();
            var results = inputs.Select(t => t.clone()).ToArray();
            LocalRing.RunAll(ring, rank => rank.AllReduceSum(results[rank.Rank]));

            AssertSum(inputs, results, unitRoundoff: Math.Pow(2, -24));
        }
        finally
        {
            LocalRing.DisposeAll(ring);
        }
    }

    [Fact]
    public void All_reduce_of_a_view_changes_only_the_view()
    {
        // a narrowed view starts at a storage offset; a transposed one is not contiguous
        var ring = LocalRing.Form(2);
        try
        {
            var bases = Enumerable.Range(0, 2).Select(r => arange(100, dtype: ScalarType.Float32).add(r * 1000)).ToArray();
            var matrices = Enumerable.Range(0, 2).Select(r => arange(12, dtype: ScalarType.Float32).add(r * 100).view(3, 4)).ToArray();
            LocalRing.RunAll(ring, rank =>
            {
                using var slice = bases[rank.Rank].narrow(0, 10, 50);
                rank.AllReduceSum(slice);
                using var transposed = matrices[rank.Rank].t();
                rank.AllReduceSum(transposed);
            });

            var expectedSlice = arange(10, 60, dtype: ScalarType.Float32).mul(2).add(1000);
            var expectedMatrix = arange(12, dtype: ScalarType.Float32).mul(2).add(100).view(3, 4);
            for (int r = 0; r < 2; r++)
            {
                Assert.True(bases[r].narrow(0, 10, 50).IsSameAs(expectedSlice), $"rank {r}: the view was not summed");
                Assert.True(bases[r].narrow(0, 0, 10).IsSameAs(arange(10, dtype: ScalarType.Float32).add(r * 1000)), $"rank {r}: elements before the view changed");
                Assert.True(bases[r].narrow(0, 60, 40).IsSameAs(arange(60, 100, dtype: ScalarType.Float32).add(r * 1000)), $"rank {r}: elements after the view changed");
                Assert.True(matrices[r].IsSameAs(expectedMatrix), $"rank {r}: the transposed view was not summed");
            }
        }
        finally
        {
            LocalRing.DisposeAll(ring);
        }
    }

    [Fact]
    public void All_reduce_refuses_an_unsupported_dtype_by_name()
    {
        var ring = LocalRing.Form(1);
        try
        {
            using var flags = ones(4, dtype: ScalarType.Bool);
            var e = Assert.Throws<NotSupportedException>(() => ring[0].AllReduceSum(flags));
            AssertMentions(e.Message, "Bool");
            AssertMentions(e.Message, "Float32");
        }
        finally
        {
            LocalRing.DisposeAll(ring);
        }
    }

    [Fact]
    public void Ranks_that_disagree_on_the_size_fail_with_a_message_instead_of_mixing_data()
    {
        var ring = LocalRing.Form(2);
        try
        {
            var errors = LocalRing.Run(ring, rank =>
            {
                using var t = ones(rank.Rank == 0 ? 10 : 11);
                rank.AllReduceSum(t);
            });

            foreach (var e in errors)
            {
                var collective = Assert.IsType<CollectiveException>(e);
                AssertMentions(collective.Message + collective.InnerException?.Message, "same collective calls");
            }
        }
        finally
        {
            LocalRing.DisposeAll(ring);
        }
    }

    /// <summary>
    /// Every rank holds the same bits, and each element is within the rounding bound of a sum of W terms: the ring
    /// adds W − 1 times in the tensor's dtype (unit roundoff u), each addition erring by at most u times the running
    /// magnitude, so |ring − exact| ≤ (W − 1)·u·Σ|x| (plus one rounding of the inputs' own dtype, already in x). The
    /// reference is computed in float64 from the same rounded inputs, exact to far below that bound.
    /// </summary>
    private static void AssertSum(Tensor[] inputs, Tensor[] results, double unitRoundoff)
    {
        int world = inputs.Length;
        var exact = inputs.Select(t => t.to(ScalarType.Float64)).Aggregate((a, b) => a + b);
        var magnitude = inputs.Select(t => t.to(ScalarType.Float64).abs()).Aggregate((a, b) => a + b);
        var bound = magnitude.mul((world - 1) * unitRoundoff * 1.0001);
        var error = results[0].to(ScalarType.Float64).sub(exact).abs();
        var over = error.gt(bound);
        Assert.False(over.any().item<bool>(), $"{over.sum().item<long>()} elements beyond the bound; worst error {error.max().item<double>():E3}");
        for (int r = 1; r < world; r++)
        {
            Assert.True(results[r].IsSameAs(results[0]), $"rank {r} differs from rank 0");
            Assert.Equal(results[0].bytes.ToArray(), results[r].bytes.ToArray());
        }
    }
}
