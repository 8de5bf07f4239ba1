using MoCo.Actors.Collectives;

namespace MoCo.Actors.Tests.Collectives;

/// <summary>Sealed frames without sockets: what opens, what does not, and the counter's limit.</summary>
public sealed class RingFrameCipherTests
{
    private static readonly byte[] Key = Enumerable.Range(0, 32).Select(i => (byte)(i * 11 + 1)).ToArray();
    private static readonly byte[] Context = Enumerable.Range(0, OperationHeader.Size).Select(i => (byte)i).ToArray();

    [Fact]
    public void A_frame_opens_in_order_under_the_same_key_and_context_and_hides_its_plaintext()
    {
        using var seal = new RingFrameCipher(Key);
        using var open = new RingFrameCipher(Key);
        var plaintext = Enumerable.Range(0, 1000).Select(i => (byte)(i % 251)).ToArray();
        var frames = Enumerable.Range(0, 3).Select(_ => new byte[plaintext.Length + RingFrameCipher.Overhead]).ToArray();
        foreach (var frame in frames)
        {
            seal.Seal(plaintext, Context, frame);
        }

        Assert.Equal((uint)plaintext.Length, RingFrameCipher.AnnouncedLength(frames[0]));
        Assert.Equal(-1, frames[0].AsSpan().IndexOf(plaintext.AsSpan(0, 16)));
        Assert.NotEqual(frames[0], frames[1]); // a fresh nonce per frame
        var opened = new byte[plaintext.Length];
        foreach (var frame in frames)
        {
            Assert.True(open.TryOpen(frame, Context, opened));
            Assert.Equal(plaintext, opened);
        }
        Assert.Equal(3UL, open.Frames);
    }

    [Fact]
    public void A_frame_out_of_order_or_under_another_context_does_not_open()
    {
        using var seal = new RingFrameCipher(Key);
        var first = new byte[100 + RingFrameCipher.Overhead];
        var second = new byte[100 + RingFrameCipher.Overhead];
        seal.Seal(new byte[100], Context, first);
        seal.Seal(new byte[100], Context, second);
        var opened = new byte[100];

        using (var open = new RingFrameCipher(Key))
        {
            Assert.False(open.TryOpen(second, Context, opened)); // skipped one
        }
        using (var open = new RingFrameCipher(Key))
        {
            var otherOperation = Context.ToArray();
            otherOperation[20] ^= 1;
            Assert.False(open.TryOpen(first, otherOperation, opened)); // the same frame in another operation
        }
        using (var open = new RingFrameCipher(Key))
        {
            Assert.True(open.TryOpen(first, Context, opened));
            Assert.False(open.TryOpen(first, Context, opened)); // replayed
        }
    }

    [Fact]
    public void The_counter_stops_before_it_could_wrap()
    {
        using var seal = new RingFrameCipher(Key) { Frames = RingFrameCipher.MaxFrames - 1 };
        var frame = new byte[10 + RingFrameCipher.Overhead];
        seal.Seal(new byte[10], Context, frame);

        var e = Assert.Throws<InvalidOperationException>(() => seal.Seal(new byte[10], Context, frame));
        Assert.Contains("its limit", e.Message);
    }

    [Fact]
    public void Sealing_and_opening_allocate_nothing_per_frame()
    {
        using var seal = new RingFrameCipher(Key);
        using var open = new RingFrameCipher(Key);
        var plaintext = new byte[64 * 1024];
        var frame = new byte[plaintext.Length + RingFrameCipher.Overhead];
        var opened = new byte[plaintext.Length];
        seal.Seal(plaintext, Context, frame); // first use: whatever the runtime sets up once
        Assert.True(open.TryOpen(frame, Context, opened));

        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 100; i++)
        {
            seal.Seal(plaintext, Context, frame);
            open.TryOpen(frame, Context, opened);
        }
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(0, allocated);
    }
}
