using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace Parley.E2E.Tests;

/// <summary>A third-party channel's webhook: a real HTTP server on loopback that records every POST and answers as told.</summary>
public sealed class WebhookReceiver : IAsyncDisposable
{
    public sealed record Received(byte[] RawBody, IReadOnlyDictionary<string, string> Headers, DateTimeOffset At)
    {
        public JsonObject Json => JsonNode.Parse(RawBody)!.AsObject();
        public string Header(string name) => Headers.TryGetValue(name.ToLowerInvariant(), out var v) ? v : "";

        /// <summary>Recomputes the signature as a receiver must: base64 HMAC-SHA256 of the raw body with the secret.</summary>
        public bool IsSignedWith(string secret) =>
            Header("X-Hub-Signature-256") == "sha256=" + Convert.ToBase64String(HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), RawBody));

        /// <summary>Parley-Webhook-Signature checked as a receiver following Stripe's instructions would (see <see cref="TimestampedSignature"/>).</summary>
        public bool HasTimestampedSignature(string secret, DateTimeOffset now) =>
            TimestampedSignature.Verify(Header("Parley-Webhook-Signature"), RawBody, secret, now, TimestampedSignature.Tolerance);
    }

    WebApplication _app = null!;
    readonly Channel<Received> _received = Channel.CreateUnbounded<Received>();
    readonly ConcurrentQueue<int> _statuses = new();
    public TimeSpan Delay { get; set; }
    public string Url { get; private set; } = "";
    public int Port => new Uri(Url).Port;
    public int Count;

    WebhookReceiver() { }

    public static async Task<WebhookReceiver> StartAsync(int port = 0)
    {
        var receiver = new WebhookReceiver();
        (receiver._app, receiver.Url) = await LoopbackWebhook.StartAsync(receiver.HandleAsync, port);
        return receiver;
    }

    async Task HandleAsync(HttpContext http)
    {
        using var buffer = new MemoryStream();
        await http.Request.Body.CopyToAsync(buffer);
        var headers = http.Request.Headers.ToDictionary(h => h.Key.ToLowerInvariant(), h => h.Value.ToString());
        Interlocked.Increment(ref Count);
        _received.Writer.TryWrite(new Received(buffer.ToArray(), headers, DateTimeOffset.UtcNow));
        if (Delay > TimeSpan.Zero) await Task.Delay(Delay);
        http.Response.StatusCode = _statuses.TryDequeue(out var status) ? status : 200;
    }

    /// <summary>The next answers, in order; 200 after they run out.</summary>
    public void RespondWith(params int[] statuses)
    {
        foreach (var s in statuses) _statuses.Enqueue(s);
    }

    public async Task<Received> NextAsync(TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(15));
        try { return await _received.Reader.ReadAsync(cts.Token); }
        catch (OperationCanceledException) { throw new TimeoutException("The webhook received nothing in time."); }
    }

    /// <summary>True when nothing arrives within <paramref name="window"/> (used after a sentinel proved the path is live).</summary>
    public bool TryTake(out Received? received) => _received.Reader.TryRead(out received);

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}

/// <summary>
/// A receiver's check of <c>Parley-Webhook-Signature</c>, written from Stripe's public instructions and not from Parley's
/// code: split on ',', take <c>t</c> and every <c>v1</c>; the expected v1 is the hex HMAC-SHA256 of <c>"{t}.{raw body}"</c>
/// keyed with the secret; accept when one matches and <c>t</c> is within the tolerance of the receiver's clock.
/// </summary>
public static class TimestampedSignature
{
    public static readonly TimeSpan Tolerance = TimeSpan.FromMinutes(5);

    public static (long T, IReadOnlyList<string> V1) Parse(string header)
    {
        long t = -1;
        var v1 = new List<string>();
        foreach (var part in header.Split(','))
        {
            var kv = part.Split('=', 2);
            if (kv is ["t", var ts]) t = long.Parse(ts);
            else if (kv is ["v1", var sig]) v1.Add(sig);
        }
        return (t, v1);
    }

    public static string Compute(string secret, long t, byte[] body) =>
        Convert.ToHexString(HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), Encoding.ASCII.GetBytes($"{t}.").Concat(body).ToArray())).ToLowerInvariant();

    public static bool Verify(string header, byte[] body, string secret, DateTimeOffset now, TimeSpan tolerance)
    {
        var (t, v1) = Parse(header);
        if (t < 0 || Math.Abs(now.ToUnixTimeSeconds() - t) > tolerance.TotalSeconds) return false;
        var expected = Encoding.ASCII.GetBytes(Compute(secret, t, body));
        return v1.Any(s => CryptographicOperations.FixedTimeEquals(expected, Encoding.ASCII.GetBytes(s)));
    }

    /// <summary>A header for an inbound post, as a channel's middleware would sign one.</summary>
    public static string Sign(string secret, long t, byte[] body) => $"t={t},v1={Compute(secret, t, body)}";
}
