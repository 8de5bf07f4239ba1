namespace MoCo.Actors.Training;

/// <summary>What the director does next between chunks (see <see cref="RunSchedule.Next"/>).</summary>
internal abstract record NextAction
{
    /// <summary>An interrupt was asked and steps were done since the last checkpoint: write one first.</summary>
    public sealed record CheckpointBeforeStop : NextAction;

    /// <summary>An interrupt was asked and the last checkpoint is at this step: stop the workers and end interrupted.</summary>
    public sealed record Stop : NextAction;

    /// <summary>Every epoch is done: journal the completion and end.</summary>
    public sealed record Complete : NextAction;

    /// <summary>Nodes offered devices that fit: form a larger generation first.</summary>
    public sealed record Grow : NextAction;

    /// <summary>Run the steps up to (not including) <paramref name="UpTo"/>.</summary>
    /// <param name="UpTo">The global step the chunk ends before.</param>
    public sealed record RunChunk(long UpTo) : NextAction;
}

/// <summary>What follows a completed chunk (see <see cref="RunSchedule.AfterChunk"/>).</summary>
internal enum AfterChunk
{
    /// <summary>The chunk ended an epoch: record it (metrics, journal, checkpoint).</summary>
    EndEpoch,

    /// <summary>The chunk ended at a multiple of <c>checkpoint-every-steps</c>: write a checkpoint.</summary>
    Checkpoint,

    /// <summary>Nothing is due: the next chunk.</summary>
    NextChunk,
}

/// <summary>The run's schedule between chunks, as pure functions of where the run stands.</summary>
internal static class RunSchedule
{
    /// <summary>What comes after the chunk that ended at <paramref name="globalStep"/>.</summary>
    /// <param name="epochEnded">A worker reported the end of an epoch in that chunk.</param>
    /// <param name="globalStep">Where the chunk ended.</param>
    /// <param name="checkpointEvery">The run's <c>checkpoint-every-steps</c> (0: at epoch ends only).</param>
    public static AfterChunk After(bool epochEnded, long globalStep, int checkpointEvery) =>
        epochEnded ? AfterChunk.EndEpoch
        : checkpointEvery > 0 && globalStep % checkpointEvery == 0 ? AfterChunk.Checkpoint
        : AfterChunk.NextChunk;

    /// <summary>What the director does next, between chunks, with no recovery under way.</summary>
    /// <param name="interruptRequested">SIGTERM or Ctrl-C asked the run to stop.</param>
    /// <param name="globalStep">The step the generation stands at.</param>
    /// <param name="checkpointedStep">The step of the last checkpoint written (-1: none).</param>
    /// <param name="epoch">The epoch the generation is in.</param>
    /// <param name="epochs">The run's epochs.</param>
    /// <param name="canGrow">Offered nodes fit into a larger generation (elastic runs with fewer ranks than BN groups).</param>
    /// <param name="chunkSteps">The most steps of one chunk.</param>
    /// <param name="checkpointEvery">The run's <c>checkpoint-every-steps</c> (0: at epoch ends only).</param>
    public static NextAction Next(bool interruptRequested, long globalStep, long checkpointedStep, int epoch, int epochs, bool canGrow, int chunkSteps, int checkpointEvery)
    {
        if (interruptRequested)
        {
            // keep the work since the last checkpoint: a resumed run (a restarted pod) starts here
            return checkpointedStep != globalStep ? new NextAction.CheckpointBeforeStop() : new NextAction.Stop();
        }

        if (epoch >= epochs)
        {
            return new NextAction.Complete();
        }

        if (canGrow)
        {
            return new NextAction.Grow();
        }

        long upTo = globalStep + chunkSteps;
        if (checkpointEvery > 0)
        {
            // a chunk ends where a checkpoint is due, so that every replica is at that step when it is taken
            upTo = Math.Min(upTo, (globalStep / checkpointEvery + 1) * checkpointEvery);
        }

        return new NextAction.RunChunk(upTo);
    }
}
