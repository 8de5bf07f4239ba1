namespace MoCo.Actors.Collectives;

/// <summary>The data plane chosen for this host, and why, in one line for the start-up log.</summary>
/// <param name="Backend">The plane.</param>
/// <param name="Reason">Why: what was asked for and what the NCCL probe found.</param>
public sealed record DataPlaneDecision(DataPlaneKind Backend, string Reason);
