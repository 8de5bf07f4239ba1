using System.Net;
using MoCo.Actors.Collectives;
using MoCo.Model.Collectives;
using Xunit.Abstractions;
using static MoCo.Actors.Tests.Collectives.Messages;
using static TorchSharp.torch;

namespace MoCo.Actors.Tests.Collectives;

/// <summary>
/// The ring's sealed frames (<see cref="DataPlaneProtection.AesGcm"/>): the same numbers as the unprotected ring, and a
/// man in the middle (<see cref="TamperingProxy"/> on rank 0's connection to rank 1) who flips, repeats, reorders, drops
/// or cuts a frame after the handshake makes the receiving rank fail with an integrity error naming rank 0, never
/// produce other numbers. <see cref="DataPlaneProtection.None"/> is shown to let the same tampering through silently.
/// </summary>
public sealed class TcpRingIntegrityTests(ITestOutputHelper output)
{
    private const int Chunk = 4096;
    private const long Elements = 10_001; // 2 ranks: blocks of 20004 and 20000 bytes, in segments of 4096 and a remainder

    [Theory]
    [InlineData(2, 10_001, 4096)]     // blocks of 5001 and 5000 floats: 4 whole segments and a remainder each
    [InlineData(3, 100_003, 16 * 1024)]
    [InlineData(3, 2, 1024)]          // fewer elements than ranks: an empty block
    public void Sealed_collectives_give_the_unprotected_rings_results_bit_for_bit(int world, long elements, int chunk)
    {
        var sealedResults = RunCollectives(world, elements, chunk, DataPlaneProtection.AesGcm);
        var plainResults = RunCollectives(world, elements, chunk, DataPlaneProtection.None);

        for (int r = 0; r < world; r++)
        {
            for (int i = 0; i < sealedResults[r].Length; i++)
            {
                Assert.True(sealedResults[r][i].IsSameAs(plainResults[r][i]), $"rank {r}, result {i}: the sealed ring's bits differ from the unprotected ring's");
            }
        }
    }

    [Theory]
    [InlineData("a byte of a segment's ciphertext", 1, 100)]
    [InlineData("a byte of a segment's tag", 1, -1)]
    [InlineData("a byte of a segment's length", 1, 2)]
    [InlineData("a byte of the operation header's frame", 0, 10)]
    public void A_flipped_byte_fails_the_receiver_with_an_integrity_error_naming_the_sender(string what, int frame, int offset)
    {
        output.WriteLine($"flipping {what}");
        var (errors, endpoints, _, _) = ThroughProxy(DataPlaneProtection.AesGcm, proxy => TamperingProxy.ForFrames(proxy, Handshake, (i, f) =>
        {
            if (i == frame)
            {
                f[offset >= 0 ? offset : f.Length + offset] ^= 0x01;
            }
            return ([f], false);
        }));

        AssertIntegrityFailure(errors, endpoints);
    }

    [Theory]
    [InlineData("replayed")]   // frame 3 replaced by a copy of frame 2 (same length: only the counter tells them apart)
    [InlineData("duplicated")] // frame 2 twice
    [InlineData("reordered")]
    [InlineData("dropped")]
    [InlineData("cut")]
    public void A_replayed_duplicated_reordered_dropped_or_cut_frame_fails_the_receiver_with_an_integrity_error(string tampering)
    {
        byte[]? held = null;
        var (errors, endpoints, _, _) = ThroughProxy(DataPlaneProtection.AesGcm, proxy => TamperingProxy.ForFrames(proxy, Handshake, (i, f) =>
            (tampering, i) switch
            {
                ("replayed", 2) => ([.. Hold(f), f], false),
                ("replayed", 3) => ([held!], false),
                ("duplicated", 2) => ([f, f], false),
                ("reordered", 2) => (Hold(f), false),
                ("reordered", 3) => ([f, held!], false),
                ("dropped", 2) => ([], false),
                ("cut", 2) => ([f[..(f.Length / 2)]], true),
                _ => ([f], false),
            }));

        AssertIntegrityFailure(errors, endpoints);
        if (tampering == "cut")
        {
            AssertMentions(errors[1]!.Message, "truncated");
        }

        byte[][] Hold(byte[] frame)
        {
            held = frame;
            return [];
        }
    }

    [Fact]
    public void An_unprotected_ring_passes_a_flipped_byte_silently()
    {
        // what protection none means: the same man in the middle changes the sum and nobody notices
        var (errors, _, results, _) = ThroughProxy(DataPlaneProtection.None, proxy => TamperingProxy.ForBytes(proxy, Handshake, (position, block, count) =>
        {
            long target = OperationHeader.Size + 1003; // the top byte (sign and exponent) of a float of the first segment
            if (position <= target && target < position + count)
            {
                block[target - position] ^= 0x40;
            }
        }));

        Assert.All(errors, e => Assert.Null(e));
        var expected = Inputs().Aggregate((a, b) => a + b);
        Assert.False(results[1].IsSameAs(expected), "the flipped byte did not change the result: the proxy did not tamper");
    }

