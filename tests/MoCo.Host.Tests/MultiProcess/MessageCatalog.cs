using System.Collections;
using System.Collections.Immutable;
using System.Reflection;
using MoCo.Actors;
using MoCo.Actors.Run;

namespace MoCo.Host.Tests.MultiProcess;

/// <summary>One instance of every message, event and snapshot type of ours (<see cref="IMocoMessage"/>), built by reflection with hostile-looking values.</summary>
public static class MessageCatalog
{
    /// <summary>Every concrete public type of MoCo.Actors that is an <see cref="IMocoMessage"/>, one instance each.</summary>
    public static IReadOnlyList<object> Every() =>
        typeof(IMocoMessage).Assembly.GetTypes()
            .Where(t => t.IsVisible && t.IsClass && !t.IsAbstract && typeof(IMocoMessage).IsAssignableFrom(t))
            .OrderBy(t => t.FullName, StringComparer.Ordinal)
            .Select(t => Create(t, depth: 0))
            .ToList();

    private static object Create(Type type, int depth)
    {
        var instance = type.GetProperty("Instance", BindingFlags.Public | BindingFlags.Static);
        if (instance is not null && instance.PropertyType == type)
        {
            return instance.GetValue(null)!;
        }

        if (type == typeof(RunState))
        {
            return RunState.Empty;
        }

        var constructor = type.GetConstructors().OrderByDescending(c => c.GetParameters().Length).First();
        var arguments = constructor.GetParameters().Select(p => Value(p.ParameterType, depth + 1)).ToArray();
        return constructor.Invoke(arguments);
    }

    private static object? Value(Type type, int depth)
    {
        if (type == typeof(string))
        {
            return "/tmp/intruder"; // a path where a path is taken, a name elsewhere
        }

        if (type == typeof(int))
        {
            return 1;
        }

        if (type == typeof(long))
        {
            return long.MaxValue;
        }

        if (type == typeof(double))
        {
            return 1.0;
        }

        if (type == typeof(bool))
        {
            return true;
        }

        if (type == typeof(byte[]))
        {
            return new byte[32];
        }

        if (type == typeof(DateTimeOffset))
        {
            return DateTimeOffset.UnixEpoch;
        }

        if (type.IsEnum)
        {
            return Enum.GetValues(type).GetValue(0);
        }

        if (Nullable.GetUnderlyingType(type) is not null)
        {
            return null;
        }

        if (type.IsGenericType && (type.GetGenericTypeDefinition() == typeof(IReadOnlyList<>) || type.GetGenericTypeDefinition() == typeof(ImmutableList<>)))
        {
            var element = type.GetGenericArguments()[0];
            var list = (IList)Activator.CreateInstance(typeof(List<>).MakeGenericType(element))!;
            list.Add(Value(element, depth + 1));
            return type.GetGenericTypeDefinition() == typeof(ImmutableList<>)
                ? typeof(ImmutableList).GetMethods().First(m => m.Name == "CreateRange" && m.GetParameters().Length == 1).MakeGenericMethod(element).Invoke(null, [list])
                : list;
        }

        if (typeof(IMocoMessage).IsAssignableFrom(type) && depth < 4)
        {
            var concrete = type.IsAbstract || type.IsInterface
                ? typeof(IMocoMessage).Assembly.GetTypes().First(t => t.IsClass && !t.IsAbstract && type.IsAssignableFrom(t))
                : type;
            return Create(concrete, depth);
        }

        return type.IsValueType ? Activator.CreateInstance(type) : null;
    }
}
