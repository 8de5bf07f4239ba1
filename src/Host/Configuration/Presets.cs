using Akka.Configuration;
using MoCo.Model.Training;

namespace MoCo.Host.Configuration;

/// <summary>
/// Finds and layers configuration: a preset (hocon/NAME.conf) or a file, then MOCO_RUN_* / MOCO_HOST_*
/// environment variables, then command-line flags. Later layers override single keys, never whole files.
/// </summary>
public static class Presets
{
    public static readonly IReadOnlyList<string> Names = ["quickstart", "cifar-small", "moco-v1", "moco-v2"];

    /// <summary>The sections of <c>moco</c> the host reads; any other is a mistake.</summary>
    public static readonly IReadOnlyList<string> Sections = ["run", "host", "cluster", "journal", "metrics", "data-plane"];

    /// <summary>The hocon/ folder next to the executable, or the repository's.</summary>
    public static string Folder()
    {
        var candidates = new[]
        {
            Path.Combine(AppContext.BaseDirectory, "hocon"),
            Path.Combine(Directory.GetCurrentDirectory(), "hocon"),
        };
        return candidates.FirstOrDefault(Directory.Exists)
            ?? throw new ConfigurationError($"no hocon/ folder found (looked in {string.Join(", ", candidates)})");
    }

    public static (Config Config, string Source) Load(string? preset, string? file)
    {
        if (file is not null)
        {
            return (SettingsReader.ParseFile(file), file);
        }
        var name = preset ?? "quickstart";
        if (!Names.Contains(name))
        {
            throw new ConfigurationError($"unknown preset '{name}': use one of {string.Join(", ", Names)}{SettingsReader.Suggest(name, Names)}");
        }
        var path = Path.Combine(Folder(), name + ".conf");
        return (SettingsReader.ParseFile(path), path);
    }

    /// <summary>Applies MOCO_RUN_KEY / MOCO_HOST_KEY variables (KEY in upper snake case) on top of the file.</summary>
    public static Config WithEnvironment(Config config, System.Collections.IDictionary environment)
    {
        var overrides = new List<string>();
        foreach (System.Collections.DictionaryEntry entry in environment)
        {
            var name = (string)entry.Key;
            foreach (var (prefix, section, keys) in new[]
            {
                ("MOCO_RUN_", "moco.run", SettingsReader.Keys<RunConfig>()),
                ("MOCO_HOST_", "moco.host", SettingsReader.Keys<HostSettings>()),
                ("MOCO_CLUSTER_", "moco.cluster", SettingsReader.Keys<ClusterSettings>()),
                ("MOCO_JOURNAL_", "moco.journal", SettingsReader.Keys<JournalSettings>()),
                ("MOCO_METRICS_", "moco.metrics", SettingsReader.Keys<Metrics.MetricsSettings>()),
                ("MOCO_DATA_PLANE_", "moco.data-plane", SettingsReader.Keys<DataPlaneSettings>()),
            })
            {
                if (!name.StartsWith(prefix, StringComparison.Ordinal))
                {
                    continue;
                }
                var key = name[prefix.Length..].ToLowerInvariant().Replace('_', '-');
                if (!keys.ContainsKey(key))
                {
                    throw new ConfigurationError($"environment variable {name} names no key of {section}{SettingsReader.Suggest(key, keys.Keys)}");
                }
                overrides.Add($"{section}.{key} = {Quote((string?)entry.Value ?? "")}");
            }
        }
        return overrides.Count == 0 ? config : ConfigurationFactory.ParseString(string.Join("\n", overrides)).WithFallback(config);
    }

    /// <summary>Applies flag values (key → text) on top.</summary>
    public static Config WithOverrides(Config config, string section, IReadOnlyDictionary<string, string> values)
    {
        if (values.Count == 0)
        {
            return config;
        }
        var text = string.Join("\n", values.Select(kv => $"{section}.{kv.Key} = {Quote(kv.Value)}"));
        return ConfigurationFactory.ParseString(text).WithFallback(config);
    }

    private static string Quote(string value)
    {
        if (value.StartsWith('[') && value.EndsWith(']'))
        {
            return value;
        }
        return "\"" + value.Replace("\\", "\\\\").Replace("\"", "\\\"") + "\"";
    }
}
