using System.Globalization;
using System.Net.Sockets;
using System.Text;

namespace Parley.Bench;

/// <summary>An error reply from Redis.</summary>
public sealed record RedisError(string Message);

/// <summary>One command as Redis's MONITOR saw it: when (Redis's clock, µs since the epoch), from which client port, which command.</summary>
public readonly record struct MonitoredCommand(long UnixMicros, int ClientPort, string Command, string FirstArgument);

/// <summary>
/// A minimal RESP client over a plain socket: AUTH, MONITOR and a publish/subscribe probe are all the bench needs, and
/// MONITOR's stream is not something a pooled client library exposes. Reads the StackExchange.Redis configuration string
/// the nodes use (<c>host:port,password=…</c>).
/// </summary>
public sealed class RedisWire : IAsyncDisposable
{
    readonly TcpClient _client = new() { NoDelay = true };
    Stream _stream = null!;
    readonly byte[] _buffer = new byte[64 * 1024];
    int _start, _end;

    public static (string Host, int Port, string? User, string? Password) Parse(string configuration)
    {
        string host = "127.0.0.1";
        int port = 6379;
        string? user = null, password = null;
        foreach (var part in configuration.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var eq = part.IndexOf('=');
            if (eq < 0)
            {
                var colon = part.LastIndexOf(':');
                host = colon < 0 ? part : part[..colon];
                if (colon >= 0) port = int.Parse(part[(colon + 1)..], CultureInfo.InvariantCulture);
            }
            else if (part[..eq].Equals("password", StringComparison.OrdinalIgnoreCase)) password = part[(eq + 1)..];
            else if (part[..eq].Equals("user", StringComparison.OrdinalIgnoreCase)) user = part[(eq + 1)..];
        }
        return (host, port, user, password);
    }

    public static async Task<RedisWire> ConnectAsync(string configuration)
    {
        var (host, port, user, password) = Parse(configuration);
        var redis = new RedisWire();
        await redis._client.ConnectAsync(host, port);
        redis._stream = redis._client.GetStream();
        if (password is not null)
        {
            await redis.SendAsync(user is null ? ["AUTH", password] : ["AUTH", user, password]);
            // Never echo the reply's context: it could name the secret.
            if (await redis.ReadAsync() is RedisError) throw new InvalidOperationException("Redis refused the password in ConnectionStrings__Redis");
        }
        return redis;
    }

    public async Task SendAsync(params string[] args)
    {
        var text = new StringBuilder().Append('*').Append(args.Length).Append("\r\n");
        foreach (var a in args) text.Append('$').Append(Encoding.UTF8.GetByteCount(a)).Append("\r\n").Append(a).Append("\r\n");
        await _stream.WriteAsync(Encoding.UTF8.GetBytes(text.ToString()));
    }

    /// <summary>One reply: a string (simple or bulk), a long, an array, null, or a <see cref="RedisError"/>.</summary>
    public async Task<object?> ReadAsync()
    {
        var line = await ReadLineAsync();
        switch (line[0])
        {
            case '+': return line[1..];
            case '-': return new RedisError(line[1..]);
            case ':': return long.Parse(line.AsSpan(1), CultureInfo.InvariantCulture);
            case '$':
            {
                var n = int.Parse(line.AsSpan(1), CultureInfo.InvariantCulture);
                if (n < 0) return null;
                var bytes = await ReadBytesAsync(n + 2);
                return Encoding.UTF8.GetString(bytes, 0, n);
            }
            case '*':
            {
                var n = int.Parse(line.AsSpan(1), CultureInfo.InvariantCulture);
                if (n < 0) return null;
                var items = new object?[n];
                for (var i = 0; i < n; i++) items[i] = await ReadAsync();
                return items;
            }
            default: throw new InvalidDataException("not a RESP reply");
        }
    }

    public async Task<string> ReadLineAsync()
    {
        while (true)
        {
            var at = _buffer.AsSpan(_start, _end - _start).IndexOf("\r\n"u8);
            if (at >= 0)
            {
                var line = Encoding.UTF8.GetString(_buffer, _start, at);
                _start += at + 2;
                return line;
            }
            await FillAsync();
        }
    }

    async Task<byte[]> ReadBytesAsync(int count)
    {
        var result = new byte[count];
        var done = 0;
        while (done < count)
        {
            if (_start == _end) await FillAsync();
            var n = Math.Min(count - done, _end - _start);
            Buffer.BlockCopy(_buffer, _start, result, done, n);
            _start += n;
            done += n;
        }
        return result;
    }

