using System.Diagnostics;

namespace MoCo.Bench;

/// <summary>Runs warm-up steps untimed, then times each of the following steps on its own.</summary>
internal static class StepClock
{
    /// <summary>The wall time in seconds of each of the <paramref name="steps"/> steps that follow <paramref name="warmup"/> untimed ones.</summary>
    public static double[] Measure(IStepBench bench, int warmup, int steps)
    {
        for (int i = 0; i < warmup; i++)
        {
            bench.Step(i);
        }
        var seconds = new double[steps];
        for (int i = 0; i < steps; i++)
        {
            long t0 = Stopwatch.GetTimestamp();
            bench.Step(warmup + i);
            seconds[i] = Stopwatch.GetElapsedTime(t0).TotalSeconds;
        }
        return seconds;
    }

    /// <summary>The median of <paramref name="values"/> (the mean of the two middle ones for an even count).</summary>
    public static double Median(IReadOnlyList<double> values)
    {
        if (values.Count == 0)
        {
            throw new ArgumentException("the median of no values is undefined", nameof(values));
        }
        var sorted = values.Order().ToArray();
        int mid = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    }
}
