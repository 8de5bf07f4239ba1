using System.Diagnostics;
using System.Net.Sockets;
using MoCo.Model.Collectives;
using static TorchSharp.torch;

namespace MoCo.Actors.Collectives;

/// <summary>
/// The ring's transfers: one collective driven on the calling thread (the header, then the plan's segments sent,
/// received, opened and reduced as the links allow), the waits, and how a failure breaks the ring and is described.
/// </summary>
public sealed unsafe partial class TcpRingCollective
{
    /// <summary>Runs one collective: the header, then the plan's sends and receives, interleaved on this thread.</summary>
    private void Run(OperationHeader header, RingPlan plan, byte* buffer, ScalarType dtype)
    {
        lock (_operationGate)
        {
            ThrowIfUnusable(header.Name);
            header = header with { Sequence = ++_sequence };
            long start = Stopwatch.GetTimestamp();
            try
            {
                Drive(header, plan, buffer, dtype, start + _operationTicks);
            }
            catch (Exception e)
            {
                Fail(e);
            }
            Exception? failure;
            lock (_gate)
            {
                failure = _failure;
            }
            if (failure is not null)
            {
                throw Describe(failure, header, start);
            }
        }
    }

    /// <summary>
    /// Moves every segment of <paramref name="plan"/>: sends whatever the successor's socket takes (a send only once the
    /// receives it forwards are complete), receives whatever the predecessor has sent (adding a reduce segment into the
    /// buffer when it is whole), and polls both sockets when neither can move, until the deadline. When sealed, each
    /// header or segment goes out as one frame, sealed into the send frame buffer when its turn comes, and comes in as
    /// one frame, whose announced length is checked as soon as it arrives and which is opened into its place (the
    /// buffer, the scratch segment of a reduce, or the peer's header) once it is whole.
    /// </summary>
    private void Drive(OperationHeader header, RingPlan plan, byte* buffer, ScalarType dtype, long deadline)
    {
        var next = _next!;
        var previous = _previous!;
        byte* mine = stackalloc byte[OperationHeader.Size];
        byte* theirs = stackalloc byte[OperationHeader.Size];
        header.Write(new Span<byte>(mine, OperationHeader.Size));
        var context = new ReadOnlySpan<byte>(mine, OperationHeader.Size); // bound into every segment's frame
        int overhead = _seal is null ? 0 : RingFrameCipher.Overhead;
        var sends = plan.Sends;
        var receives = plan.Receives;
        var hook = AfterReceive;
        int sendIndex = -1; // -1: the header
        byte* sendWire = null; // the bytes of the current send as they go on the wire (null: not prepared yet)
        int sendWireLength = 0;
        int sendDone = 0;   // bytes of the current send already handed to the socket
        int receiveIndex = -1;
        int receiveDone = 0; // bytes of the current receive's wire form already taken
        while (sendIndex < sends.Length || receiveIndex < receives.Length)
        {
            bool moved = false;
            bool sendReady = false;
            while (sendIndex < sends.Length)
            {
                if (sendWire is null)
                {
                    byte* data;
                    int length;
                    if (sendIndex < 0)
                    {
                        data = mine;
                        length = OperationHeader.Size;
                    }
                    else
                    {
                        var piece = sends[sendIndex];
                        if (piece.AfterReceives > Math.Max(receiveIndex, 0))
                        {
                            break; // forwards a segment that has not fully arrived yet
                        }
                        data = buffer + piece.Offset;
                        length = piece.Length;
                    }
                    if (_seal is null)
                    {
                        sendWire = data;
                        sendWireLength = length;
                    }
                    else
                    {
                        sendWireLength = length + overhead;
                        _seal.Seal(new ReadOnlySpan<byte>(data, length), sendIndex < 0 ? default : context, new Span<byte>(_sendFrame, sendWireLength));
                        sendWire = _sendFrame;
                    }
                }
                sendReady = true;
                int sent = next.TrySend(sendWire + sendDone, sendWireLength - sendDone);
                if (sent == 0)
                {
                    break;
                }
                moved = true;
                sendDone += sent;
                if (sendDone == sendWireLength)
                {
                    sendIndex++;
                    sendDone = 0;
                    sendWire = null;
                    sendReady = false;
                }
            }

            while (receiveIndex < receives.Length)
            {
                byte* target;
                int length;
                bool reduce = false;
                if (receiveIndex < 0)
                {
                    target = theirs;
                    length = OperationHeader.Size;
                }
                else
                {
                    var piece = receives[receiveIndex];
                    reduce = piece.Reduce;
                    target = reduce ? _scratch : buffer + piece.Offset;
                    length = piece.Length;
                }
                byte* wire = _open is null ? target : _receiveFrame;
                int wireLength = length + overhead;
                int received = Receive(previous, wire + receiveDone, wireLength - receiveDone, receiveDone, wireLength);
                if (received == 0)
                {
                    break;
                }
                moved = true;
                int before = receiveDone;
                receiveDone += received;
                if (_open is not null && before < RingFrameCipher.LengthBytes && receiveDone >= RingFrameCipher.LengthBytes)
                {
                    CheckFrameLength(wire, length, receiveIndex, previous);
                }
                if (receiveDone < wireLength)
                {
                    continue;
                }
                if (_open is not null)
                {
                    Open(wire, length, receiveIndex < 0 ? default : context, target, receiveIndex, previous);
                }
                if (receiveIndex < 0)
                {
                    CheckHeader(header, theirs, previous);
                }
                else
                {
                    if (reduce)
                    {
                        RingReduce.Add(dtype, buffer + receives[receiveIndex].Offset, _scratch, length);
                    }
                    hook?.Invoke(receiveIndex);
                }
                receiveIndex++;
                receiveDone = 0;
                break; // a complete segment may unblock a send: give the successor its turn
            }

            if (!moved)
            {
                Wait(receiveIndex < receives.Length, sendReady, deadline);
            }
        }
    }

