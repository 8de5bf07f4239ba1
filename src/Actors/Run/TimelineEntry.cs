namespace MoCo.Actors.Run;

/// <summary>One line of a run's history, as <c>moco history</c> prints it.</summary>
/// <param name="Sequence">1-based position of the event in the run (equal to its journal sequence number).</param>
/// <param name="Utc">When it happened, for the events that carry a time; null otherwise.</param>
/// <param name="Description">What happened, in words.</param>
public sealed record TimelineEntry(long Sequence, DateTimeOffset? Utc, string Description) : IMocoMessage;
