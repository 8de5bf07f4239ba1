using System.Globalization;
using System.Reflection;
using System.Text.Json;
using System.Text.RegularExpressions;
using Akka.Configuration;
using Akka.Configuration.Hocon;

namespace MoCo.Host.Configuration;

/// <summary>
/// Reads a HOCON section into an immutable settings record, once: every key must name a property of the
/// record (kebab-case), or the read fails naming the key, where it came from, and the closest valid key.
/// </summary>
public static partial class SettingsReader
{
    public static T Read<T>(Config config, string section, string source)
        where T : new()
    {
        var properties = typeof(T).GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => p.CanWrite)
            .ToDictionary(p => JsonNamingPolicy.KebabCaseLower.ConvertName(p.Name), p => p);
        object settings = new T();
        if (!config.HasPath(section))
        {
            return (T)settings;
        }
        var obj = config.GetValue(section).GetObject();
        foreach (var (key, value) in obj.Items)
        {
            if (!properties.TryGetValue(key, out var property))
            {
                throw new ConfigurationError($"unknown key '{section}.{key}' in {source}{Suggest(key, properties.Keys)}");
            }
            try
            {
                property.SetValue(settings, Convert(value, property.PropertyType));
            }
            catch (Exception e) when (e is FormatException or OverflowException or InvalidCastException or ConfigurationException or ArgumentException)
            {
                throw new ConfigurationError($"'{section}.{key}' in {source} must be {Describe(property.PropertyType)}: {e.Message}");
            }
        }
        return (T)settings;
    }

    /// <summary>Fails on a sub-section of <paramref name="root"/> that is none of <paramref name="known"/> (a mistyped section name).</summary>
    /// <param name="config">The configuration.</param>
    /// <param name="root">The root, e.g. <c>moco</c>.</param>
    /// <param name="known">The sub-sections the host reads.</param>
    /// <param name="source">Where the configuration came from, for the message.</param>
    public static void CheckSections(Config config, string root, IReadOnlyList<string> known, string source)
    {
        if (!config.HasPath(root))
        {
            return;
        }

        foreach (var key in config.GetValue(root).GetObject().Items.Keys)
        {
            if (!known.Contains(key))
            {
                throw new ConfigurationError($"unknown section '{root}.{key}' in {source}{Suggest(key, known)}");
            }
        }
    }

    /// <summary>The keys a section may hold, for error messages and environment variables.</summary>
    public static IReadOnlyDictionary<string, Type> Keys<T>() =>
        typeof(T).GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.CanWrite)
            .ToDictionary(p => JsonNamingPolicy.KebabCaseLower.ConvertName(p.Name), p => p.PropertyType);

    private static object? Convert(HoconValue value, Type type)
    {
        if (type == typeof(int)) return value.GetInt();
        if (type == typeof(long)) return value.GetLong();
        if (type == typeof(ulong)) return ulong.Parse(value.GetString(), CultureInfo.InvariantCulture);
        if (type == typeof(double)) return value.GetDouble();
        if (type == typeof(bool)) return ParseBool(value.GetString());
        if (type == typeof(string)) return value.GetString();
        if (type == typeof(IReadOnlyList<int>)) return value.GetIntList().ToArray();
        throw new InvalidCastException($"unsupported setting type {type.Name}");
    }

    public static bool ParseBool(string text) => text.Trim().ToLowerInvariant() switch
    {
        "true" or "on" or "yes" or "1" => true,
        "false" or "off" or "no" or "0" => false,
        _ => throw new FormatException($"'{text}' is not a boolean"),
    };

    private static string Describe(Type type) =>
        type == typeof(int) || type == typeof(long) || type == typeof(ulong) ? "an integer"
        : type == typeof(double) ? "a number"
        : type == typeof(bool) ? "true or false"
        : type == typeof(IReadOnlyList<int>) ? "a list of integers"
        : "a string";

    public static string Suggest(string key, IEnumerable<string> valid)
    {
        var best = valid.Select(v => (v, d: Distance(key, v))).OrderBy(x => x.d).FirstOrDefault();
        return best.v is not null && best.d <= Math.Max(2, key.Length / 3) ? $" (did you mean '{best.v}'?)" : "";
    }

    private static int Distance(string a, string b)
    {
        var d = new int[a.Length + 1, b.Length + 1];
        for (int i = 0; i <= a.Length; i++) d[i, 0] = i;
        for (int j = 0; j <= b.Length; j++) d[0, j] = j;
        for (int i = 1; i <= a.Length; i++)
        {
            for (int j = 1; j <= b.Length; j++)
            {
                int cost = a[i - 1] == b[j - 1] ? 0 : 1;
                d[i, j] = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + cost);
            }
        }
        return d[a.Length, b.Length];
    }

    /// <summary>
    /// Parses a HOCON file; a line <c>include "other.conf"</c> makes the named file (same folder) its fallback.
    /// </summary>
    public static Config ParseFile(string path)
    {
        if (!File.Exists(path))
        {
            throw new ConfigurationError($"configuration file not found: {path}");
        }
        var text = File.ReadAllText(path);
        var includes = IncludeLine().Matches(text).Select(m => m.Groups[1].Value).ToList();
        text = IncludeLine().Replace(text, "");
        Config config;
        try
        {
            config = ConfigurationFactory.ParseString(text);
        }
        catch (Exception e)
        {
            throw new ConfigurationError($"{path} is not valid HOCON: {e.Message}");
        }
        foreach (var include in includes)
        {
            config = config.WithFallback(ParseFile(Path.Combine(Path.GetDirectoryName(path)!, include)));
        }
        return config;
    }

    [GeneratedRegex("^\\s*include\\s+\"([^\"]+)\"\\s*$", RegexOptions.Multiline)]
    private static partial Regex IncludeLine();
}
