namespace MoCo.Actors.Collectives.Nccl;

/// <summary><c>ncclResult_t</c> of nccl.h (values as in NCCL 2.21.5; <see cref="Timeout"/> appeared in 2.30).</summary>
internal enum NcclResult
{
    /// <summary><c>ncclSuccess</c>.</summary>
    Success = 0,

    /// <summary><c>ncclUnhandledCudaError</c>: a CUDA call failed.</summary>
    UnhandledCudaError = 1,

    /// <summary><c>ncclSystemError</c>: a system call failed (sockets, shared memory, ...).</summary>
    SystemError = 2,

    /// <summary><c>ncclInternalError</c>: an NCCL bug or a corrupted state.</summary>
    InternalError = 3,

    /// <summary><c>ncclInvalidArgument</c>: a bad argument (pointer, count, rank, config).</summary>
    InvalidArgument = 4,

    /// <summary><c>ncclInvalidUsage</c>: calls in the wrong order, or mismatched between ranks.</summary>
    InvalidUsage = 5,

    /// <summary><c>ncclRemoteError</c>: a peer failed or the network to it did.</summary>
    RemoteError = 6,

    /// <summary><c>ncclInProgress</c>: a non-blocking communicator has not finished the call yet; poll <c>ncclCommGetAsyncError</c>.</summary>
    InProgress = 7,

    /// <summary><c>ncclTimeout</c> (NCCL 2.30 and later; 8 was <c>ncclNumResults</c> before).</summary>
    Timeout = 8,
}
