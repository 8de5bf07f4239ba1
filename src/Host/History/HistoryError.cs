namespace MoCo.Host.History;

/// <summary>A history command cannot answer (no such run, several runs and no <c>--run</c>); the message says why in one line.</summary>
public sealed class HistoryError : Exception
{
    /// <summary>Creates the error.</summary>
    /// <param name="message">One line for the user.</param>
    public HistoryError(string message)
        : base(message)
    {
    }
}
