using System.Diagnostics;
using System.IO.Pipelines;
using System.Text;
using Microsoft.AspNetCore.Http.Features;

namespace Parley.Server;

/// <summary>
/// One line per HTTP request (<see cref="ParleyLog.Request"/>, event 9001): method, path, status, duration, bytes sent and
/// client address; a WebSocket is one line when it closes (9002), with how long it was open. Never a header, a body or a
/// query value whose name suggests a credential (<c>?token=</c>, <c>?client_secret=</c>, …): those show as <c>***</c>;
/// nor a notification channel id, which is the channel's capability (<c>/channels/***</c>).
/// </summary>
sealed class AccessLog(ILogger log)
{
    const int MaxPathLength = 300;

    public async Task InvokeAsync(HttpContext http, RequestDelegate next)
    {
        if (!log.IsEnabled(LogLevel.Information))
        {
            await next(http);
            return;
        }
        var started = Stopwatch.GetTimestamp();
        // Read before the pipeline runs: a gateway prefix is moved from Path to PathBase on the way.
        var method = http.Request.Method;
        var path = SafePath(http.Request.PathBase.Value + http.Request.Path.Value, http.Request.QueryString.Value);
        var body = http.Features.Get<IHttpResponseBodyFeature>();
        var counted = body is null ? null : new CountingBody(body);
        if (counted is not null) http.Features.Set<IHttpResponseBodyFeature>(counted);
        try
        {
            await next(http);
        }
        finally
        {
            if (counted is not null) http.Features.Set(body);
            var ms = Math.Round(Stopwatch.GetElapsedTime(started).TotalMilliseconds, 2);
            // Read after: a trusted proxy's forwarded address has replaced the proxy's own by now.
            var client = http.Connection.RemoteIpAddress?.ToString() ?? "-";
            var status = http.Response.StatusCode;
            if (status == StatusCodes.Status101SwitchingProtocols) log.WebSocketClosed(method, path, status, ms, client);
            else log.Request(method, path, status, ms, counted?.Bytes.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "-", client);
        }
    }

    /// <summary>
    /// The path and query, clipped, with the value of every credential-like query parameter and the segment after each
    /// <c>channels</c> segment (a notification channel id, its capability) replaced by <c>***</c>.
    /// </summary>
    internal static string SafePath(string path, string? query) => SafePath(path) + SafeQuery(query);

    /// <summary>The path, clipped, with a notification channel id (the segment after <c>channels</c>) as <c>***</c>.</summary>
    internal static string SafePath(string path)
    {
        if (path.Contains("channels/", StringComparison.OrdinalIgnoreCase))
        {
            var segments = path.Split('/');
            for (var i = 1; i < segments.Length; i++)
                if (segments[i].Length > 0 && segments[i - 1].Equals("channels", StringComparison.OrdinalIgnoreCase)) segments[i] = "***";
            path = string.Join('/', segments);
        }
        return ParleyLog.Clip(path, MaxPathLength);
    }

    /// <summary>The query (with its <c>?</c>, or empty), clipped, with every credential-like parameter's value as <c>***</c>.</summary>
    internal static string SafeQuery(string? query)
    {
        var text = new StringBuilder();
        if (!string.IsNullOrEmpty(query) && query.Length > 1)
        {
            var first = true;
            foreach (var pair in query[1..].Split('&'))
            {
                if (pair.Length == 0) continue;
                text.Append(first ? '?' : '&');
                first = false;
                var equals = pair.IndexOf('=');
                var name = equals < 0 ? pair : pair[..equals];
                text.Append(ParleyLog.Clip(name, 64));
                if (equals >= 0) text.Append('=').Append(Sensitive(name) ? "***" : ParleyLog.Clip(pair[(equals + 1)..], 100));
                if (text.Length > MaxPathLength) { text.Append("…"); break; }
            }
        }
        return text.ToString();
    }

    static readonly string[] SensitiveParts = ["token", "secret", "password", "passwd", "key", "auth", "sig", "jwt", "code", "credential", "session"];

    static bool Sensitive(string name)
    {
        var decoded = Uri.UnescapeDataString(name.Replace('+', ' '));
        foreach (var part in SensitiveParts)
            if (decoded.Contains(part, StringComparison.OrdinalIgnoreCase)) return true;
        return false;
    }

    /// <summary>The response body as the server has it, counting the bytes written through its stream or its pipe.</summary>
    sealed class CountingBody(IHttpResponseBodyFeature inner) : IHttpResponseBodyFeature
    {
        public long Bytes;
        Stream? _stream;
        PipeWriter? _writer;

        public Stream Stream => _stream ??= new CountingStream(inner.Stream, this);
        public PipeWriter Writer => _writer ??= new CountingWriter(inner.Writer, this);
        public void DisableBuffering() => inner.DisableBuffering();
        public Task StartAsync(CancellationToken ct = default) => inner.StartAsync(ct);
        public Task CompleteAsync() => inner.CompleteAsync();

        public Task SendFileAsync(string path, long offset, long? count, CancellationToken ct = default)
        {
            Bytes += count ?? Math.Max(0, new FileInfo(path).Length - offset);
            return inner.SendFileAsync(path, offset, count, ct);
        }
    }

    sealed class CountingWriter(PipeWriter inner, CountingBody body) : PipeWriter
    {
        public override void Advance(int bytes)
        {
            body.Bytes += bytes;
            inner.Advance(bytes);
        }

        public override ValueTask<FlushResult> WriteAsync(ReadOnlyMemory<byte> source, CancellationToken ct = default)
        {
            body.Bytes += source.Length;
            return inner.WriteAsync(source, ct);
        }

        public override Memory<byte> GetMemory(int sizeHint = 0) => inner.GetMemory(sizeHint);
        public override Span<byte> GetSpan(int sizeHint = 0) => inner.GetSpan(sizeHint);
        public override ValueTask<FlushResult> FlushAsync(CancellationToken ct = default) => inner.FlushAsync(ct);
        public override void CancelPendingFlush() => inner.CancelPendingFlush();
        public override void Complete(Exception? exception = null) => inner.Complete(exception);
        public override ValueTask CompleteAsync(Exception? exception = null) => inner.CompleteAsync(exception);
        public override bool CanGetUnflushedBytes => inner.CanGetUnflushedBytes;
        public override long UnflushedBytes => inner.UnflushedBytes;
    }

    sealed class CountingStream(Stream inner, CountingBody body) : Stream
    {
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Flush() => inner.Flush();
        public override Task FlushAsync(CancellationToken ct) => inner.FlushAsync(ct);

        public override void Write(byte[] buffer, int offset, int count)
        {
            body.Bytes += count;
            inner.Write(buffer, offset, count);
        }

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            body.Bytes += buffer.Length;
            inner.Write(buffer);
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken ct)
        {
            body.Bytes += count;
            return inner.WriteAsync(buffer, offset, count, ct);
        }

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken ct = default)
        {
            body.Bytes += buffer.Length;
            return inner.WriteAsync(buffer, ct);
        }
    }
}
