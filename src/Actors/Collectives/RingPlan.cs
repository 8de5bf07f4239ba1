namespace MoCo.Actors.Collectives;

/// <summary>
/// What one rank does in one collective: the segments it sends to its successor and receives from its predecessor,
/// each list in wire order. A send waits only for the receives it forwards, so consecutive segments are in flight
/// at once: while one is being reduced the next is already arriving and the previous one leaving.
/// </summary>
/// <param name="Sends">The segments to send, in order.</param>
/// <param name="Receives">The segments to receive, in order.</param>
internal sealed record RingPlan(RingSend[] Sends, RingReceive[] Receives)
{
    /// <summary>A plan that moves nothing (a world of one, or an empty tensor).</summary>
    public static readonly RingPlan Empty = new([], []);
}
