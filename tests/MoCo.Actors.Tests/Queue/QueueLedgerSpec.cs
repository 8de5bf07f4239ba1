using MoCo.Actors.Queue;

namespace MoCo.Actors.Tests.Queue;

/// <summary>The ledger against a queue simulated slot by slot.</summary>
public sealed class QueueLedgerSpec
{
    [Theory]
    [InlineData(40, 16)]  // K not a multiple of the batch: wrap-around inside a step
    [InlineData(64, 16)]
    [InlineData(10, 10)]
    [InlineData(7, 3)]
    public void Ledger_must_match_a_simulated_queue_at_every_step(int capacity, int keysPerStep)
    {
        var ledger = new QueueLedger(capacity, keysPerStep);
        var slots = Enumerable.Repeat(-1L, capacity).ToArray();
        long pointer = 0;
        for (long step = 0; step < 50; step++)
        {
            Assert.Equal(pointer, ledger.Pointer(step));
            Assert.Equal(slots, ledger.WrittenAt(step));
            int filled = slots.Count(s => s >= 0);
            Assert.Equal(filled, ledger.Filled(step));
            long? expectedAge = filled < capacity ? null : step - 1 - slots.Min();
            Assert.Equal(expectedAge, ledger.OldestKeyAge(step));

            for (int i = 0; i < keysPerStep; i++)
            {
                slots[(pointer + i) % capacity] = step;
            }

            pointer = (pointer + keysPerStep) % capacity;
        }
    }

    [Fact]
    public void A_full_queue_that_takes_whole_batches_holds_keys_at_most_K_over_n_minus_one_steps_old()
    {
        var ledger = new QueueLedger(4096, 256);
        Assert.Null(ledger.OldestKeyAge(15)); // 15 x 256 < 4096
        Assert.Equal(15, ledger.OldestKeyAge(16));
        Assert.Equal(15, ledger.OldestKeyAge(1_000_000));
    }

    [Fact]
    public void Ledger_must_refuse_a_batch_larger_than_the_queue()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new QueueLedger(8, 16));
    }
}
