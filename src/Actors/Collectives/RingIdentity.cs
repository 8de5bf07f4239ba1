namespace MoCo.Actors.Collectives;

/// <summary>Who a ring member says it is in a handshake: its run, generation, rank, world size and how it protects the data plane.</summary>
/// <param name="RunId">The run the ring serves.</param>
/// <param name="Generation">The membership generation.</param>
/// <param name="Rank">The member's rank.</param>
/// <param name="WorldSize">The number of ranks the member expects.</param>
/// <param name="Protection">How the member protects the bytes after the handshake; both ends of a connection must agree.</param>
internal readonly record struct RingIdentity(string RunId, long Generation, int Rank, int WorldSize, DataPlaneProtection Protection = DataPlaneProtection.AesGcm)
{
    /// <summary>This rank's identity as <paramref name="options"/> describe it.</summary>
    public static RingIdentity Of(TcpRingOptions options) => new(options.RunId, options.Generation, options.Rank, options.WorldSize, options.Protection);
}
