namespace MoCo.Host.Logging;

/// <summary>
/// Where the run of this process is, for every log record (<see cref="JsonLineFormatter"/>): run id, generation,
/// world size, epoch and global step of the last step reported. Written by the progress actor, read by the logging
/// thread; a record carries what was known when it was formatted.
/// </summary>
public static class RunLogContext
{
    private static volatile Snapshot? s_current;

    /// <summary>The run's place, or null before a run is known.</summary>
    public sealed record Snapshot(string RunId, int? Generation, int? WorldSize, int? Epoch, long? GlobalStep);

    /// <summary>The current place.</summary>
    public static Snapshot? Current => s_current;

    /// <summary>The process serves run <paramref name="runId"/>; where it is becomes known when it starts training.</summary>
    public static void Begin(string runId) => s_current = new Snapshot(runId, null, null, null, null);

    /// <summary>A run became known (or restarted training).</summary>
    public static void Started(string runId, int generation, int worldSize, int epoch, long globalStep) =>
        s_current = new Snapshot(runId, generation, worldSize, epoch, globalStep);

    /// <summary>A new generation formed.</summary>
    public static void Generation(int generation, int worldSize)
    {
        if (s_current is { } c)
        {
            s_current = c with { Generation = generation, WorldSize = worldSize };
        }
    }

    /// <summary>A step completed.</summary>
    public static void Step(int epoch, long globalStep)
    {
        if (s_current is { } c)
        {
            s_current = c with { Epoch = epoch, GlobalStep = globalStep };
        }
    }

    /// <summary>Forgets the run (tests; a node between runs).</summary>
    public static void Clear() => s_current = null;
}
