using System.Globalization;

namespace MoCo.Bench;

/// <summary>
/// The <c>--name value</c> pairs of a command line. Every option must be read (or explicitly ignored) through
/// <see cref="EnsureAllRead"/>, so that a misspelt flag is an error rather than a silently ignored setting.
/// </summary>
internal sealed class BenchArgs
{
    private readonly Dictionary<string, string> _values;
    private readonly HashSet<string> _read = new(StringComparer.Ordinal);

    private BenchArgs(Dictionary<string, string> values)
    {
        _values = values;
    }

    /// <summary>Parses <c>--name value</c> pairs; a flag given twice keeps its last value.</summary>
    /// <exception cref="ArgumentException">A token is not a flag, or a flag lacks its value.</exception>
    public static BenchArgs Parse(ReadOnlySpan<string> args)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        for (int i = 0; i < args.Length; i++)
        {
            string token = args[i];
            if (!token.StartsWith("--", StringComparison.Ordinal) || token.Length == 2)
            {
                throw new ArgumentException($"expected a --flag, found '{token}'");
            }
            if (i + 1 >= args.Length)
            {
                throw new ArgumentException($"{token} needs a value");
            }
            values[token[2..]] = args[++i];
        }
        return new BenchArgs(values);
    }

    /// <summary>The value of <c>--name</c>, or <paramref name="fallback"/> when absent.</summary>
    public string String(string name, string fallback)
    {
        _read.Add(name);
        return _values.TryGetValue(name, out var value) ? value : fallback;
    }

    /// <summary>The integer value of <c>--name</c>, at least <paramref name="min"/>, or <paramref name="fallback"/> when absent.</summary>
    /// <exception cref="ArgumentException">The value is not an integer or is below <paramref name="min"/>.</exception>
    public int Int(string name, int fallback, int min)
    {
        _read.Add(name);
        if (!_values.TryGetValue(name, out var text))
        {
            return fallback;
        }
        if (!int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out int value) || value < min)
        {
            throw new ArgumentException($"--{name} must be an integer of at least {min}, not '{text}'");
        }
        return value;
    }

    /// <summary>Marks <c>--name</c> as known without reading it.</summary>
    public void Ignore(string name) => _read.Add(name);

    /// <summary>Throws when a flag was given that no option read.</summary>
    /// <exception cref="ArgumentException">Names the first unknown flag.</exception>
    public void EnsureAllRead()
    {
        foreach (var name in _values.Keys)
        {
            if (!_read.Contains(name))
            {
                throw new ArgumentException($"unknown option --{name}");
            }
        }
    }
}
