namespace MoCo.Actors.Collectives;

/// <summary>
/// Why one side of a ring handshake refused the other. The numeric values travel on the wire, except
/// <see cref="OtherVersion"/>: a peer of another protocol version cannot read this version's answer.
/// </summary>
internal enum HandshakeRefusal : byte
{
    /// <summary>Nothing to refuse: the handshake may complete.</summary>
    None = 0,

    /// <summary>The other side's HMAC did not verify: it does not hold the cluster secret (or replayed an old transcript).</summary>
    WrongSecret = 1,

    /// <summary>The other side belongs to another run.</summary>
    OtherRun = 2,

    /// <summary>The other side belongs to an older or newer generation.</summary>
    OtherGeneration = 3,

    /// <summary>The other side expects another number of ranks.</summary>
    OtherWorldSize = 4,

    /// <summary>The other side is not the rank this side expects on that link.</summary>
    UnexpectedRank = 5,

    /// <summary>The accepting side already holds a connection from that rank.</summary>
    Duplicate = 6,

    /// <summary>The other side speaks another version of the ring protocol (another MoCo release). Never sent: it is the local side's verdict.</summary>
    OtherVersion = 7,

    /// <summary>The other side protects the data plane differently (<see cref="DataPlaneProtection"/>).</summary>
    OtherProtection = 8,
}