    /// <summary>Receives what has arrived of the current frame; a connection that ends inside a sealed frame is a truncated frame.</summary>
    private int Receive(RingLink previous, byte* data, int length, int done, int frameLength)
    {
        try
        {
            return previous.TryReceive(data, length);
        }
        catch (RingLinkException e) when (_open is not null && done > 0)
        {
            throw new RingLinkException(
                $"integrity check failed: {e.Message} inside a sealed frame ({done} of its {frameLength} bytes had come): the frame is truncated", e);
        }
    }

    /// <summary>Refuses a frame whose announced length is not the segment's, before anything else of it is read or used.</summary>
    private void CheckFrameLength(byte* frame, int length, int receiveIndex, RingLink previous)
    {
        uint announced = RingFrameCipher.AnnouncedLength(new ReadOnlySpan<byte>(frame, RingFrameCipher.LengthBytes));
        if (announced != (uint)length)
        {
            throw new RingLinkException(
                $"integrity check failed: {previous.Peer} sent a frame announcing {announced} bytes where {What(receiveIndex)} of {length} bytes was due " +
                "(the stream was altered, cut or replayed on the way, or the peer is out of step); nothing of it was used");
        }
    }

    /// <summary>Opens a whole frame into <paramref name="target"/>, or fails the operation with an integrity error naming the peer.</summary>
    private void Open(byte* frame, int length, ReadOnlySpan<byte> context, byte* target, int receiveIndex, RingLink previous)
    {
        ulong counter = _open!.Frames;
        if (!_open.TryOpen(new ReadOnlySpan<byte>(frame, length + RingFrameCipher.Overhead), context, new Span<byte>(target, length)))
        {
            throw new RingLinkException(
                $"integrity check failed on frame #{counter} from {previous.Peer} ({What(receiveIndex)}, AES-GCM tag mismatch): it was altered, " +
                "reordered, replayed or cut on the way, or not sealed by that peer for this operation; the operation's data cannot be trusted and the ring is closed");
        }
    }

    private static string What(int receiveIndex) => receiveIndex < 0 ? "the operation header" : $"segment {receiveIndex}";

    private void CheckHeader(OperationHeader header, byte* theirs, RingLink previous)
    {
        var them = OperationHeader.Read(new ReadOnlySpan<byte>(theirs, OperationHeader.Size));
        if (them != header)
        {
            string what = them is null ? "bytes that are not an operation header (the ring is out of step)" : $"{them}";
            throw new CollectiveException(
                $"rank {Rank}: {header}: {previous.Peer} began {what}. Ranks must make the same collective calls, in the same order, " +
                "with the same sizes, dtypes, roots and all-gather counts");
        }
    }

    /// <summary>Waits until the predecessor has data (when <paramref name="receiving"/>) or the successor takes data (when <paramref name="sending"/>), or the deadline passes.</summary>
    private void Wait(bool receiving, bool sending, long deadline)
    {
        long ticks = deadline - Stopwatch.GetTimestamp();
        if (ticks <= 0)
        {
            string silent = $"no data came from {_previous!.Peer} before the operation's deadline (it stopped sending, or never arrived)";
            string full = $"{_next!.Peer} took no data before the operation's deadline (it stopped reading)";
            throw new RingLinkException(receiving && sending ? $"{silent}, and {full}" : receiving ? silent : full);
        }
        if (!receiving && !sending)
        {
            throw new InvalidOperationException($"rank {Rank}: the ring's plan waits for nothing (a send depends on a receive that never comes)");
        }
        _readable.Clear();
        _writable.Clear();
        if (receiving)
        {
            _readable.Add(_previous!.Socket);
        }
        if (sending)
        {
            _writable.Add(_next!.Socket);
        }
        int microseconds = (int)Math.Clamp(ticks * 1_000_000 / Stopwatch.Frequency, 1, int.MaxValue);
        try
        {
            Socket.Select(receiving ? _readable : null, sending ? _writable : null, null, microseconds);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // a link was shut down or broke: the next send or receive names it
        }
    }

    /// <summary>Records the ring's first failure and shuts the links down: a pending wait returns at once, and the peers see the connections close.</summary>
    private void Fail(Exception failure)
    {
        lock (_gate)
        {
            _failure ??= failure;
        }
        _next?.Shutdown();
        _previous?.Shutdown();
    }

    private CollectiveException Describe(Exception failure, OperationHeader header, long start)
    {
        if (failure is CollectiveException collective)
        {
            return collective.Message.StartsWith($"rank {Rank}: {header}", StringComparison.Ordinal)
                ? collective
                : new CollectiveException($"rank {Rank}: {header}: {StripRank(collective.Message)}", collective);
        }
        double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
        string timeout = $"operation timeout {_options.OperationTimeout.TotalSeconds:0.###} s";
        return failure is RingLinkException link
            ? new CollectiveException($"rank {Rank}: {header} failed after {seconds:0.##} s ({timeout}): {link.Message}", link)
            : new CollectiveException($"rank {Rank}: {header} failed after {seconds:0.##} s: {failure.GetType().Name}: {failure.Message}", failure);
    }

    private string StripRank(string message)
    {
        string prefix = $"rank {Rank}: ";
        return message.StartsWith(prefix, StringComparison.Ordinal) ? message[prefix.Length..] : message;
    }
}
