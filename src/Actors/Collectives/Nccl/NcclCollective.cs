using MoCo.Model.Collectives;
using static TorchSharp.torch;

namespace MoCo.Actors.Collectives.Nccl;

/// <summary>
/// The GPU data plane: one rank of an NCCL communicator, on one CUDA device, over P/Invoke on libnccl.
/// </summary>
/// <remarks>
/// <para>
/// Nothing here blocks without a deadline. The communicator is non-blocking (<c>ncclConfig_t.blocking = 0</c>): init,
/// every collective and finalize return at once, and this class polls <c>ncclCommGetAsyncError</c> until the call is
/// no longer <c>ncclInProgress</c>, then polls <c>cudaStreamQuery</c> until the kernels are done, both within the
/// timeout. A peer that died, stalled or skipped the call turns into <c>ncclCommAbort</c> and a
/// <see cref="CollectiveException"/>; so does an asynchronous NCCL error (<c>ncclRemoteError</c>, <c>ncclSystemError</c>)
/// seen while polling. <see cref="Abort"/> does the same from any thread. After an abort every call throws: the worker
/// builds a new communicator for the next generation.
/// </para>
/// <para>
/// Ordering with TorchSharp: TorchSharp has no stream API, so libtorch launches all of its kernels on the device's
/// legacy default stream (handle 0). NCCL work goes on that same stream, so it starts after the kernels that produced
/// its input, with no event or extra synchronisation. Each call returns only when the stream is idle again, so the
/// caller may read the result, free the input, or let the caching allocator reuse either at once; the cost is that the
/// host waits for the GPU at every collective (bucketing the gradients keeps those waits few).
/// </para>
/// <para>
/// Tensors must be contiguous, on this rank's device, and of a dtype in <see cref="NcclDataTypes.Supported"/>; their
/// device addresses come from <see cref="TensorPointers.DataPointer"/>. The calling thread's current CUDA device is set
/// to <see cref="CudaDevice"/> by every call (workers run on one pinned thread each, so it stays that way).
/// </para>
/// </remarks>
public sealed partial class NcclCollective : IAbortableCollective
{
    private static readonly IntPtr Stream = CudaRuntimeNative.LegacyDefaultStream;

    private readonly object _gate = new();
    private readonly TimeSpan _timeout;
    private IntPtr _comm;
    private string? _abortReason;
    private bool _disposed;

    /// <summary>
    /// Joins the communicator named by <paramref name="uniqueId"/>: every rank of the generation calls this with the same
    /// id and world size, each with its own rank, within <paramref name="timeout"/> of each other.
    /// </summary>
    /// <param name="rank">This rank, in [0, <paramref name="worldSize"/>).</param>
    /// <param name="worldSize">The number of ranks.</param>
    /// <param name="uniqueId">The id rank 0 made with <see cref="NcclUniqueId.Create"/>, forwarded by the director in <c>Worker.JoinGeneration</c>.</param>
    /// <param name="cudaDevice">This rank's CUDA device index.</param>
    /// <param name="timeout">How long init and each collective may take before the communicator is aborted.</param>
    /// <exception cref="CollectiveException">CUDA, libcudart or libnccl is missing (the message says which), or init failed or timed out.</exception>
    public NcclCollective(int rank, int worldSize, NcclUniqueId uniqueId, int cudaDevice, TimeSpan timeout)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(worldSize, 1);
        if (rank < 0 || rank >= worldSize)
        {
            throw new ArgumentOutOfRangeException(nameof(rank), rank, $"a rank of a world of {worldSize} is in [0, {worldSize})");
        }

        ArgumentOutOfRangeException.ThrowIfNegative(cudaDevice);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(timeout, TimeSpan.Zero);
        Rank = rank;
        WorldSize = worldSize;
        CudaDevice = cudaDevice;
        _timeout = timeout;

        var probe = NcclProbe.Run();
        if (!probe.IsAvailable)
        {
            throw new CollectiveException($"rank {rank} cannot create its NCCL communicator: {probe.Message}");
        }

        if (cudaDevice >= probe.CudaDeviceCount)
        {
            throw new ArgumentOutOfRangeException(nameof(cudaDevice), cudaDevice, $"this host has {probe.CudaDeviceCount} CUDA device(s)");
        }

        lock (_gate)
        {
            UseDeviceLocked("init");
            var config = NcclConfig.NonBlocking();
            var result = NcclNative.ncclCommInitRankConfig(out var comm, worldSize, uniqueId, rank, ref config);
            _comm = comm;
            if (result is not (NcclResult.Success or NcclResult.InProgress))
            {
                throw FailLocked("init", result);
            }
        }

