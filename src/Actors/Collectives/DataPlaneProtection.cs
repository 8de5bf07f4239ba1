namespace MoCo.Actors.Collectives;

/// <summary>
/// What protects the TCP ring's bytes after its handshake: <c>moco.cluster.data-plane-protection = aes-gcm | none</c>.
/// The handshake authenticates every connection either way; the numeric values travel in it, so that two ranks that
/// chose differently refuse each other instead of reading sealed frames as tensor bytes.
/// </summary>
public enum DataPlaneProtection : byte
{
    /// <summary>
    /// <c>aes-gcm</c> (the default): every header and segment travels in a frame sealed with AES-256-GCM under the
    /// direction's session key, numbered by a per-direction counter; an altered, reordered, replayed, dropped or cut
    /// frame fails the operation. The data is encrypted too.
    /// </summary>
    AesGcm = 1,

    /// <summary>
    /// <c>none</c>, for benchmarking only: the handshake still authenticates the peers, but the bytes that follow travel
    /// in the clear with no integrity check, so anyone on the path can read or alter gradients and weights.
    /// </summary>
    None = 2,
}

/// <summary>Reads and names <see cref="DataPlaneProtection"/> values as the configuration writes them.</summary>
public static class DataPlaneProtections
{
    /// <summary>The setting's key, for messages.</summary>
    public const string SettingKey = "moco.cluster.data-plane-protection";

    /// <summary>Reads the setting's value: <c>aes-gcm</c> or <c>none</c>, in any case, around any spaces.</summary>
    /// <param name="value">The configured text.</param>
    /// <exception cref="FormatException">Any other value; the message names the key and the valid values.</exception>
    public static DataPlaneProtection Parse(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        return value.Trim().ToLowerInvariant() switch
        {
            "aes-gcm" => DataPlaneProtection.AesGcm,
            "none" => DataPlaneProtection.None,
            _ => throw new FormatException($"{SettingKey} must be aes-gcm or none (none only for benchmarking); got '{value}'"),
        };
    }

    /// <summary>The value as the configuration writes it: <c>aes-gcm</c> or <c>none</c>.</summary>
    public static string Name(this DataPlaneProtection protection) => protection switch
    {
        DataPlaneProtection.AesGcm => "aes-gcm",
        DataPlaneProtection.None => "none",
        _ => $"protection {(byte)protection}",
    };
}