    async Task FillAsync()
    {
        if (_start > 0)
        {
            Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
            _end -= _start;
            _start = 0;
        }
        if (_end == _buffer.Length) throw new InvalidDataException("a Redis reply line longer than the buffer");
        var n = await _stream.ReadAsync(_buffer.AsMemory(_end));
        if (n == 0) throw new EndOfStreamException("Redis closed the connection");
        _end += n;
    }

    /// <summary>Parses a MONITOR line: <c>1700000000.123456 [0 127.0.0.1:54321] "PUBLISH" "channel" "payload"</c>.</summary>
    public static MonitoredCommand? ParseMonitorLine(string line)
    {
        var space = line.IndexOf(' ');
        var dot = line.IndexOf('.');
        var open = line.IndexOf('[');
        var close = line.IndexOf(']');
        if (space < 0 || dot < 0 || dot > space || open < 0 || close < open) return null;
        var micros = long.Parse(line.AsSpan(0, dot), CultureInfo.InvariantCulture) * 1_000_000
                     + long.Parse(line.AsSpan(dot + 1, space - dot - 1).ToString().PadRight(6, '0')[..6], CultureInfo.InvariantCulture);
        var client = line[(open + 1)..close];
        var colon = client.LastIndexOf(':');
        _ = int.TryParse(client.AsSpan(colon + 1), CultureInfo.InvariantCulture, out var port);
        var args = new List<string>();
        for (var i = close + 1; i < line.Length && args.Count < 2; i++)
        {
            if (line[i] != '"') continue;
            var end = i + 1;
            while (end < line.Length && line[end] != '"') end += line[end] == '\\' ? 2 : 1;
            args.Add(line[(i + 1)..Math.Min(end, line.Length)]);
            i = end;
        }
        return new MonitoredCommand(micros, port, args.Count > 0 ? args[0].ToUpperInvariant() : "?", args.Count > 1 ? args[1] : "");
    }

    /// <summary>Deletes every key that starts with <paramref name="prefix"/> (what one bench run's cluster left: membership, throttle).</summary>
    public static async Task<int> DeleteByPrefixAsync(string configuration, string prefix)
    {
        await using var redis = await ConnectAsync(configuration);
        var deleted = 0;
        var cursor = "0";
        do
        {
            await redis.SendAsync("SCAN", cursor, "MATCH", prefix + "*", "COUNT", "500");
            if (await redis.ReadAsync() is not object?[] { Length: 2 } page || page[1] is not object?[] keys) return deleted;
            cursor = (string)page[0]!;
            if (keys.Length == 0) continue;
            await redis.SendAsync(["DEL", .. keys.Select(k => (string)k!)]);
            if (await redis.ReadAsync() is long n) deleted += (int)n;
        }
        while (cursor != "0");
        return deleted;
    }

    public ValueTask DisposeAsync()
    {
        _client.Dispose();
        return ValueTask.CompletedTask;
    }
}

/// <summary>Every command Redis executes while it runs (Redis's MONITOR), for the timeline of a cross-node termination.</summary>
public sealed class RedisMonitor : IAsyncDisposable
{
    readonly RedisWire _redis;
    readonly List<MonitoredCommand> _seen = [];
    readonly Task _loop;

    RedisMonitor(RedisWire redis)
    {
        _redis = redis;
        _loop = Task.Run(ReadAsync);
    }

    public static async Task<RedisMonitor> StartAsync(string configuration)
    {
        var redis = await RedisWire.ConnectAsync(configuration);
        await redis.SendAsync("MONITOR");
        if (await redis.ReadLineAsync() != "+OK") throw new InvalidOperationException("Redis refused MONITOR");
        return new RedisMonitor(redis);
    }

    async Task ReadAsync()
    {
        try
        {
            while (true)
                if (RedisWire.ParseMonitorLine((await _redis.ReadLineAsync()).TrimStart('+')) is { } command)
                    lock (_seen) _seen.Add(command);
        }
        catch (Exception) { /* stopped */ }
    }

    public List<MonitoredCommand> Seen() { lock (_seen) return [.. _seen]; }

    public async ValueTask DisposeAsync()
    {
        await _redis.DisposeAsync();
        await _loop;
    }
}