        Await("init", stream: false);
    }

    /// <inheritdoc />
    public int Rank { get; }

    /// <inheritdoc />
    public int WorldSize { get; }

    /// <summary>The CUDA device this rank's tensors live on.</summary>
    public int CudaDevice { get; }

    /// <summary>Whether the communicator was aborted (by a failure, a timeout or <see cref="Abort"/>).</summary>
    public bool IsAborted
    {
        get
        {
            lock (_gate)
            {
                return _abortReason is not null;
            }
        }
    }

    /// <inheritdoc />
    public void AllReduceSum(Tensor tensor)
    {
        const string operation = "all-reduce";
        var type = CheckTensor(tensor, CudaDeviceOf(CudaDevice), operation, nameof(tensor));
        var count = (nuint)tensor.numel();
        if (count == 0)
        {
            return;
        }

        var data = TensorPointers.DataPointer(tensor);
        Launch(operation, comm => NcclNative.ncclAllReduce(data, data, count, type, NcclRedOp.Sum, comm, Stream));
        GC.KeepAlive(tensor);
    }

    /// <inheritdoc />
    /// <remarks>Equal shares use <c>ncclAllGather</c>; unequal ones one <c>ncclBroadcast</c> per rank into its rows, fused in one group.</remarks>
    public Tensor AllGather(Tensor local, IReadOnlyList<long> counts)
    {
        const string operation = "all-gather";
        var type = CheckTensor(local, CudaDeviceOf(CudaDevice), operation, nameof(local));
        CheckCounts(local, counts, Rank, WorldSize);
        var rowShape = local.shape.Skip(1).ToArray();
        var rowElements = rowShape.Aggregate(1L, (a, b) => a * b);
        var gathered = empty([counts.Sum(), .. rowShape], dtype: local.dtype, device: local.device);
        try
        {
            if (gathered.numel() == 0)
            {
                return gathered;
            }

            var send = TensorPointers.DataPointer(local);
            var receive = TensorPointers.DataPointer(gathered);
            if (counts.All(c => c == counts[0]))
            {
                var share = (nuint)(counts[0] * rowElements);
                Launch(operation, comm => NcclNative.ncclAllGather(send, receive, share, type, comm, Stream));
            }
            else
            {
                Launch(operation, comm => GatherUneven(comm, send, receive, counts, rowElements, local.ElementSize, type));
            }

            GC.KeepAlive(local);
            return gathered;
        }
        catch
        {
            gathered.Dispose();
            throw;
        }
    }

    /// <inheritdoc />
    public void Broadcast(Tensor tensor, int root)
    {
        const string operation = "broadcast";
        if (root < 0 || root >= WorldSize)
        {
            throw new ArgumentOutOfRangeException(nameof(root), root, $"the root is a rank in [0, {WorldSize})");
        }

        var type = CheckTensor(tensor, CudaDeviceOf(CudaDevice), operation, nameof(tensor));
        var count = (nuint)tensor.numel();
        if (count == 0)
        {
            return;
        }

        var data = TensorPointers.DataPointer(tensor);
        Launch(operation, comm => NcclNative.ncclBroadcast(data, data, count, type, root, comm, Stream));
        GC.KeepAlive(tensor);
    }

    /// <summary>
    /// Aborts the communicator (<c>ncclCommAbort</c>): its kernels stop, and the call in progress on the worker's thread
    /// and every later call throw <see cref="CollectiveException"/>. Safe from any thread, and more than once.
    /// </summary>
    public void Abort()
    {
        lock (_gate)
        {
            AbortLocked($"rank {Rank}'s communicator was aborted on request");
        }
    }

    /// <summary>Finalizes and destroys the communicator (each rank does the same); aborts it instead when that fails or times out.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            if (_comm == IntPtr.Zero)
            {
                return;
            }

            var result = NcclNative.ncclCommFinalize(_comm);
            if (result is not (NcclResult.Success or NcclResult.InProgress))
            {
                FailLocked("finalize", result);
                return;
            }
        }

        try
        {
            if (!CompletionPolling.Until(() => Poll("finalize", stream: false), _timeout))
            {
                lock (_gate)
                {
                    AbortLocked($"finalize on rank {Rank} did not complete within {_timeout.TotalSeconds:0.###} s");
                }

                return;
            }
        }
        catch (CollectiveException)
        {
            // Poll aborted the communicator already; Dispose does not throw.
            return;
        }

        lock (_gate)
        {
            if (_comm != IntPtr.Zero)
            {
                NcclNative.ncclCommDestroy(_comm);
                _comm = IntPtr.Zero;
            }
        }
    }
}
