using System.Diagnostics;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using MoCo.Model.Collectives;
using TorchSharp;
using static TorchSharp.torch;

namespace MoCo.Actors.Collectives;

/// <summary>
/// The CPU data plane: an <see cref="ICollective"/> over a ring of TCP connections, rank r sending to r + 1 and
/// receiving from r − 1. All-reduce is a reduce-scatter followed by an all-gather (<see cref="RingSchedule"/>), so
/// each rank sends and receives 2(W − 1)/W of the tensor whatever W; the tensor travels in segments of
/// <see cref="TcpRingOptions.ChunkBytes"/>, and the calling thread drives both links without blocking: it hands the
/// successor whatever segments the socket takes, takes whatever the predecessor has sent, adds a segment as soon as it
/// is complete and forwards it as soon as the next step needs it, waiting (poll) only when neither link can move.
/// The kernel's socket buffers carry the segments in flight, so sending, receiving and reducing overlap without a
/// second thread (on a loaded machine each hand-over between threads costs a scheduler wake-up; see bench/README.md).
/// <para>
/// Every connection is authenticated with the cluster's secret and bound to one run and generation
/// (<see cref="RingHandshake"/>), and with <see cref="DataPlaneProtection.AesGcm"/> (the default) every byte after the
/// handshake travels in sealed frames (<see cref="RingFrameCipher"/>): each segment is sealed just before it is handed to
/// the socket and opened as soon as it is whole, into buffers of one segment allocated with the ring, so the pipeline
/// and the timeouts are unchanged; a frame that fails to open fails the operation with an integrity error naming the
/// peer. Every collective starts with a header that neighbours compare, so ranks that call collectives in different
/// orders or with different sizes fail at once. Each call finishes within
/// <see cref="TcpRingOptions.OperationTimeout"/> or throws <see cref="CollectiveException"/> naming the peer it was
/// waiting for; any failure, or <see cref="Abort"/>, breaks the ring for good (its connections are shut down, so the
/// peers fail promptly too): the next generation builds a new one.
/// </para>
/// Calls are made by one thread at a time: the worker's, or during backward its step's gradient-bucket thread while the worker's
/// thread makes none (<see cref="MoCo.Model.Training.GradientBucketing"/>); <see cref="Abort"/> may come from any thread.
/// </summary>
public sealed unsafe partial class TcpRingCollective : IAbortableCollective
{
    private readonly TcpRingOptions _options;
    private readonly RingLink? _next;
    private readonly RingLink? _previous;
    private readonly long _operationTicks;
    private readonly List<Socket> _readable = new(1);
    private readonly List<Socket> _writable = new(1);

    /// <summary>Guards the failure.</summary>
    private readonly object _gate = new();

    /// <summary>Held for the whole of each collective, so that <see cref="Dispose"/> frees nothing an operation still uses.</summary>
    private readonly object _operationGate = new();

    /// <summary>Seals what goes to the successor, opens what comes from the predecessor; null when unprotected.</summary>
    private readonly RingFrameCipher? _seal;
    private readonly RingFrameCipher? _open;

    private byte* _scratch;
    private byte* _sendFrame;
    private byte* _receiveFrame;
    private Exception? _failure;
    private long _sequence;
    private int _disposed;

    private TcpRingCollective(TcpRingOptions options, RingLink? next, RingLink? previous, RingSession? nextSession = null, RingSession? previousSession = null)
    {
        _options = options;
        _next = next;
        _previous = previous;
        _operationTicks = (long)(options.OperationTimeout.TotalSeconds * Stopwatch.Frequency);
        if (next is not null)
        {
            _scratch = (byte*)NativeMemory.AlignedAlloc((nuint)options.ChunkBytes, 64);
        }
        if (options.Protection == DataPlaneProtection.AesGcm && nextSession is not null && previousSession is not null)
        {
            // a frame holds one segment or the header, whichever is larger, and the frame's length and tag
            nuint frameBytes = (nuint)(Math.Max(options.ChunkBytes, OperationHeader.Size) + RingFrameCipher.Overhead);
            _seal = new RingFrameCipher(nextSession.SendKey);
            _open = new RingFrameCipher(previousSession.ReceiveKey);
            _sendFrame = (byte*)NativeMemory.AlignedAlloc(frameBytes, 64);
            _receiveFrame = (byte*)NativeMemory.AlignedAlloc(frameBytes, 64);
        }
        nextSession?.ClearKeys();
        previousSession?.ClearKeys();
    }

