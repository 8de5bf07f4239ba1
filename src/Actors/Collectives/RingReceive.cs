namespace MoCo.Actors.Collectives;

/// <summary>One segment a rank receives from its predecessor.</summary>
/// <param name="Offset">Where the segment lands in the operation's buffer, in bytes.</param>
/// <param name="Length">Its length in bytes.</param>
/// <param name="Reduce">Whether it is added to what the buffer holds (reduce-scatter) or replaces it (all-gather, broadcast).</param>
internal readonly record struct RingReceive(long Offset, int Length, bool Reduce);
