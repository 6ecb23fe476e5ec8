using Microsoft.AspNetCore.Http.Features;

namespace Parley.Server.GuestApi;

/// <summary>
/// Watches the frame headers a guest sends on its upgraded stream, so an oversized message is refused when its length
/// is announced, not after it has been read. ASP.NET's WebSocket hands a message over in chunks and never shows the
/// announced length; this stream sits beneath it, reads each frame header (RFC 6455 §5.2) as it passes, and totals the
/// announced payload of a message across its fragments. Past the cap it calls <see cref="Oversized"/> once and reads
/// nothing more from the guest: the endpoint answers 4011 and closes with 1009 (Message Too Big), and the connection is
/// cut off after the send timeout (the guest's answer to the close is not read either).
/// </summary>
public sealed class FrameSizeGuard(IHttpUpgradeFeature? inner, long maxMessageBytes) : IHttpUpgradeFeature
{
    readonly long _maxMessageBytes = maxMessageBytes;
    // The frame header being read (RFC 6455 §5.2: at most 14 bytes), inline: a guard allocates nothing beyond itself.
    HeaderBytes _header;
    int _headerCount, _headerLength;
    long _payloadLeft, _messageBytes;

    [System.Runtime.CompilerServices.InlineArray(14)]
    struct HeaderBytes { byte _first; }

    public bool IsUpgradableRequest => inner?.IsUpgradableRequest ?? false;

    /// <summary>A guard for a stream upgraded below HTTP (<see cref="GuestTransport"/>), which calls <see cref="Inspect"/> itself.</summary>
    public FrameSizeGuard(long maxMessageBytes) : this(null, maxMessageBytes) { }

    /// <summary>Called once, from the receive path, when a message announces more than the cap.</summary>
    public Action? Oversized { get; set; }

    /// <summary>The cap was crossed: nothing more is to be read from the guest.</summary>
    public bool Tripped { get; private set; }

    public async Task<Stream> UpgradeAsync() =>
        inner is null ? throw new InvalidOperationException("No HTTP upgrade under this guard.") : new GuardedStream(await inner.UpgradeAsync(), this);

    /// <summary>Installs the guard for a WebSocket request; it must run before the WebSocket middleware, which keeps the upgrade feature it finds.</summary>
    public static void Install(HttpContext http, long maxMessageBytes)
    {
        if (http.Features.Get<IHttpUpgradeFeature>() is not { IsUpgradableRequest: true } upgrade) return;
        var guard = new FrameSizeGuard(upgrade, maxMessageBytes);
        http.Features.Set<IHttpUpgradeFeature>(guard);
        http.Features.Set(guard);
    }

    /// <summary>
    /// Follows frame boundaries through <paramref name="bytes"/>, the next bytes received; -1 when all may pass, otherwise
    /// how many bytes come before the oversized frame's header (those are handed on; the rest never are).
    /// </summary>
    public int Inspect(ReadOnlySpan<byte> bytes)
    {
        var headerStart = 0;
        for (var i = 0; i < bytes.Length;)
        {
            if (_payloadLeft > 0)
            {
                var skip = (int)Math.Min(_payloadLeft, bytes.Length - i);
                _payloadLeft -= skip;
                i += skip;
                continue;
            }
            if (_headerCount == 0) headerStart = i;
            _header[_headerCount++] = bytes[i++];
            if (_headerCount == 2)
            {
                var len7 = _header[1] & 0x7F;
                _headerLength = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + ((_header[1] & 0x80) != 0 ? 4 : 0);
            }
            if (_headerCount < 2 || _headerCount < _headerLength) continue;

            ReadOnlySpan<byte> header = _header;
            var length = (header[1] & 0x7F) switch
            {
                126 => (long)(header[2] << 8 | header[3]),
                127 => (long)(System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(header.Slice(2, 8)) & long.MaxValue),
                var n => n,
            };
            var opcode = header[0] & 0x0F;
            _headerCount = 0;
            _payloadLeft = length;
            if (opcode >= 8) continue;                    // control frames are small and never part of a message
            _messageBytes = opcode == 0 ? _messageBytes + length : length;   // 0 continues a message, 1 and 2 start one
            if (_messageBytes <= _maxMessageBytes) continue;
            Tripped = true;
            Oversized?.Invoke();
            return headerStart;
        }
        return -1;
    }

    sealed class GuardedStream(Stream inner, FrameSizeGuard guard) : DuplexStream
    {
        readonly TaskCompletionSource _disposed = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (guard.Tripped) return await ReadNothingAsync(cancellationToken);
            var read = await inner.ReadAsync(buffer, cancellationToken);
            var passed = guard.Inspect(buffer.Span[..read]);
            if (passed < 0) return read;
            return passed > 0 ? passed : await ReadNothingAsync(cancellationToken);   // 0 would read as the end of the stream
        }

        /// <summary>After the cap is crossed: wait until the socket is closed or aborted; the guest's bytes are not read.</summary>
        async ValueTask<int> ReadNothingAsync(CancellationToken ct)
        {
            await _disposed.Task.WaitAsync(ct);
            return 0;
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();
        public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer, offset, count).GetAwaiter().GetResult();
        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) =>
            inner.WriteAsync(buffer, cancellationToken);
        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            inner.WriteAsync(buffer, offset, count, cancellationToken);
        public override void Write(byte[] buffer, int offset, int count) => inner.Write(buffer, offset, count);
        public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);
        public override void Flush() => inner.Flush();

        protected override void Dispose(bool disposing)
        {
            _disposed.TrySetResult();
            if (disposing) inner.Dispose();
            base.Dispose(disposing);
        }

        public override async ValueTask DisposeAsync()
        {
            _disposed.TrySetResult();
            await inner.DisposeAsync();
            await base.DisposeAsync();
        }
    }
}
