using MoCo.Model.Training;
using static TorchSharp.torch;

namespace MoCo.Model.Tests;

public class StateDigestTests
{
    private static List<KeyValuePair<string, Tensor>> State(int seed)
    {
        using var g = new TorchSharp.torch.Generator((ulong)seed);
        return
        [
            new("model.w", randn([64, 3, 3, 3], generator: g)),
            new("model.b", randn([64], dtype: ScalarType.BFloat16, generator: g)),
            new("model.ptr", tensor(17L)),
            new("optimizer.m", zeros(10)),
        ];
    }

    [Fact]
    public void Equal_states_have_equal_digests_and_any_change_of_one_bit_or_position_shows()
    {
        var a = StateDigest.Compute(State(1));
        Assert.Equal(a, StateDigest.Compute(State(1)) with { Checksums = a.Checksums });
        Assert.Equal(a.Digest, StateDigest.Compute(State(1)).Digest);

        // the lowest bit of one float's mantissa, in the first tensor
        var flipped = State(1);
        var w = flipped[0].Value;
        float v = w[5, 1, 2, 0].item<float>();
        w[5, 1, 2, 0] = BitConverter.Int32BitsToSingle(BitConverter.SingleToInt32Bits(v) ^ 1);
        var b = StateDigest.Compute(flipped);
        Assert.NotEqual(a.Digest, b.Digest);
        Assert.Equal(0, b.FirstDifference(a.Checksums));

        // two values swapped in the bf16 tensor: the same multiset, another order
        var swapped = State(1);
        var t = swapped[1].Value;
        var (x, y) = (t[3].clone(), t[40].clone());
        t[3] = y;
        t[40] = x;
        Assert.Equal(1, StateDigest.Compute(swapped).FirstDifference(a.Checksums));

        // the pointer: an integer buffer
        var moved = State(1);
        moved[2].Value.fill_(18);
        Assert.Equal(2, StateDigest.Compute(moved).FirstDifference(a.Checksums));
    }

    [Fact]
    public void Computing_a_digest_leaves_every_tensor_as_it_was()
    {
        // The queue pointer is an int64 tensor: a checksum that multiplied its flattened view in place moved the
        // pointer to garbage (found by the quickstart: narrow's start out of range one chunk later).
        var state = State(2);
        var before = state.Select(kv => kv.Value.clone()).ToList();
        StateDigest.Compute(state);
        StateDigest.Compute(state);
        for (int i = 0; i < state.Count; i++)
        {
            Assert.True(state[i].Value.equal(before[i]).all().item<bool>(), $"{state[i].Key} changed");
        }
        Assert.Equal(17L, state[2].Value.item<long>());
    }

    [Fact]
    public void A_checksum_is_the_formula_computed_by_hand()
    {
        // Σ v_i · (2i+1) · 0x9E3779B97F4A7C15 mod 2^64, v_i = mantissa·2^24·4096 + exponent + 2048 (frexp), by hand
        var values = new float[] { 1.5f, -2.0f, 1e-30f };
        ulong expected = 0;
        for (int i = 0; i < values.Length; i++)
        {
            var (mantissa, exponent) = Frexp(values[i]);
            long v = (long)(mantissa * 16777216.0) * 4096 + exponent + 2048;
            expected = unchecked(expected + (ulong)v * ((ulong)(2 * i + 1) * 0x9E3779B97F4A7C15UL));
        }

        Assert.Equal(unchecked((long)expected), StateDigest.Checksum(tensor(values)));
        Assert.Equal(unchecked((long)(42UL * 0x9E3779B97F4A7C15UL)), StateDigest.Checksum(tensor(42L)));
    }

    /// <summary>x = mantissa · 2^exponent with |mantissa| in [0.5, 1), as C's frexp.</summary>
    private static (double Mantissa, int Exponent) Frexp(double x)
    {
        int exponent = (int)Math.Floor(Math.Log2(Math.Abs(x))) + 1;
        return (x / Math.Pow(2, exponent), exponent);
    }
}

/// <summary>
/// The checksum under another torch thread count. set_num_threads is process-wide, and changing it while another test
/// class runs libtorch kernels on its threads is not something the product ever does. One run of the model's tests
/// (all four assemblies at once) aborted 13 s in with the test host crashed; this test was the only one that changed the
/// thread count, and the only one new since the runs that passed. Not reproduced since (alone, and beside the actors'
/// tests, with --blame-crash); it runs alone now, after the parallel classes.
/// </summary>
[Collection(TorchThreadsCollection.Name)]
public class StateDigestThreadTests
{
    [Fact]
    public void The_checksum_does_not_depend_on_the_number_of_threads()
    {
        // integer sums wrap the same way in any order: the parallel reduction cannot change them
        var big = randn(1 << 20);
        int threads = get_num_threads();
        try
        {
            set_num_threads(1);
            long one = StateDigest.Checksum(big);
            set_num_threads(Math.Max(2, Environment.ProcessorCount));
            Assert.Equal(one, StateDigest.Checksum(big));
        }
        finally
        {
            set_num_threads(threads);
        }
    }
}

/// <summary>Tests that change process-wide torch settings (the thread count) run in this collection, never beside others.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class TorchThreadsCollection
{
    /// <summary>The collection's name.</summary>
    public const string Name = "torch threads";
}
