using Akka.Actor;
using Akka.Configuration;
using Akka.Serialization;
using Hyperion;

namespace MoCo.Actors.Serialization;

/// <summary>
/// Akka's Hyperion serializer, reading its usual settings (<c>akka.actor.serialization-settings.hyperion</c>), with the
/// filter built from <c>allowed-types</c> replaced by an <see cref="AllowListTypeFilter"/> over the same types, so that
/// <c>disallow-unsafe-type = true</c> with an allow-list works in both directions (see the filter's remarks). Same
/// identifier and wire format as <see cref="HyperionSerializer"/>: journals written by either read with the other.
/// </summary>
public sealed class MocoHyperionSerializer : HyperionSerializer
{
    /// <summary>Created by Akka when the settings section is absent: Hyperion's defaults, no allow-list.</summary>
    /// <param name="system">The actor system.</param>
    public MocoHyperionSerializer(ExtendedActorSystem system)
        : base(system)
    {
    }

    /// <summary>Created by Akka with the <c>serialization-settings.hyperion</c> section.</summary>
    /// <param name="system">The actor system.</param>
    /// <param name="config">The settings section.</param>
    public MocoHyperionSerializer(ExtendedActorSystem system, Config config)
        : base(system, WithAllowListFilter(HyperionSerializerSettings.Create(config)))
    {
    }

    /// <summary>The settings with the filter built from <c>allowed-types</c> replaced by an <see cref="AllowListTypeFilter"/> over the same types.</summary>
    internal static HyperionSerializerSettings WithAllowListFilter(HyperionSerializerSettings settings)
    {
        if (settings.TypeFilter is not TypeFilter listed)
        {
            return settings;
        }

        return new HyperionSerializerSettings(
            settings.PreserveObjectReferences,
            settings.VersionTolerance,
            settings.KnownTypesProvider,
            settings.PackageNameOverrides,
            settings.Surrogates,
            settings.DisallowUnsafeType,
            new AllowListTypeFilter(listed.FilteredTypes));
    }
}
