using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace MoCo.Host.Tests.MultiProcess;

/// <summary>Checks on a run's history (<c>moco history --json</c>) that hold for every run, whatever its membership changes.</summary>
internal static partial class HistoryChecks
{
    /// <summary>
    /// Every generation after the first starts where the steps journaled before it end: a generation journaled at an
    /// earlier step would say that recorded steps were redone (or lost), a later one that steps were skipped.
    /// </summary>
    public static void GenerationsStartWhereTheRecordedStepsEnd(JsonElement history)
    {
        var recorded = history.GetProperty("events").EnumerateArray()
            .Select(e => (Sequence: e.GetProperty("sequence").GetInt64(), Match: StepsRecorded().Match(e.GetProperty("description").GetString() ?? "")))
            .Where(e => e.Match.Success)
            .Select(e => (e.Sequence, End: long.Parse(e.Match.Groups[2].Value, CultureInfo.InvariantCulture) + 1))
            .ToList();
        foreach (var generation in history.GetProperty("generations").EnumerateArray().Skip(1))
        {
            long sequence = generation.GetProperty("sequence").GetInt64();
            long step = generation.GetProperty("step").GetInt64();
            long before = recorded.Where(r => r.Sequence < sequence).Select(r => r.End).DefaultIfEmpty(0).Max();
            Assert.True(step == before, $"generation {generation.GetProperty("generation").GetInt32()} is journaled at step {step}, but the steps recorded before it end at {before}");
        }
    }

    /// <summary>The steps journaled tile 0 to <paramref name="steps"/> - 1, each recorded once: none lost, none redone.</summary>
    public static void EveryStepRecordedOnce(JsonElement history, long steps)
    {
        var ranges = history.GetProperty("events").EnumerateArray()
            .Select(e => StepsRecorded().Match(e.GetProperty("description").GetString() ?? ""))
            .Where(m => m.Success)
            .Select(m => (First: long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture), Last: long.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture)))
            .OrderBy(r => r.First)
            .ToList();
        long next = 0;
        foreach (var (first, last) in ranges)
        {
            Assert.True(first == next, first < next ? $"steps {first}-{Math.Min(last, next - 1)} are recorded twice" : $"steps {next}-{first - 1} are not recorded");
            next = last + 1;
        }

        Assert.True(next == steps, $"the steps recorded end at {next}, not {steps}");
    }

    [GeneratedRegex(@"^steps (\d+)-(\d+) recorded")]
    private static partial Regex StepsRecorded();
}
