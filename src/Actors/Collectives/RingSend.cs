namespace MoCo.Actors.Collectives;

/// <summary>One segment a rank sends to its successor.</summary>
/// <param name="Offset">Where the segment starts in the operation's buffer, in bytes.</param>
/// <param name="Length">Its length in bytes.</param>
/// <param name="AfterReceives">How many of the rank's receives must be complete before it may go (the segment forwards what they brought).</param>
internal readonly record struct RingSend(long Offset, int Length, int AfterReceives);
