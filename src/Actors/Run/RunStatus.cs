namespace MoCo.Actors.Run;

/// <summary>Where a run is in its life.</summary>
public enum RunStatus
{
    /// <summary>No <see cref="RunStarted"/> yet.</summary>
    NotStarted,

    /// <summary>Started, neither completed nor failed.</summary>
    Running,

    /// <summary>Finished its schedule; accepts no further events.</summary>
    Completed,

    /// <summary>Stopped on an error; accepts no further events.</summary>
    Failed,
}
