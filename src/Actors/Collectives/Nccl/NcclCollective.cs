using MoCo.Model.Collectives;
using TorchSharp;
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
public sealed class NcclCollective : IAbortableCollective
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

    /// <summary>
    /// Checks that <paramref name="tensor"/> can be handed to NCCL: on <paramref name="device"/>, contiguous, of a
    /// supported dtype. Returns its NCCL type.
    /// </summary>
    /// <param name="tensor">The tensor.</param>
    /// <param name="device">Where it must be (this rank's CUDA device).</param>
    /// <param name="operation">The collective, for the message.</param>
    /// <param name="parameter">The parameter's name, for the exception.</param>
    /// <exception cref="ArgumentException">A check failed; the message names it.</exception>
    internal static NcclDataType CheckTensor(Tensor tensor, Device device, string operation, string parameter)
    {
        ArgumentNullException.ThrowIfNull(tensor, parameter);
        if (tensor.device_type != device.type || tensor.device_index != device.index)
        {
            throw new ArgumentException(
                $"{operation}: this NCCL rank moves tensors on {device}; got a tensor on {tensor.device} (CPU tensors go over the TCP ring)",
                parameter);
        }

        if (!tensor.is_contiguous())
        {
            throw new ArgumentException(
                $"{operation}: NCCL reads a flat buffer, so the tensor must be contiguous; got shape [{string.Join(", ", tensor.shape)}] " +
                $"with strides [{string.Join(", ", tensor.stride())}] (call contiguous() first)",
                parameter);
        }

        try
        {
            return NcclDataTypes.For(tensor.dtype);
        }
        catch (ArgumentException e)
        {
            throw new ArgumentException($"{operation}: {e.Message}", parameter, e);
        }
    }

    /// <summary>Checks an all-gather's shares: one per rank, none negative, this rank's equal to its rows.</summary>
    internal static void CheckCounts(Tensor local, IReadOnlyList<long> counts, int rank, int worldSize)
    {
        ArgumentNullException.ThrowIfNull(counts);
        if (local.dim() < 1)
        {
            throw new ArgumentException("all-gather concatenates along dim 0; got a 0-dimensional tensor", nameof(local));
        }

        if (counts.Count != worldSize || counts[rank] != local.shape[0] || counts.Any(c => c < 0))
        {
            throw new ArgumentException(
                $"rank {rank} of {worldSize} gathers {local.shape[0]} rows but counts say [{string.Join(", ", counts)}]",
                nameof(counts));
        }
    }

    private static Device CudaDeviceOf(int index)
    {
        return new Device(DeviceType.CUDA, index);
    }

    /// <summary>Unequal shares: rank r broadcasts its rows into their place in the output; one fused group, one launch.</summary>
    private NcclResult GatherUneven(IntPtr comm, IntPtr send, IntPtr receive, IReadOnlyList<long> counts, long rowElements, long elementSize, NcclDataType type)
    {
        var started = NcclNative.ncclGroupStart();
        if (started != NcclResult.Success)
        {
            return started;
        }

        var failed = NcclResult.Success;
        var offset = 0L;
        for (var root = 0; root < counts.Count; root++)
        {
            var count = counts[root] * rowElements;
            var rows = receive + checked((nint)(offset * elementSize));
            var result = NcclNative.ncclBroadcast(root == Rank ? send : rows, rows, (nuint)count, type, root, comm, Stream);
            if (failed == NcclResult.Success && result is not (NcclResult.Success or NcclResult.InProgress))
            {
                failed = result;
            }

            offset += count;
        }

        var ended = NcclNative.ncclGroupEnd();
        return failed != NcclResult.Success ? failed : ended;
    }

    /// <summary>Enqueues one NCCL call on the legacy default stream, then waits for it with the timeout.</summary>
    private void Launch(string operation, Func<IntPtr, NcclResult> enqueue)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            var comm = CommunicatorLocked(operation);
            UseDeviceLocked(operation);
            var result = enqueue(comm);
            if (result is not (NcclResult.Success or NcclResult.InProgress))
            {
                throw FailLocked(operation, result);
            }
        }

        Await(operation, stream: true);
    }

    /// <summary>Polls until the communicator, and with <paramref name="stream"/> the stream, are done; aborts at the deadline.</summary>
    private void Await(string operation, bool stream)
    {
        if (!CompletionPolling.Until(() => Poll(operation, stream), _timeout))
        {
            var reason = $"{operation} on rank {Rank} of {WorldSize} did not complete within {_timeout.TotalSeconds:0.###} s";
            lock (_gate)
            {
                AbortLocked(reason);
            }

            throw new CollectiveException($"{reason}: a peer died, stalled or skipped the call; the communicator was aborted");
        }
    }

    /// <summary>One look: false while NCCL or the stream still work; throws (after aborting) on any error.</summary>
    private bool Poll(string operation, bool stream)
    {
        lock (_gate)
        {
            var comm = CommunicatorLocked(operation);
            var result = NcclNative.ncclCommGetAsyncError(comm, out var state);
            if (result != NcclResult.Success)
            {
                throw FailLocked(operation, result);
            }

            if (state == NcclResult.InProgress)
            {
                return false;
            }

            if (state != NcclResult.Success)
            {
                throw FailLocked(operation, state);
            }

            if (!stream)
            {
                return true;
            }

            var query = CudaRuntimeNative.cudaStreamQuery(Stream);
            if (query == CudaRuntimeNative.Success)
            {
                return true;
            }

            if (query == CudaRuntimeNative.ErrorNotReady)
            {
                return false;
            }

            throw FailLocked(operation, $"cudaStreamQuery failed: {CudaRuntimeNative.Describe(query)}");
        }
    }

    private IntPtr CommunicatorLocked(string operation)
    {
        if (_comm == IntPtr.Zero)
        {
            throw new CollectiveException($"{operation} on rank {Rank}: the communicator is gone ({_abortReason ?? "destroyed"})");
        }

        return _comm;
    }

    private void UseDeviceLocked(string operation)
    {
        var error = CudaRuntimeNative.cudaSetDevice(CudaDevice);
        if (error != CudaRuntimeNative.Success)
        {
            throw FailLocked(operation, $"cudaSetDevice({CudaDevice}) failed: {CudaRuntimeNative.Describe(error)}");
        }
    }

    private CollectiveException FailLocked(string operation, NcclResult result)
    {
        return FailLocked(operation, NcclNative.Describe(result, _comm));
    }

    private CollectiveException FailLocked(string operation, string detail)
    {
        var message = $"{operation} on rank {Rank} of {WorldSize} failed: {detail}";
        AbortLocked(message);
        return new CollectiveException($"{message}; the communicator was aborted");
    }

    private void AbortLocked(string reason)
    {
        _abortReason ??= reason;
        if (_comm == IntPtr.Zero)
        {
            return;
        }

        var comm = _comm;
        _comm = IntPtr.Zero;
        NcclNative.ncclCommAbort(comm);
    }
}
