using System.Runtime.Serialization;
using System.Security.Cryptography;
using Akka.Actor;
using Akka.Configuration;
using Akka.Serialization;

namespace MoCo.Actors.Serialization;

/// <summary>
/// The serializer of the messages that cross between processes (<see cref="IWireMessage"/>): Hyperion restricted to an
/// allow-list of those types (<see cref="HyperionAllowList.Wire"/>), and every payload authenticated with HMAC-SHA256
/// under a key derived from the cluster's secret (<see cref="DeriveKey"/>). A payload whose MAC does not verify is
/// refused before Hyperion reads a byte of it: a process with the cluster's certificate but without its secret (or a
/// process of another cluster) can associate, but cannot make any of our actors accept a message.
/// Format: one version byte, the 32-byte MAC of the Hyperion payload, the payload. Settings section:
/// <c>akka.actor.serialization-settings.moco-wire</c> (<c>key</c>: the base64 key; <c>allowed-types</c>,
/// <c>disallow-unsafe-type</c> as Hyperion's).
/// </summary>
public sealed class MocoWireSerializer : HyperionSerializer
{
    /// <summary>This serializer's identifier (outside Akka's reserved 0–40 and Hyperion's −5).</summary>
    public const int Id = 4177;

    /// <summary>The serializer's name in <c>akka.actor.serializers</c>.</summary>
    public const string Name = "moco-wire";

    /// <summary>Bytes of the key.</summary>
    public const int KeyBytes = 32;

    private const byte Version = 1;
    private const int MacBytes = 32;

    private readonly byte[] _key;

    /// <summary>Created by Akka with the <c>serialization-settings.moco-wire</c> section.</summary>
    /// <param name="system">The actor system.</param>
    /// <param name="config">The settings section.</param>
    public MocoWireSerializer(ExtendedActorSystem system, Config config)
        : base(system, MocoHyperionSerializer.WithAllowListFilter(HyperionSerializerSettings.Create(config)))
    {
        var text = config.GetString("key", "");
        byte[] key;
        try
        {
            key = Convert.FromBase64String(text);
        }
        catch (FormatException e)
        {
            throw new ConfigurationException($"akka.actor.serialization-settings.{Name}.key is not base64: {e.Message}");
        }

        if (key.Length < KeyBytes)
        {
            throw new ConfigurationException($"akka.actor.serialization-settings.{Name}.key must hold at least {KeyBytes} bytes, not {key.Length}");
        }

        _key = key;
    }

    /// <inheritdoc />
    public override int Identifier => Id;

    /// <summary>The message key of a cluster: HKDF-SHA256 of its shared secret, bound to this use.</summary>
    /// <param name="secret">The cluster's shared secret (MOCO_CLUSTER_SECRET) as bytes.</param>
    public static byte[] DeriveKey(ReadOnlySpan<byte> secret) =>
        HKDF.DeriveKey(HashAlgorithmName.SHA256, secret.ToArray(), KeyBytes, salt: [], info: "moco/akka-messages/v1"u8.ToArray());

    /// <inheritdoc />
    public override byte[] ToBinary(object obj)
    {
        var payload = base.ToBinary(obj);
        var framed = new byte[1 + MacBytes + payload.Length];
        framed[0] = Version;
        HMACSHA256.HashData(_key, payload, framed.AsSpan(1, MacBytes));
        payload.CopyTo(framed.AsSpan(1 + MacBytes));
        return framed;
    }

    /// <inheritdoc />
    public override object FromBinary(byte[] bytes, Type type)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        if (bytes.Length < 1 + MacBytes || bytes[0] != Version)
        {
            throw new SerializationException($"refused a message of {bytes.Length} bytes: not a {Name} frame (version {(bytes.Length > 0 ? bytes[0] : -1)})");
        }

        var payload = bytes.AsSpan(1 + MacBytes);
        Span<byte> expected = stackalloc byte[MacBytes];
        HMACSHA256.HashData(_key, payload, expected);
        if (!CryptographicOperations.FixedTimeEquals(expected, bytes.AsSpan(1, MacBytes)))
        {
            throw new SerializationException($"refused a message{(type is null ? "" : " said to be " + type.Name)}: its HMAC does not verify under "
                + "this cluster's key (a sender without the cluster's secret, MOCO_CLUSTER_SECRET, or a node of another cluster)");
        }

        return base.FromBinary(payload.ToArray(), type!);
    }
}
