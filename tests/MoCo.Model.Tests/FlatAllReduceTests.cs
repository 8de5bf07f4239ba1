using MoCo.Model.Collectives;
using MoCo.Model.Training;
using static TorchSharp.torch;

namespace MoCo.Model.Tests;

/// <summary>
/// The all-reduce of several tensors (<see cref="FlatAllReduce"/>): pieces that tile one range of one buffer, as a
/// gradient bucket of flat parameters does, travel where they lie, without a copy; anything else through a
/// concatenation. Either way every tensor ends with the sum.
/// </summary>
public sealed class FlatAllReduceTests
{
    [Fact]
    public void Pieces_that_tile_a_range_of_one_buffer_are_reduced_in_place_in_one_call()
    {
        using var buffer = arange(100, dtype: float32);
        // a bucket: later parameters first (backward's order), covering [10, 70) exactly
        var pieces = new[] { buffer.narrow(0, 40, 30).view(5, 6), buffer.narrow(0, 10, 12), buffer.narrow(0, 22, 18).view(3, 6) };
        var collective = new DoublingCollective();

        FlatAllReduce.SumInPlace(collective, pieces);

        var call = Assert.Single(collective.Calls);
        Assert.Equal(60, call.Count);
        Assert.Equal(Address(buffer.narrow(0, 10, 1)), call.Address); // the buffer itself, not a copy
        var values = buffer.data<float>().ToArray();
        for (int i = 0; i < 100; i++)
        {
            Assert.Equal(i is >= 10 and < 70 ? 2f * i : i, values[i]);
        }
    }

    [Theory]
    [InlineData("gap")]
    [InlineData("overlap")]
    [InlineData("two buffers")]
    [InlineData("strided")]
    public void Pieces_that_do_not_tile_one_range_go_through_a_copy_and_still_end_with_the_sum(string how)
    {
        using var buffer = arange(100, dtype: float32);
        using var other = arange(100, 200, dtype: float32);
        Tensor[] pieces = how switch
        {
            "gap" => [buffer.narrow(0, 0, 10), buffer.narrow(0, 11, 10)],
            "overlap" => [buffer.narrow(0, 0, 10), buffer.narrow(0, 5, 10)],
            "two buffers" => [buffer.narrow(0, 0, 10), other.narrow(0, 0, 10)],
            _ => [buffer.view(10, 10).narrow(1, 0, 5)],
        };
        Assert.Null(FlatAllReduce.SpanOf(pieces));
        var expected = pieces.Select(p => p.data<float>().ToArray().Select(v => 2 * v).ToArray()).ToList();
        if (how == "overlap")
        {
            return; // overlapping pieces have no well-defined in-place sum either way: refusing the span is the point
        }

        var collective = new DoublingCollective();
        FlatAllReduce.SumInPlace(collective, pieces);

        Assert.Single(collective.Calls);
        Assert.NotEqual(Address(pieces[0]), collective.Calls[0].Address);
        for (int i = 0; i < pieces.Length; i++)
        {
            Assert.Equal(expected[i], pieces[i].data<float>().ToArray());
        }
    }

    [Fact]
    public void A_bucket_of_flat_gradients_is_one_span_of_the_gradient_buffer()
    {
        using var encoder = new MoCo.Model.Nn.ResNet(TinyModels.Spec(groups: 2));
        var parameters = encoder.parameters().ToList();
        using var flat = FlatParameters.Adopt(parameters, gradients: true);
        var plan = GradientBucketPlan.Build(parameters, encoder.Segments, 4 * 1024);
        Assert.True(plan.Buckets.Count > 1);

        foreach (var bucket in plan.Buckets)
        {
            using var span = FlatAllReduce.SpanOf(bucket.Select(i => parameters[i].grad!).ToList());
            Assert.NotNull(span);
            Assert.Equal(bucket.Sum(i => parameters[i].numel()), span.numel());
        }
    }

    private static IntPtr Address(Tensor t) => StorageAddress.THSStorage_data_ptr(t.Handle) + (nint)(t.storage_offset() * t.ElementSize);

    /// <summary>Two ranks holding the same values: the sum doubles each element. Records what each call received.</summary>
    private sealed class DoublingCollective : ICollective
    {
        public List<(IntPtr Address, long Count)> Calls { get; } = [];

        public int Rank => 0;

        public int WorldSize => 2;

        public void AllReduceSum(Tensor tensor)
        {
            Calls.Add((Address(tensor), tensor.numel()));
            using var _ = no_grad();
            tensor.mul_(2);
        }

        public Tensor AllGather(Tensor local, IReadOnlyList<long> counts) => throw new NotSupportedException();

        public void Broadcast(Tensor tensor, int root) => throw new NotSupportedException();

        public void Dispose()
        {
        }
    }
}
