using System.Globalization;
using System.Text.RegularExpressions;

namespace MoCo.Model.Data.Shards;

/// <summary>
/// A WebDataset shard pattern: <c>/data/train-{000000..001281}.tar</c> (one brace range of decimal numbers, padded to
/// the width of the first) or a single <c>.tar</c> file. The pattern names the train shards; the test shards are the
/// files beside them whose names replace the last <c>train</c> of the file-name pattern by <c>test</c> (or else
/// <c>val</c>), with any number in place of the range: <c>/data/test-000000.tar</c>, <c>/data/test-000001.tar</c>…
/// </summary>
public static partial class ShardPattern
{
    /// <summary>The most shards one pattern may name (a million: ImageNet is 1282 shards of 1000 images).</summary>
    public const int MaxShards = 1_000_000;

    /// <summary>True when <paramref name="spec"/> names tar shards rather than another kind of data set.</summary>
    public static bool IsShardSpec(string spec) => spec.EndsWith(".tar", StringComparison.OrdinalIgnoreCase);

    /// <summary>The train shards the pattern names, in order; each must exist.</summary>
    /// <exception cref="ArgumentException">The pattern is malformed (the message says how).</exception>
    /// <exception cref="FileNotFoundException">A named shard does not exist (the first missing one is named).</exception>
    public static IReadOnlyList<string> Expand(string pattern)
    {
        var shards = Names(pattern);
        foreach (string shard in shards)
        {
            if (!File.Exists(shard))
            {
                throw new FileNotFoundException($"Shard '{shard}' of the pattern '{pattern}' does not exist.", shard);
            }
        }
        return shards;
    }

    /// <summary>The file names the pattern stands for, without checking that they exist.</summary>
    /// <exception cref="ArgumentException">The pattern is malformed.</exception>
    public static IReadOnlyList<string> Names(string pattern)
    {
        var (prefix, range, suffix) = Split(pattern);
        if (range is null)
        {
            return [pattern];
        }
        var (first, last, width) = range.Value;
        var names = new string[last - first + 1];
        for (int i = 0; i < names.Length; i++)
        {
            names[i] = prefix + (first + i).ToString(CultureInfo.InvariantCulture).PadLeft(width, '0') + suffix;
        }
        return names;
    }

    /// <summary>
    /// The test shards that go with the train pattern: the files in the same folder named like the pattern with its last
    /// <c>train</c> replaced by <c>test</c>, or else by <c>val</c>, and a number where the range is; sorted by name.
    /// </summary>
    /// <exception cref="ArgumentException">The pattern's file name has no <c>train</c> to replace.</exception>
    /// <exception cref="FileNotFoundException">No test or val shard exists (the message names what was looked for).</exception>
    public static IReadOnlyList<string> TestShards(string trainPattern)
    {
        var (prefix, range, suffix) = Split(trainPattern);
        string folder = Path.GetDirectoryName(prefix) is { Length: > 0 } d ? d : ".";
        string namePrefix = Path.GetFileName(prefix);
        string namePattern = namePrefix + (range is null ? "" : "{N}") + suffix;
        int at = namePattern.LastIndexOf("train", StringComparison.Ordinal);
        if (at < 0)
        {
            throw new ArgumentException(
                $"The shard pattern '{trainPattern}' names the train shards, so its file name must contain 'train': the test shards " +
                "are found beside them under the same name with 'test' (or 'val') in its place.");
        }
        var looked = new List<string>();
        foreach (string split in new[] { "test", "val" })
        {
            string wanted = namePattern[..at] + split + namePattern[(at + "train".Length)..];
            looked.Add(Path.Combine(folder, wanted.Replace("{N}", "*", StringComparison.Ordinal)));
            var regex = new Regex("^" + Regex.Escape(wanted).Replace(@"\{N}", "[0-9]+", StringComparison.Ordinal) + "$", RegexOptions.CultureInvariant);
            if (!Directory.Exists(folder))
            {
                break;
            }
            var found = Directory.EnumerateFiles(folder)
                .Where(f => regex.IsMatch(Path.GetFileName(f)))
                .Order(StringComparer.Ordinal)
                .ToList();
            if (found.Count > MaxShards)
            {
                throw new ArgumentException($"More than {MaxShards} test shards match '{looked[^1]}'.");
            }
            if (found.Count > 0)
            {
                return found;
            }
        }
        throw new FileNotFoundException(
            $"No test shards for '{trainPattern}': looked for {string.Join(" and ", looked)} (moco shards writes them beside the train shards).");
    }

    private static (string Prefix, (int First, int Last, int Width)? Range, string Suffix) Split(string pattern)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(pattern);
        if (!IsShardSpec(pattern))
        {
            throw new ArgumentException($"A shard pattern ends in .tar (plain tar files: compressed shards cannot be read at an offset), not '{pattern}'.");
        }
        int open = pattern.IndexOf('{');
        int close = pattern.IndexOf('}');
        if (open < 0 && close < 0)
        {
            return (pattern, null, "");
        }
        var match = RangePattern().Match(pattern);
        if (!match.Success || pattern.IndexOf('{', open + 1) >= 0 || pattern.IndexOf('}', close + 1) >= 0)
        {
            throw new ArgumentException($"Bad shard pattern '{pattern}': expected one range of numbers such as train-{{000000..001281}}.tar.");
        }
        string firstText = match.Groups[1].Value;
        if (!int.TryParse(firstText, NumberStyles.None, CultureInfo.InvariantCulture, out int first)
            || !int.TryParse(match.Groups[2].Value, NumberStyles.None, CultureInfo.InvariantCulture, out int last)
            || last < first)
        {
            throw new ArgumentException($"Bad shard range in '{pattern}': expected {{FIRST..LAST}} with FIRST <= LAST.");
        }
        if ((long)last - first + 1 > MaxShards)
        {
            throw new ArgumentException($"The shard pattern '{pattern}' names {(long)last - first + 1} shards, more than the {MaxShards} accepted.");
        }
        return (pattern[..match.Index], (first, last, firstText.Length), pattern[(match.Index + match.Length)..]);
    }

    [GeneratedRegex(@"\{([0-9]{1,9})\.\.([0-9]{1,9})\}", RegexOptions.CultureInvariant)]
    private static partial Regex RangePattern();
}
