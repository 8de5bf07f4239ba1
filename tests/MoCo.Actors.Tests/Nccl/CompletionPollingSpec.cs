using System.Diagnostics;
using MoCo.Actors.Collectives.Nccl;

namespace MoCo.Actors.Tests.Nccl;

/// <summary>The deadline loop every NCCL wait goes through, driven by plain functions instead of a communicator.</summary>
public sealed class CompletionPollingSpec
{
    [Fact]
    public void Polling_must_return_true_as_soon_as_the_work_is_done()
    {
        var polls = 0;

        var done = CompletionPolling.Until(() => ++polls == 3, TimeSpan.FromSeconds(10));

        Assert.True(done);
        Assert.Equal(3, polls);
    }

    [Fact]
    public void Polling_must_give_up_after_the_timeout_when_the_work_never_finishes()
    {
        var polls = 0;
        var clock = Stopwatch.StartNew();

        var done = CompletionPolling.Until(() => { polls++; return false; }, TimeSpan.FromMilliseconds(100));

        Assert.False(done);
        // At least the timeout; the bound above only guards against a loop that forgets its deadline (a loaded CI host is slow).
        Assert.InRange(clock.Elapsed, TimeSpan.FromMilliseconds(100), TimeSpan.FromSeconds(5));
        Assert.True(polls > 1);
    }

    [Fact]
    public void Polling_must_end_with_the_exception_of_a_failed_poll()
    {
        var polls = 0;

        var failure = Assert.Throws<InvalidOperationException>(
            () => CompletionPolling.Until(() => ++polls < 2 ? false : throw new InvalidOperationException("remote error"), TimeSpan.FromSeconds(10)));

        Assert.Equal("remote error", failure.Message);
        Assert.Equal(2, polls);
    }

    [Fact]
    public void Work_already_done_must_count_even_with_a_zero_timeout()
    {
        Assert.True(CompletionPolling.Until(() => true, TimeSpan.Zero));
        Assert.False(CompletionPolling.Until(() => false, TimeSpan.Zero));
    }
}
