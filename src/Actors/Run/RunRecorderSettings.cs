namespace MoCo.Actors.Run;

/// <summary>Tuning of the run recorder.</summary>
/// <param name="SnapshotEvery">Save a snapshot of the state after every this many events (at least 1).</param>
public sealed record RunRecorderSettings(int SnapshotEvery = 50)
{
    /// <summary>The defaults: a snapshot every 50 events.</summary>
    public static RunRecorderSettings Default { get; } = new();
}
