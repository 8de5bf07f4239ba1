namespace MoCo.Actors.Collectives;

/// <summary>A ring link failed: its peer closed it, stopped answering, or the link was shut down here.</summary>
internal sealed class RingLinkException : Exception
{
    public RingLinkException(string message, bool timedOut, Exception? inner = null)
        : base(message, inner)
    {
        TimedOut = timedOut;
    }

    /// <summary>Whether the operation's deadline passed (as opposed to a closed or broken connection).</summary>
    public bool TimedOut { get; }
}
