namespace MoCo.Model.Data;

/// <summary>
/// The decompressed bytes of a tar archive on their way to <see cref="System.Formats.Tar.TarReader"/>, checked one
/// 512-byte block at a time before the reader sees them: a header of a metadata entry (PAX <c>x</c> or <c>g</c>, GNU
/// long name <c>L</c> or long link <c>K</c>) whose size field declares more than the limit is refused with an
/// <see cref="InvalidDataException"/> naming its offset and size, because the reader allocates such a block whole
/// (up to 2 GiB for one 512-byte header) before reading it. Every aligned block whose header checksum is valid is
/// checked, so the guard needs no model of the archive to keep its place; the price is that a file inside the
/// archive holding such a block (a tar inside the tar, with an oversized metadata entry) is refused too.
/// </summary>
internal sealed class TarHeaderGuardStream : Stream
{
    private const int BlockBytes = 512;
    private const int TypeFlagOffset = 156;
    private const int SizeOffset = 124;
    private const int SizeBytes = 12;

    private readonly Stream _inner;
    private readonly long _maxMetadataBytes;
    private readonly byte[] _buffer = new byte[64 * BlockBytes];
    private long _bufferOffset;
    private int _next;
    private int _end;

    /// <summary>Guards <paramref name="inner"/> (not owned) against metadata headers of more than <paramref name="maxMetadataBytes"/>.</summary>
    public TarHeaderGuardStream(Stream inner, long maxMetadataBytes)
    {
        _inner = inner;
        _maxMetadataBytes = maxMetadataBytes;
    }

    /// <inheritdoc />
    public override bool CanRead => true;

    /// <inheritdoc />
    public override bool CanSeek => false;

    /// <inheritdoc />
    public override bool CanWrite => false;

    /// <inheritdoc />
    public override long Length => throw new NotSupportedException();

    /// <inheritdoc />
    public override long Position
    {
        get => _bufferOffset + _next;
        set => throw new NotSupportedException();
    }

    /// <inheritdoc />
    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    /// <inheritdoc />
    /// <exception cref="InvalidDataException">A metadata header declares more than the limit.</exception>
    public override int Read(Span<byte> destination)
    {
        if (destination.IsEmpty)
        {
            return 0;
        }
        if (_next == _end && !Fill())
        {
            return 0;
        }
        int n = Math.Min(destination.Length, _end - _next);
        _buffer.AsSpan(_next, n).CopyTo(destination);
        _next += n;
        return n;
    }

    /// <inheritdoc />
    public override void Flush()
    {
    }

    /// <inheritdoc />
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    /// <inheritdoc />
    public override void SetLength(long value) => throw new NotSupportedException();

    /// <inheritdoc />
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    /// <summary>Reads the next whole buffer (whole blocks, so blocks stay aligned; less only at the end) and checks its blocks.</summary>
    private bool Fill()
    {
        _bufferOffset += _end;
        _next = 0;
        _end = _inner.ReadAtLeast(_buffer, _buffer.Length, throwOnEndOfStream: false);
        for (int block = 0; block + BlockBytes <= _end; block += BlockBytes)
        {
            Check(_buffer.AsSpan(block, BlockBytes), _bufferOffset + block);
        }
        return _end > 0;
    }

    private void Check(ReadOnlySpan<byte> block, long offset)
    {
        string? kind = block[TypeFlagOffset] switch
        {
            (byte)'x' => "PAX extended header",
            (byte)'g' => "PAX global header",
            (byte)'L' => "GNU long name",
            (byte)'K' => "GNU long link",
            _ => null,
        };
        if (kind is null || !TarBlock.TryParseSize(block.Slice(SizeOffset, SizeBytes), out long size) || size <= _maxMetadataBytes || !TarBlock.ChecksumMatches(block))
        {
            return; // not a metadata header, or one the reader refuses by itself without allocating
        }
        throw new InvalidDataException(
            $"the tar header at byte {offset} declares a {size}-byte {kind}, more than the {_maxMetadataBytes} bytes accepted for one");
    }
}
