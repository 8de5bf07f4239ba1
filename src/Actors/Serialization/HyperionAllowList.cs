using System.Collections.Immutable;
using System.Reflection;

namespace MoCo.Actors.Serialization;

/// <summary>
/// The types Hyperion may deserialize: every public concrete <see cref="IMocoMessage"/> of this assembly, plus the
/// enums, arrays and collections their fields hold, found by walking those fields. With
/// <c>disallow-unsafe-type = true</c> Hyperion refuses any other type named in a payload, so a journal row or a remote
/// message cannot make us instantiate a type we did not choose.
/// </summary>
/// <remarks>
/// Hyperion writes no type name for its primitives (numbers, <see cref="string"/>, <see cref="DateTimeOffset"/>, ...), so
/// they need no entry. A field declared as one of our message interfaces needs none either: the concrete types are all
/// listed. A field of any other kind fails the walk with a message naming it, so a new message type cannot silently
/// fall outside the list.
/// </remarks>
public static class HyperionAllowList
{
    private static readonly HashSet<Type> HyperionPrimitives =
    [
        typeof(bool), typeof(byte), typeof(sbyte), typeof(short), typeof(ushort), typeof(int), typeof(uint),
        typeof(long), typeof(ulong), typeof(float), typeof(double), typeof(decimal), typeof(char), typeof(string),
        typeof(Guid), typeof(DateTime), typeof(DateTimeOffset), typeof(byte[]),
    ];

    private static readonly HashSet<Type> ListInterfaces =
    [
        typeof(IReadOnlyList<>), typeof(IReadOnlyCollection<>), typeof(IEnumerable<>), typeof(IList<>), typeof(ICollection<>),
    ];

    /// <summary>The allowed types, ordered by full name.</summary>
    public static IReadOnlyList<Type> Types { get; } = Build(typeof(IMocoMessage).Assembly);

    /// <summary>The journal's types: every <see cref="IJournalMessage"/> of ours and what it holds.</summary>
    public static IReadOnlyList<Type> Journal { get; } = Build(typeof(IMocoMessage).Assembly, typeof(IJournalMessage));

    /// <summary>The types that cross between processes: every <see cref="IWireMessage"/> of ours and what it holds.</summary>
    public static IReadOnlyList<Type> Wire { get; } = Build(typeof(IMocoMessage).Assembly, typeof(IWireMessage));

    /// <summary>The message types: every public, concrete <see cref="IMocoMessage"/> in <paramref name="assembly"/>.</summary>
    /// <param name="assembly">The assembly to scan.</param>
    public static IReadOnlyList<Type> MessageTypes(Assembly assembly) => MessageTypes(assembly, typeof(IMocoMessage));

    /// <summary>The concrete public types of <paramref name="assembly"/> that implement <paramref name="marker"/>.</summary>
    public static IReadOnlyList<Type> MessageTypes(Assembly assembly, Type marker)
    {
        ArgumentNullException.ThrowIfNull(assembly);
        ArgumentNullException.ThrowIfNull(marker);
        return assembly.GetTypes()
            .Where(t => t.IsVisible && t.IsClass && !t.IsAbstract && marker.IsAssignableFrom(t))
            .OrderBy(t => t.FullName, StringComparer.Ordinal)
            .ToList();
    }

    /// <summary>The message types of <paramref name="assembly"/> and everything their fields need.</summary>
    /// <param name="assembly">The assembly to scan.</param>
    /// <exception cref="InvalidOperationException">A message has a field of a kind the walk does not know how to admit.</exception>
    public static IReadOnlyList<Type> Build(Assembly assembly) => Build(assembly, typeof(IMocoMessage));

    /// <summary>The types that <paramref name="marker"/>'s messages of <paramref name="assembly"/> and everything they hold need.</summary>
    public static IReadOnlyList<Type> Build(Assembly assembly, Type marker)
    {
        var allowed = new HashSet<Type>();
        var walk = new Queue<Type>(MessageTypes(assembly, marker));
        while (walk.Count > 0)
        {
            var type = walk.Dequeue();
            if (!allowed.Add(type))
            {
                continue;
            }

            const BindingFlags instance = BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic;
            for (var t = type; t is not null && t != typeof(object); t = t.BaseType)
            {
                foreach (var field in t.GetFields(instance | BindingFlags.DeclaredOnly))
                {
                    Admit(field.FieldType, $"{type.FullName}.{field.Name}", allowed, walk);
                }
            }
        }

        return allowed.OrderBy(t => t.FullName, StringComparer.Ordinal).ToList();
    }

    private static void Admit(Type type, string owner, HashSet<Type> allowed, Queue<Type> walk)
    {
        if (HyperionPrimitives.Contains(type))
        {
            return;
        }

        if (Nullable.GetUnderlyingType(type) is { } underlying)
        {
            Admit(underlying, owner, allowed, walk);
            return;
        }

        if (typeof(IMocoMessage).IsAssignableFrom(type))
        {
            if (type.IsClass && !type.IsAbstract)
            {
                walk.Enqueue(type);
            }

            // An interface or abstract base of ours: its concrete types are messages of their own.
            return;
        }

        if (type.IsEnum)
        {
            allowed.Add(type);
            return;
        }

        if (type.IsArray)
        {
            allowed.Add(type);
            Admit(type.GetElementType()!, owner, allowed, walk);
            return;
        }

        if (type.IsGenericType && type.Namespace == typeof(ImmutableList).Namespace)
        {
            allowed.Add(type);
            var arguments = type.GetGenericArguments();
            foreach (var argument in arguments)
            {
                Admit(argument, owner, allowed, walk);
            }

            if (arguments.Length == 2)
            {
                // Dictionaries travel as their key/value pairs.
                allowed.Add(typeof(KeyValuePair<,>).MakeGenericType(arguments));
            }

            return;
        }

        if (type.IsGenericType && ListInterfaces.Contains(type.GetGenericTypeDefinition()))
        {
            // A list declared by interface: admit the concrete lists we build it from.
            var element = type.GetGenericArguments()[0];
            allowed.Add(typeof(ImmutableList<>).MakeGenericType(element));
            allowed.Add(typeof(List<>).MakeGenericType(element));
            allowed.Add(element.MakeArrayType());
            Admit(element, owner, allowed, walk);
            return;
        }

        throw new InvalidOperationException(
            $"{owner} has type {type.FullName}, which the Hyperion allow-list cannot admit: use a primitive, an enum, an array, " +
            "an immutable collection, a list interface or another IMocoMessage record.");
    }
}
