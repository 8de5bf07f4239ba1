using System.Diagnostics;

namespace MoCo.Actors.Collectives.Nccl;

/// <summary>
/// Waits for asynchronous native work by polling, with a deadline: a non-blocking NCCL communicator and a CUDA stream
/// both say "not yet" rather than block, so a dead peer shows up as a deadline passed instead of a hung thread.
/// </summary>
internal static class CompletionPolling
{
    /// <summary>
    /// Calls <paramref name="poll"/> until it returns true (true) or <paramref name="timeout"/> has passed since the first
    /// call (false). Spins, then yields, then sleeps a millisecond at a time, so short collectives return within
    /// microseconds and long ones cost little CPU. An exception from <paramref name="poll"/> ends the wait.
    /// </summary>
    /// <param name="poll">One look at the work: true when it is done; throws when it failed.</param>
    /// <param name="timeout">How long to keep looking.</param>
    public static bool Until(Func<bool> poll, TimeSpan timeout)
    {
        ArgumentNullException.ThrowIfNull(poll);
        ArgumentOutOfRangeException.ThrowIfLessThan(timeout, TimeSpan.Zero);
        var started = Stopwatch.GetTimestamp();
        var spinner = new SpinWait();
        while (true)
        {
            if (poll())
            {
                return true;
            }

            if (Stopwatch.GetElapsedTime(started) >= timeout)
            {
                return false;
            }

            spinner.SpinOnce();
        }
    }
}
