using System.Runtime.Serialization;
using Akka.Actor;
using Akka.Serialization;

namespace MoCo.Actors.Serialization;

/// <summary>
/// Takes the place (and the identifier, 1) of Akka's default JSON serializer, which would otherwise build any type a
/// peer names from JSON: our processes never send JSON (every type that crosses a boundary is bound to a serializer of
/// ours or of Akka's, and <c>allow-unregistered-types = false</c> refuses the rest), so a JSON payload from the network
/// is refused, and so is an attempt to send a type that has no serializer of its own.
/// </summary>
public sealed class RefusingJsonSerializer : Serializer
{
    /// <summary>The identifier of Akka's JSON serializer, which this one replaces.</summary>
    public const int Id = 1;

    /// <summary>Created by Akka.</summary>
    /// <param name="system">The actor system.</param>
    public RefusingJsonSerializer(ExtendedActorSystem system)
        : base(system)
    {
    }

    /// <summary>Created by Akka when its <c>serialization-settings.json</c> section is present (it is, in Akka's defaults).</summary>
    /// <param name="system">The actor system.</param>
    /// <param name="config">The JSON serializer's settings, unused.</param>
    public RefusingJsonSerializer(ExtendedActorSystem system, Akka.Configuration.Config config)
        : base(system)
    {
        _ = config;
    }

    /// <inheritdoc />
    public override int Identifier => Id;

    /// <inheritdoc />
    public override bool IncludeManifest => true;

    /// <inheritdoc />
    public override byte[] ToBinary(object obj) =>
        throw new SerializationException($"{obj?.GetType().FullName ?? "null"} stays in its process: it has no serializer for the network (only IWireMessage types cross)");

    /// <inheritdoc />
    public override object FromBinary(byte[] bytes, Type type) =>
        throw new SerializationException($"refused a JSON message{(type is null ? "" : " said to be " + type.FullName)}: this cluster accepts no JSON from the network");
}
