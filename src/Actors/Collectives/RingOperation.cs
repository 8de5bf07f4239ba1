namespace MoCo.Actors.Collectives;

/// <summary>The collective calls of the ring; the numeric values travel in <see cref="OperationHeader"/>.</summary>
internal enum RingOperation : byte
{
    /// <summary><see cref="TcpRingCollective.AllReduceSum"/>.</summary>
    AllReduce = 1,

    /// <summary><see cref="TcpRingCollective.AllGather"/>.</summary>
    AllGather = 2,

    /// <summary><see cref="TcpRingCollective.Broadcast"/>.</summary>
    Broadcast = 3,
}
