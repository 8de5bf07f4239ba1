namespace MoCo.Actors.Collectives;

/// <summary>The configured data plane cannot run on this host; the message names what is missing and what to set instead.</summary>
public sealed class CollectiveBackendUnavailableException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">What is missing and what to do.</param>
    public CollectiveBackendUnavailableException(string message)
        : base(message)
    {
    }
}
