using System.Buffers.Binary;
using System.Security.Cryptography;

namespace MoCo.Actors.Collectives;

/// <summary>
/// One direction of a ring connection's sealed frames: AES-256-GCM under that direction's session key
/// (<see cref="RingHandshake"/>), nonces from a frame counter. A frame is
/// <code>
/// length (4 bytes, big-endian: the plaintext's bytes) ‖ ciphertext (length bytes) ‖ tag (16 bytes)
/// nonce = 0x00000000 ‖ counter (8 bytes, big-endian)      associated data = length ‖ context
/// </code>
/// where the context is the operation's header for a segment and empty for the header's own frame. The sender and the
/// receiver count the frames of the direction in step, so a nonce is never used twice under a key, and a frame that is
/// altered, reordered, replayed, dropped or moved to another operation fails to open. The counter stops at
/// <see cref="MaxFrames"/>, far before it could wrap: the ring fails and the next generation builds new keys. Sealing
/// and opening write into the caller's buffers and allocate nothing.
/// </summary>
internal sealed class RingFrameCipher : IDisposable
{
    /// <summary>The bytes of the length field.</summary>
    public const int LengthBytes = 4;

    /// <summary>The bytes of the GCM tag.</summary>
    public const int TagBytes = 16;

    /// <summary>What a frame adds to its plaintext: the length and the tag.</summary>
    public const int Overhead = LengthBytes + TagBytes;

    /// <summary>The most frames one key seals: 2^48, decades of frames at any rate the ring reaches, and far below the 2^64 where the counter would wrap.</summary>
    public const ulong MaxFrames = 1UL << 48;

    private const int NonceBytes = 12;
    private const int MaxContextBytes = 64;

    private readonly AesGcm _aes;

    /// <summary>Takes a 32-byte key (the caller clears its copy).</summary>
    public RingFrameCipher(ReadOnlySpan<byte> key)
    {
        _aes = new AesGcm(key, TagBytes);
    }

    /// <summary>How many frames this direction has sealed or opened: the counter of the next one.</summary>
    public ulong Frames { get; internal set; }

    /// <summary>The length a frame announces, from its first <see cref="LengthBytes"/> bytes.</summary>
    public static uint AnnouncedLength(ReadOnlySpan<byte> frame) => BinaryPrimitives.ReadUInt32BigEndian(frame);

    /// <summary>Seals <paramref name="plaintext"/> into <paramref name="frame"/> (<c>plaintext.Length + Overhead</c> bytes) as the next frame.</summary>
    /// <exception cref="InvalidOperationException">The key has sealed <see cref="MaxFrames"/> frames.</exception>
    public void Seal(ReadOnlySpan<byte> plaintext, ReadOnlySpan<byte> context, Span<byte> frame)
    {
        Span<byte> nonce = stackalloc byte[NonceBytes];
        Span<byte> associated = stackalloc byte[LengthBytes + MaxContextBytes];
        NextNonce(nonce);
        BinaryPrimitives.WriteUInt32BigEndian(frame, (uint)plaintext.Length);
        var data = Associated(frame, context, associated);
        _aes.Encrypt(nonce, plaintext, frame.Slice(LengthBytes, plaintext.Length), frame.Slice(LengthBytes + plaintext.Length, TagBytes), data);
    }

    /// <summary>
    /// Opens the next frame into <paramref name="plaintext"/> (its announced length, which the caller checked);
    /// false when it does not authenticate (then <paramref name="plaintext"/> holds zeros).
    /// </summary>
    /// <exception cref="InvalidOperationException">The key has opened <see cref="MaxFrames"/> frames.</exception>
    public bool TryOpen(ReadOnlySpan<byte> frame, ReadOnlySpan<byte> context, Span<byte> plaintext)
    {
        Span<byte> nonce = stackalloc byte[NonceBytes];
        Span<byte> associated = stackalloc byte[LengthBytes + MaxContextBytes];
        NextNonce(nonce);
        var data = Associated(frame, context, associated);
        try
        {
            _aes.Decrypt(nonce, frame.Slice(LengthBytes, plaintext.Length), frame.Slice(LengthBytes + plaintext.Length, TagBytes), plaintext, data);
            return true;
        }
        catch (AuthenticationTagMismatchException)
        {
            return false;
        }
    }

    public void Dispose() => _aes.Dispose();

    private void NextNonce(Span<byte> nonce)
    {
        if (Frames >= MaxFrames)
        {
            throw new InvalidOperationException($"this connection's key has sealed {MaxFrames} frames, its limit; the ring must be rebuilt with new keys");
        }
        nonce[..4].Clear();
        BinaryPrimitives.WriteUInt64BigEndian(nonce[4..], Frames);
        Frames++;
    }

    private static ReadOnlySpan<byte> Associated(ReadOnlySpan<byte> frame, ReadOnlySpan<byte> context, Span<byte> buffer)
    {
        frame[..LengthBytes].CopyTo(buffer);
        context.CopyTo(buffer[LengthBytes..]);
        return buffer[..(LengthBytes + context.Length)];
    }
}
