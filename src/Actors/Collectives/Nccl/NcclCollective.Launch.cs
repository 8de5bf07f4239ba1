using MoCo.Model.Collectives;
using TorchSharp;
using static TorchSharp.torch;

namespace MoCo.Actors.Collectives.Nccl;

/// <summary>
/// What every NCCL call goes through: the checks of a tensor and of gather counts, the uneven gather, the launch on the
/// rank's stream, the bounded wait (polled, so that a dead peer fails the call within the timeout), and the abort.
/// </summary>
public sealed partial class NcclCollective
{
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
