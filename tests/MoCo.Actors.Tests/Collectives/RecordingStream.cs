namespace MoCo.Actors.Tests.Collectives;

/// <summary>Passes reads and writes through to another stream and keeps a copy of both directions (<see cref="Written"/>, <see cref="Received"/>).</summary>
internal sealed class RecordingStream(Stream inner) : Stream
{
    public MemoryStream Written { get; } = new();

    public MemoryStream Received { get; } = new();

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override void Flush() => inner.Flush();

    public override int Read(byte[] buffer, int offset, int count)
    {
        int n = inner.Read(buffer, offset, count);
        Received.Write(buffer, offset, n);
        return n;
    }

    public override void Write(byte[] buffer, int offset, int count)
    {
        Written.Write(buffer, offset, count);
        inner.Write(buffer, offset, count);
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();
}
