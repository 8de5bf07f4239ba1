using System.Collections.Immutable;
using System.Text.RegularExpressions;
using Hyperion;

namespace MoCo.Actors.Serialization;

/// <summary>
/// A Hyperion type filter that admits exactly a set of types, whichever form of their name Hyperion asks about.
/// </summary>
/// <remarks>
/// Hyperion 0.12 asks its filter about the full assembly-qualified name when it serializes
/// (<c>Name, Assembly, Version=..., Culture=..., PublicKeyToken=...</c>) and about its short form when it deserializes
/// (<c>Name, Assembly</c>, with <c>,%core%</c> standing for the core library's version), while the filter that
/// <c>allowed-types</c> builds only knows the short form: with <c>disallow-unsafe-type = true</c> it refuses to serialize
/// even the types it lists. This filter compares names with versions, cultures, key tokens and the <c>%core%</c>
/// marker removed, so a type is admitted in both directions, and only the listed types are.
/// </remarks>
public sealed partial class AllowListTypeFilter : ITypeFilter
{
    private readonly ImmutableHashSet<string> _names;

    /// <summary>Admits <paramref name="names"/>, in any of Hyperion's name forms.</summary>
    /// <param name="names">Assembly-qualified type names, full or short.</param>
    public AllowListTypeFilter(IEnumerable<string> names)
    {
        ArgumentNullException.ThrowIfNull(names);
        _names = names.Select(Normalize).ToImmutableHashSet(StringComparer.Ordinal);
    }

    /// <summary>Admits <paramref name="types"/>.</summary>
    /// <param name="types">The allowed types.</param>
    public AllowListTypeFilter(IEnumerable<Type> types)
        : this(types.Select(t => t.AssemblyQualifiedName ?? throw new ArgumentException($"{t} has no assembly-qualified name.", nameof(types))))
    {
    }

    /// <summary>How many types are admitted.</summary>
    public int Count => _names.Count;

    /// <inheritdoc />
    public bool IsAllowed(string typeName)
    {
        return typeName is not null && _names.Contains(Normalize(typeName));
    }

    /// <summary>A type name without versions, cultures, public key tokens or Hyperion's <c>%core%</c> marker.</summary>
    /// <param name="typeName">An assembly-qualified name in any form.</param>
    public static string Normalize(string typeName)
    {
        ArgumentNullException.ThrowIfNull(typeName);
        var name = AssemblyDetails().Replace(typeName, string.Empty);
        return name.Replace(",%core%", string.Empty, StringComparison.Ordinal);
    }

    [GeneratedRegex(@",\s*(Version|Culture|PublicKeyToken)=[^,\]]*", RegexOptions.CultureInvariant)]
    private static partial Regex AssemblyDetails();
}
