namespace MoCo.Actors.Collectives;

/// <summary>A ring link failed: its peer closed it, stopped answering, or the link was shut down here.</summary>
internal sealed class RingLinkException : Exception
{
    public RingLinkException(string message, Exception? inner = null)
        : base(message, inner)
    {
    }
}
