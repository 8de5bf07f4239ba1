namespace MoCo.Actors.Collectives;

/// <summary>
/// A handshake did not complete. With a <see cref="Refusal"/> one side refused the other for a stated reason (a
/// definite answer: retrying will not help); without one the connection broke, timed out or spoke another
/// protocol (a stranger, or a peer that is not ready).
/// </summary>
internal sealed class RingHandshakeException : Exception
{
    public RingHandshakeException(string message, HandshakeRefusal refusal = HandshakeRefusal.None, Exception? inner = null)
        : base(message, inner)
    {
        Refusal = refusal;
    }

    /// <summary>Why the handshake was refused, or <see cref="HandshakeRefusal.None"/> when it broke off.</summary>
    public HandshakeRefusal Refusal { get; }

    /// <summary>Whether one side refused the other (as opposed to a broken or foreign connection).</summary>
    public bool IsRefusal => Refusal != HandshakeRefusal.None;
}
