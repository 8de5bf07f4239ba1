namespace MoCo.Actors.Workers;

/// <summary>Where a worker's first state comes from.</summary>
public abstract record WorkerStart
{
    private WorkerStart()
    {
    }

    /// <summary>The run's start: the seeded initial model, or the checkpoint the run is resumed from.</summary>
    public sealed record Fresh : WorkerStart
    {
        /// <summary>The instance.</summary>
        public static readonly Fresh Instance = new();

        /// <inheritdoc />
        public override string ToString() => "fresh";
    }

    /// <summary>A re-created worker with no surviving peer: the run's latest valid checkpoint.</summary>
    /// <param name="Path">The checkpoint file.</param>
    public sealed record FromCheckpoint(string Path) : WorkerStart
    {
        /// <inheritdoc />
        public override string ToString() => "from checkpoint " + System.IO.Path.GetFileName(Path);
    }

    /// <summary>A re-created or joining worker whose state a surviving peer broadcasts when the generation starts.</summary>
    public sealed record FromPeer : WorkerStart
    {
        /// <summary>The instance.</summary>
        public static readonly FromPeer Instance = new();

        /// <inheritdoc />
        public override string ToString() => "from a surviving peer";
    }
}
