namespace Parley.Server.GuestApi;

/// <summary>A stream a WebSocket reads and writes in order, never seeks: the members a socket has no use for, once.</summary>
public abstract class DuplexStream : Stream
{
    public sealed override bool CanRead => true;
    public sealed override bool CanWrite => true;
    public sealed override bool CanSeek => false;
    public sealed override long Length => throw new NotSupportedException();
    public sealed override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public sealed override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public sealed override void SetLength(long value) => throw new NotSupportedException();
}