    /// <inheritdoc />
    public int Rank => _options.Rank;

    /// <inheritdoc />
    public int WorldSize => _options.WorldSize;

    /// <summary>The options the ring was built with.</summary>
    public TcpRingOptions Options => _options;

    /// <summary>Test hook: called on the calling thread after each received (and reduced) segment, with its index in the operation.</summary>
    internal Action<int>? AfterReceive { get; set; }

    /// <summary>
    /// Joins the ring: connects to the successor and accepts the predecessor on <paramref name="listener"/>, both
    /// within <see cref="TcpRingOptions.ConnectTimeout"/>, each connection authenticated by the handshake. Takes
    /// the listener over and closes it, whatever the outcome. A world of one connects nothing.
    /// </summary>
    /// <param name="listener">This rank's listener, bound before the rendezvous; its endpoint is <c>options.Endpoints[options.Rank]</c> as the others reach it.</param>
    /// <param name="options">The ring's description.</param>
    /// <param name="cancellationToken">Gives up the rendezvous (a newer generation was announced).</param>
    /// <exception cref="ArgumentException">The options are invalid.</exception>
    /// <exception cref="CollectiveException">A peer was refused (the message says why) or not reached in time.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public static TcpRingCollective Connect(TcpRingListener listener, TcpRingOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(listener);
        ArgumentNullException.ThrowIfNull(options);
        try
        {
            options.Validate();
            int world = options.WorldSize;
            if (world == 1)
            {
                return new TcpRingCollective(options, null, null);
            }
            var me = RingIdentity.Of(options);
            int successor = (options.Rank + 1) % world;
            int predecessor = (options.Rank + world - 1) % world;
            long deadline = Stopwatch.GetTimestamp() + (long)(options.ConnectTimeout.TotalSeconds * Stopwatch.Frequency);

            using var both = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            var refusals = new RefusalLog();
            var accepting = Task.Factory.StartNew(
                () => listener.AcceptPredecessor(me, predecessor, options.Secret, options.HandshakeTimeout, deadline, refusals, both.Token),
                both.Token, TaskCreationOptions.LongRunning, TaskScheduler.Default);
            (Socket Socket, RingSession Session) next;
            try
            {
                next = RingConnector.ConnectSuccessor(options.Endpoints[successor], me, successor, options.Secret, options.HandshakeTimeout, deadline, both.Token);
            }
            catch (CollectiveException e)
            {
                both.Cancel(); // no ring without a successor: stop waiting for the predecessor
                DisposeAccepted(accepting);
                throw WithRefusals(e, refusals);
            }
            catch
            {
                both.Cancel();
                DisposeAccepted(accepting);
                throw;
            }
            (Socket Socket, RingSession Session) previous;
            try
            {
                previous = accepting.GetAwaiter().GetResult();
            }
            catch
            {
                next.Session.ClearKeys();
                next.Socket.Dispose();
                throw;
            }
            // name peers by the endpoints they published (the predecessor's connection comes from an ephemeral port)
            return new TcpRingCollective(
                options,
                new RingLink(next.Socket, successor, options.Endpoints[successor].ToString()!),
                new RingLink(previous.Socket, predecessor, options.Endpoints[predecessor].ToString()!),
                next.Session,
                previous.Session);
        }
        catch (OperationCanceledException e) when (cancellationToken.IsCancellationRequested && e.CancellationToken != cancellationToken)
        {
            throw new OperationCanceledException($"rank {options.Rank}: joining the ring was cancelled", e, cancellationToken);
        }
        finally
        {
            listener.Dispose();
        }
    }

    private static void DisposeAccepted(Task<(Socket Socket, RingSession Session)> accepting)
    {
        try
        {
            accepting.Wait();
            accepting.Result.Session.ClearKeys();
            accepting.Result.Socket.Dispose();
        }
        catch (AggregateException)
        {
            // cancelled or failed: the successor's failure is the one to report
        }
    }

    /// <summary>Adds what this rank's listener refused meanwhile: the peer's side of a refusal often explains this side's failure.</summary>
    private static CollectiveException WithRefusals(CollectiveException e, RefusalLog refusals) =>
        refusals.IsEmpty ? e : new CollectiveException($"{e.Message}; meanwhile this rank's listener refused: {refusals}", e.InnerException ?? e);

    /// <inheritdoc />
    /// <exception cref="NotSupportedException">The dtype cannot be summed (see the message for those that can).</exception>
    /// <exception cref="ArgumentException">The tensor is not on the CPU.</exception>
    /// <exception cref="CollectiveException">A peer died, stopped answering, disagreed on the call, or the ring was aborted.</exception>
    public void AllReduceSum(Tensor tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        EnsureCpu(tensor, "all-reduce");
        RingReduce.EnsureSupported(tensor.dtype);
        if (WorldSize == 1)
        {
            ThrowIfUnusable("all-reduce");
            return;
        }
        bool copied = !tensor.is_contiguous();
        var work = copied ? tensor.contiguous() : tensor;
        try
        {
            long elements = work.numel();
            int elementSize = (int)work.element_size();
            var plan = RingSchedule.AllReduce(Rank, WorldSize, elements, elementSize, _options.ChunkBytes);
            var header = new OperationHeader(RingOperation.AllReduce, 0, elements * elementSize, (int)work.dtype, 0, (ulong)elements);
            Run(header, plan, Address(work), work.dtype);
            if (copied)
            {
                using (no_grad())
                {
                    tensor.copy_(work);
                }
            }
        }
        finally
        {
            if (copied)
            {
                work.Dispose();
            }
        }
    }

    /// <inheritdoc />
    /// <exception cref="ArgumentException">The counts do not match the world or this rank's rows, or the tensor is not on the CPU.</exception>
    /// <exception cref="CollectiveException">A peer died, stopped answering, disagreed on the counts or row shape, or the ring was aborted.</exception>
    public Tensor AllGather(Tensor local, IReadOnlyList<long> counts)
    {
        ArgumentNullException.ThrowIfNull(local);
        ArgumentNullException.ThrowIfNull(counts);
        EnsureCpu(local, "all-gather");
        if (local.dim() == 0)
        {
            throw new ArgumentException("all-gather concatenates along dim 0: a scalar has no rows");
        }
        if (counts.Count != WorldSize || counts[Rank] != local.shape[0] || counts.Any(c => c < 0))
        {
            throw new ArgumentException($"rank {Rank} gathers {local.shape[0]} rows but counts say [{string.Join(", ", counts)}] for a world of {WorldSize}");
        }
        long[] rowShape = local.shape[1..];
        long rowBytes = rowShape.Aggregate(1L, (a, b) => a * b) * local.element_size();
        long total = counts.Sum();
        var result = empty([total, .. rowShape], local.dtype);
        try
        {
            long before = counts.Take(Rank).Sum();
            if (local.shape[0] > 0)
            {
                using (no_grad())
                {
                    using var mine = result.narrow(0, before, local.shape[0]);
                    mine.copy_(local);
                }
            }
            if (WorldSize == 1)
            {
                ThrowIfUnusable("all-gather");
                return result;
            }
            var blockBytes = counts.Select(c => c * rowBytes).ToArray();
            var plan = RingSchedule.AllGather(Rank, WorldSize, blockBytes, _options.ChunkBytes);
            ulong digest = OperationHeader.DigestOf(counts.Append(rowBytes).Concat(rowShape));
            var header = new OperationHeader(RingOperation.AllGather, 0, total * rowBytes, (int)local.dtype, 0, digest);
            Run(header, plan, Address(result), local.dtype);
            return result;
        }
        catch
        {
            result.Dispose();
            throw;
        }
    }

    /// <inheritdoc />
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="root"/> is not a rank.</exception>
    /// <exception cref="ArgumentException">The tensor is not on the CPU.</exception>
    /// <exception cref="CollectiveException">A peer died, stopped answering, disagreed on the call, or the ring was aborted.</exception>
    public void Broadcast(Tensor tensor, int root)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        EnsureCpu(tensor, "broadcast");
        if (root < 0 || root >= WorldSize)
        {
            throw new ArgumentOutOfRangeException(nameof(root), root, $"a world of {WorldSize} has ranks 0..{WorldSize - 1}");
        }
        if (WorldSize == 1)
        {
            ThrowIfUnusable("broadcast");
            return;
        }
        bool copied = !tensor.is_contiguous();
        var work = copied ? tensor.contiguous() : tensor;
        try
        {
            long bytes = work.numel() * work.element_size();
            var plan = RingSchedule.Broadcast(Rank, WorldSize, root, bytes, _options.ChunkBytes);
            var header = new OperationHeader(RingOperation.Broadcast, 0, bytes, (int)work.dtype, root, (ulong)work.numel());
            Run(header, plan, Address(work), work.dtype);
            if (copied && Rank != root)
            {
                using (no_grad())
                {
                    tensor.copy_(work);
                }
            }
        }
        finally
        {
            if (copied)
            {
                work.Dispose();
            }
        }
    }

    /// <summary>
    /// Breaks the ring from any thread: a pending call throws <see cref="CollectiveException"/> promptly, and so does
    /// every later one; the connections are shut down, so the peers' calls fail too.
    /// </summary>
    public void Abort() => Fail(new CollectiveException($"rank {Rank}: the ring was aborted"));

    /// <summary>Aborts, waits for a pending call to leave and closes the connections.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        Fail(new CollectiveException($"rank {Rank}: the ring was disposed"));
        lock (_operationGate)
        {
            _next?.Dispose();
            _previous?.Dispose();
            if (_scratch is not null)
            {
                NativeMemory.AlignedFree(_scratch);
                _scratch = null;
            }
            if (_sendFrame is not null)
            {
                NativeMemory.AlignedFree(_sendFrame);
                NativeMemory.AlignedFree(_receiveFrame);
                _sendFrame = null;
                _receiveFrame = null;
            }
            _seal?.Dispose();
            _open?.Dispose();
        }
    }

    private static void EnsureCpu(Tensor tensor, string operation)
    {
        if (tensor.device_type != DeviceType.CPU)
        {
            throw new ArgumentException($"the TCP ring's {operation} takes CPU tensors, not {tensor.device}");
        }
    }

    /// <summary>The address of the first byte of a contiguous CPU tensor (its storage offset included), or null when it is empty.</summary>
    private static byte* Address(Tensor tensor)
    {
        if (tensor.numel() == 0)
        {
            return null;
        }
        if (tensor.numel() * tensor.element_size() <= int.MaxValue)
        {
            return (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetReference(tensor.bytes));
        }
        using var flat = tensor.view(-1);
        using var first = flat.narrow(0, 0, 1);
        return (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetReference(first.bytes));
    }

    private void ThrowIfUnusable(string operation)
    {
        Exception? failure;
        lock (_gate)
        {
            failure = _failure;
        }
        if (Volatile.Read(ref _disposed) != 0)
        {
            throw new ObjectDisposedException(nameof(TcpRingCollective), $"rank {Rank}: {operation} on a disposed ring");
        }
        if (failure is not null)
        {
            throw new CollectiveException($"rank {Rank}: {operation} on a broken ring ({StripRank(failure.Message)}); the next generation needs a new one", failure);
        }
    }
}
