namespace MoCo.Actors.Collectives;

/// <summary>
/// What a completed <see cref="RingHandshake"/> yields: the peer's verified identity and the connection's two session
/// keys (32 bytes each, fresh for every connection), one per direction as this side sees them. The owner of the
/// session hands the keys to <see cref="RingFrameCipher"/>s and clears them (<see cref="ClearKeys"/>).
/// </summary>
/// <param name="Peer">The peer's identity, checked against this side's.</param>
/// <param name="SendKey">The key of the frames this side sends.</param>
/// <param name="ReceiveKey">The key of the frames this side receives.</param>
internal sealed record RingSession(RingIdentity Peer, byte[] SendKey, byte[] ReceiveKey)
{
    /// <summary>Overwrites both keys with zeros (once they are in a cipher, or when the connection is dropped).</summary>
    public void ClearKeys()
    {
        System.Security.Cryptography.CryptographicOperations.ZeroMemory(SendKey);
        System.Security.Cryptography.CryptographicOperations.ZeroMemory(ReceiveKey);
    }

    /// <summary>Leaves the keys out of the text (records print every property otherwise).</summary>
    private bool PrintMembers(System.Text.StringBuilder builder)
    {
        builder.Append(System.Globalization.CultureInfo.InvariantCulture, $"Peer = {Peer}, SendKey = ({SendKey.Length} bytes), ReceiveKey = ({ReceiveKey.Length} bytes)");
        return true;
    }
}