    [Theory]
    [InlineData(DataPlaneProtection.AesGcm, false)]
    [InlineData(DataPlaneProtection.None, true)]
    public void Sealed_frames_carry_no_tensor_bytes_in_the_clear(DataPlaneProtection protection, bool visible)
    {
        var (errors, _, _, forwarded) = ThroughProxy(protection, proxy => TamperingProxy.ForBytes(proxy, Handshake, (_, _, _) => { }));

        Assert.All(errors, e => Assert.Null(e));
        // rank 0 sends its own block first: 64 bytes of it, as they are in memory
        var pattern = Inputs()[0].narrow(0, 0, 16).bytes.ToArray();
        bool found = forwarded.AsSpan().IndexOf(pattern) >= 0;
        Assert.Equal(visible, found);
    }

    [Fact]
    public void Ranks_that_protect_the_data_plane_differently_refuse_each_other()
    {
        var listeners = LocalRing.Listen(2);
        var endpoints = listeners.Select(l => (EndPoint)l.EndPoint).ToArray();
        var outcomes = LocalRing.Connect(listeners, r => LocalRing.Options(r, endpoints) with
        {
            ConnectTimeout = TimeSpan.FromSeconds(5),
            Protection = r == 1 ? DataPlaneProtection.None : DataPlaneProtection.AesGcm,
        });
        LocalRing.DisposeAll(outcomes.Select(o => o.Ring));

        foreach (var (ring, error) in outcomes)
        {
            Assert.Null(ring);
            AssertMentions(Assert.IsType<CollectiveException>(error).Message, "moco.cluster.data-plane-protection");
        }
        AssertMentions(outcomes[0].Error!.Message, "protects the data plane with none, this rank with aes-gcm");
    }

    /// <summary>The client's handshake bytes on the tests' connections (run id "test-run").</summary>
    private static int Handshake => RingHandshake.ClientHelloBytes("test-run") + RingHandshake.FinishBytes;

    /// <summary>Rank r's input: seeded normal values, different on every rank.</summary>
    private static Tensor[] Inputs() =>
        Enumerable.Range(0, 2).Select(r => randn([Elements], generator: new Generator((ulong)(2000 + r)))).ToArray();

    /// <summary>An all-reduce, a broadcast from rank 1 and an all-gather of uneven rows, on a ring protected as asked; each rank's results.</summary>
    private static Tensor[][] RunCollectives(int world, long elements, int chunk, DataPlaneProtection protection)
    {
        var ring = LocalRing.Form(world, o => o with { Protection = protection }, chunk);
        try
        {
            var results = new Tensor[world][];
            LocalRing.RunAll(ring, rank =>
            {
                int r = rank.Rank;
                var sum = randn([elements], generator: new Generator((ulong)(3000 + r)));
                rank.AllReduceSum(sum);
                var weights = r == 1 ? randn([elements], generator: new Generator(77)) : zeros(elements);
                rank.Broadcast(weights, root: 1);
                var counts = Enumerable.Range(0, world).Select(b => (long)(b * 3 + 1)).ToArray();
                var gathered = rank.AllGather(full([counts[r], 5], r + 0.5f), counts);
                results[r] = [sum, weights, gathered];
            });
            return results;
        }
        finally
        {
            LocalRing.DisposeAll(ring);
        }
    }

    /// <summary>
    /// A ring of 2 whose connection from rank 0 to rank 1 goes through the proxy (rank 0 is told rank 1 listens there),
    /// and one all-reduce of <see cref="Elements"/> floats in segments of <see cref="Chunk"/>: each rank's error and
    /// result, and what the proxy forwarded after the handshake.
    /// </summary>
    private static Outcome ThroughProxy(DataPlaneProtection protection, Func<IPEndPoint, TamperingProxy> makeProxy)
    {
        var listeners = LocalRing.Listen(2);
        var endpoints = listeners.Select(l => (EndPoint)l.EndPoint).ToArray();
        using var proxy = makeProxy(listeners[1].EndPoint);
        var viaProxy = new EndPoint[] { endpoints[0], proxy.EndPoint };
        var outcomes = LocalRing.Connect(listeners, r => LocalRing.Options(r, r == 0 ? viaProxy : endpoints, Chunk) with
        {
            Protection = protection,
            OperationTimeout = TimeSpan.FromSeconds(30),
        });
        var ring = outcomes.Select(o => o.Ring ?? throw new Xunit.Sdk.XunitException($"the ring did not form: {o.Error}")).ToArray();
        try
        {
            var results = Inputs();
            var errors = LocalRing.Run(ring, rank => rank.AllReduceSum(results[rank.Rank]));
            return new Outcome(errors, endpoints, results, proxy.Forwarded);
        }
        finally
        {
            LocalRing.DisposeAll(ring);
        }
    }

    /// <summary>Rank 1 (the receiver) fails with an integrity error naming rank 0 and its address; rank 0 fails too, without hanging.</summary>
    private void AssertIntegrityFailure(Exception?[] errors, EndPoint[] endpoints)
    {
        for (int r = 0; r < errors.Length; r++)
        {
            output.WriteLine($"rank {r}: {errors[r]?.Message ?? "succeeded"}");
        }
        var receiver = Assert.IsType<CollectiveException>(errors[1]);
        Assert.IsType<RingLinkException>(receiver.InnerException);
        AssertMentions(receiver.Message, "integrity check failed");
        AssertMentions(receiver.Message, $"rank 0 at {endpoints[0]}");
        Assert.StartsWith("rank 1: all-reduce #1", receiver.Message);
        Assert.IsType<CollectiveException>(errors[0]); // its successor hung up on it
    }

    private sealed record Outcome(Exception?[] Errors, EndPoint[] Endpoints, Tensor[] Results, byte[] Forwarded);
}
