using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using Xunit.Abstractions;

namespace Parley.E2E.Tests;

/// <summary>
/// Structure-aware fuzzing of a running Parley (its own process): generated Guest API frames over WebSockets and Platform
/// API requests over HTTP (<see cref="FuzzGenerator"/>). Holds the server to: no crash, no 5xx, no guest 5000 answer, no
/// socket dropped without a close frame, every Platform error in the platform's error body, bounded memory (peak RSS).
/// The normal suite sends 20,000; <c>PARLEY_FUZZ_FRAMES=1000000</c> the long run; <c>PARLEY_FUZZ_SEED</c> repeats one.
/// </summary>
public sealed class FuzzTests(ITestOutputHelper output)
{
    const int GuestWorkers = 8, PlatformWorkers = 6;
    /// <summary>Frames a guest socket sends between two sentinels (an echo whose answer proves all before it were handled).</summary>
    const int Batch = 64;
    /// <summary>Share of the requests that go to the Platform API (the rest are guest frames).</summary>
    const double PlatformShare = 0.2;
    /// <summary>Peak resident memory allowed to the server process over the whole run.</summary>
    const long MaxPeakRss = 1L << 30;

    sealed class Tally
    {
        public long GuestFrames, PlatformRequests, Reconnects, ErrorBodiesChecked;
        public readonly ConcurrentDictionary<string, long> GuestAnswers = new(), Statuses = new(), Closes = new();
        public readonly ConcurrentQueue<string> Failures = new();

        public void Fail(string what)
        {
            if (Failures.Count < 50) Failures.Enqueue(what);
        }

        public static void Count(ConcurrentDictionary<string, long> d, string key) => d.AddOrUpdate(key, 1, (_, n) => n + 1);
    }

    [Fact]
    public async Task GeneratedFramesAndBodies_NeverCrashNever5xxNeverDropASocket()
    {
        var total = Soak.Count("PARLEY_FUZZ_FRAMES", 20_000);
        var seed = Soak.Seed("PARLEY_FUZZ_SEED");
        output.WriteLine($"fuzz: {total} frames and bodies, seed {seed} (PARLEY_FUZZ_SEED={seed} generates the same ones)");
        var data = Path.Combine(Path.GetTempPath(), "parley-fuzz-" + Guid.NewGuid().ToString("N"));
        var tally = new Tally();
        var clock = Stopwatch.StartNew();
        try
        {
            await using var server = await ParleyProcess.StartAsync(data, LoadProfile.ProcessEnvironment);
            var targets = await SetUpTargetsAsync(server.BaseAddress);
            long peakSampled = 0;
            using var sampling = new CancellationTokenSource();
            var sampler = Task.Run(async () =>
            {
                using var tick = new PeriodicTimer(TimeSpan.FromSeconds(1));
                while (await tick.WaitForNextTickAsync(sampling.Token).AsTask().ContinueWith(t => !t.IsCanceled))
                    if (!server.HasExited) peakSampled = Math.Max(peakSampled, server.RssBytes);
            });

            var platformTotal = (long)(total * PlatformShare);
            var guestTotal = total - platformTotal;
            var workers = new List<Task>();
            for (var w = 0; w < GuestWorkers; w++)
            {
                var worker = w;
                var share = guestTotal / GuestWorkers + (worker < guestTotal % GuestWorkers ? 1 : 0);
                workers.Add(GuestWorkerAsync(server.BaseAddress, worker, share, new FuzzGenerator(HashCode.Combine(seed, "guest", worker)), tally));
            }
            for (var w = 0; w < PlatformWorkers; w++)
            {
                var worker = w;
                var share = platformTotal / PlatformWorkers + (worker < platformTotal % PlatformWorkers ? 1 : 0);
                workers.Add(PlatformWorkerAsync(server.BaseAddress, worker, share, targets, new FuzzGenerator(HashCode.Combine(seed, "platform", worker)), tally));
            }
            var all = Task.WhenAll(workers);
            while (await Task.WhenAny(all, Task.Delay(TimeSpan.FromSeconds(30))) != all)
            {
                if (server.HasExited) break;
                output.WriteLine($"  {clock.Elapsed.TotalSeconds:0} s: {tally.GuestFrames} guest frames, {tally.PlatformRequests} platform requests, " +
                                 $"RSS {server.RssBytes >> 20} MB");
            }
            Assert.False(server.HasExited, $"Parley died under fuzzing:\n{server.Tail}");
            await all;
            // Still serving after it all: a fresh guest and a Platform call.
            using (var platform = await PlatformClient.ConnectAsync(server.BaseAddress))
                Assert.Equal(200, (int)(await platform.GetAsync("/api/v2/parley/deployments")).Response.StatusCode);
            await using (var guest = await LoadProfile.GuestAsync(server.BaseAddress, 0))
                Assert.Equal(200, (int)(await guest.ConfigureAsync())["code"]!);
            var peak = server.PeakRssBytes;
            await sampling.CancelAsync();
            await sampler;

            string Histogram(ConcurrentDictionary<string, long> d) => string.Join(", ", d.OrderByDescending(p => p.Value).Select(p => $"{p.Key}: {p.Value}"));
            output.WriteLine($"fuzz trials: {tally.GuestFrames + tally.PlatformRequests} in {clock.Elapsed.TotalSeconds:0} s (seed {seed}): " +
                             $"{tally.GuestFrames} guest frames, {tally.PlatformRequests} platform requests; " +
                             $"{tally.Failures.Count} failures; peak RSS {peak >> 20} MB (sampled {peakSampled >> 20} MB); " +
                             $"{tally.Reconnects} guest sockets closed by the server and reopened");
            output.WriteLine($"  guest answers: {Histogram(tally.GuestAnswers)}");
            output.WriteLine($"  guest closes: {Histogram(tally.Closes)}");
            output.WriteLine($"  platform statuses: {Histogram(tally.Statuses)}; {tally.ErrorBodiesChecked} error bodies checked");
            foreach (var f in tally.Failures) output.WriteLine($"  FAILURE {f}");
            foreach (var e in server.Errors) output.WriteLine($"  SERVER {Trim(e)}");
            Assert.Empty(tally.Failures);
            Assert.True(peak < MaxPeakRss, $"peak RSS {peak >> 20} MB");
        }
        finally
        {
            try { Directory.Delete(data, true); } catch (IOException) { }
        }
    }

    /// <summary>Real ids for the fuzzer to aim at: a conversation with its participants, a deployment, an integration, a channel.</summary>
    static async Task<FuzzTargets> SetUpTargetsAsync(Uri baseAddress)
    {
        using var platform = await PlatformClient.ConnectAsync(baseAddress);
        await LoadProfile.RaiseDeploymentLimitsAsync(platform);
        await using var guest = await LoadProfile.GuestAsync(baseAddress, 1);
        await guest.ConfigureAsync();
        var sessionId = await guest.SessionIdAsync();
        var jwt = await guest.JwtAsync();
        var conversationId = (string)(await platform.StartConversationAsync(sessionId))["conversationId"]!;
        var participants = (await platform.ConversationAsync(conversationId))["participants"]!.AsArray();
        var bot = participants.Single(p => (string?)p!["purpose"] == "workflow")!;
        var customer = participants.Single(p => (string?)p!["purpose"] == "customer")!;
        var (d, deployment) = await platform.PostAsync("/api/v2/parley/deployments", new { name = "fuzz target" });
        Assert.Equal(201, (int)d.StatusCode);
        var (i, integration) = await platform.PostAsync("/api/v2/conversations/messaging/integrations/open", new
        {
            name = "fuzz target", outboundNotificationWebhookUrl = "http://127.0.0.1:9/webhook",
            outboundNotificationWebhookSignatureSecretToken = "fuzz-target-secret-0123456789",
        });
        Assert.Equal(200, (int)i.StatusCode);
        var (c, channel) = await platform.PostAsync("/api/v2/notifications/channels");
        Assert.Equal(200, (int)c.StatusCode);
        var token = platform.Http.DefaultRequestHeaders.Authorization!.Parameter!;
        return new FuzzTargets(conversationId, (string)bot["messages"]![0]!["id"]!, (string)customer["id"]!, sessionId, (string)deployment!["id"]!,
            (string)integration!["id"]!, (string)channel!["id"]!, token, jwt);
    }

    // ------------------------------------------------------------------ guest frames

    /// <summary>A lean guest socket: counts answers, flags 5000s, and completes sentinels; remembers how it closed.</summary>
    sealed class FuzzSocket : IAsyncDisposable
    {
        readonly ClientWebSocket _socket = new();
        readonly ConcurrentDictionary<string, TaskCompletionSource> _sentinels = new();
        readonly Tally _tally;
        Task _reader = Task.CompletedTask;
        public TaskCompletionSource Closed { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public string? Abort { get; private set; }
        public string LastSent = "";

        FuzzSocket(Tally tally) => _tally = tally;

        public static async Task<FuzzSocket> ConnectAsync(Uri baseAddress, int address, Tally tally)
        {
            var s = new FuzzSocket(tally);
            await s._socket.ConnectAsync(new Uri($"ws://{baseAddress.Authority}/v1?deploymentId={ParleyServer.DeploymentId}"),
                LoadProfile.GuestInvoker(address), CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10));
            s._reader = s.ReadAsync();
            return s;
        }

        public WebSocketCloseStatus? CloseStatus => _socket.CloseStatus;

        async Task ReadAsync()
        {
            var buffer = new byte[1 << 20];
            try
            {
                while (true)
                {
                    var count = 0;
                    ValueWebSocketReceiveResult r;
                    do
                    {
                        r = await _socket.ReceiveAsync(buffer.AsMemory(count), CancellationToken.None);
                        count += r.Count;
                    } while (!r.EndOfMessage);
                    if (r.MessageType == WebSocketMessageType.Close) break;
                    Answer(buffer.AsSpan(0, count));
                }
            }
            catch (Exception e) { Abort = $"{e.GetType().Name}: {e.Message}"; }
            finally
            {
                foreach (var s in _sentinels.Values) s.TrySetResult();
                Closed.TrySetResult();
            }
        }

        void Answer(ReadOnlySpan<byte> frame)
        {
            using var doc = JsonDocument.Parse(frame.ToArray());
            var root = doc.RootElement;
            var code = root.TryGetProperty("code", out var c) && c.ValueKind == JsonValueKind.Number ? c.GetInt32() : 0;
            var cls = root.TryGetProperty("class", out var k) && k.ValueKind == JsonValueKind.String ? k.GetString() : "?";
            Tally.Count(_tally.GuestAnswers, $"{cls} {code}");
            if (code >= 5000 && code < 6000) _tally.Fail($"guest answer {code} after: {Trim(LastSent)}: {Trim(Encoding.UTF8.GetString(frame))}");
            if (root.TryGetProperty("tracingId", out var t) && t.ValueKind == JsonValueKind.String && _sentinels.TryRemove(t.GetString()!, out var done))
                done.TrySetResult();
        }

        public async Task<bool> SendAsync(ReadOnlyMemory<byte> bytes, WebSocketMessageType type)
        {
            if (_socket.State != WebSocketState.Open) return false;
            try
            {
                await _socket.SendAsync(bytes, type, true, CancellationToken.None);
                return true;
            }
            catch (Exception e) when (e is WebSocketException or IOException or ObjectDisposedException or OperationCanceledException) { return false; }
        }

        /// <summary>An echo; its answer comes after every answer to what was sent before it. False when the socket closed first.</summary>
        public async Task<bool> SentinelAsync(string tracingId)
        {
            var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _sentinels[tracingId] = done;
            var frame = Encoding.UTF8.GetBytes($"{{\"action\":\"echo\",\"tracingId\":\"{tracingId}\",\"message\":{{\"type\":\"Text\",\"text\":\"s\"}}}}");
            if (!await SendAsync(frame, WebSocketMessageType.Text)) return false;
            await done.Task.WaitAsync(TimeSpan.FromSeconds(60));
            return !Closed.Task.IsCompleted;
        }

        public async ValueTask DisposeAsync()
        {
            try
            {
                if (_socket.State == WebSocketState.Open)
                    await _socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(5));
            }
            catch (Exception) { }
            try { await _reader.WaitAsync(TimeSpan.FromSeconds(5)); } catch (Exception) { }
            _socket.Dispose();
        }
    }

    static readonly UTF8Encoding StrictUtf8 = new(false, throwOnInvalidBytes: true);

    static bool IsUtf8(byte[] bytes)
    {
        try { StrictUtf8.GetCharCount(bytes); return true; }
        catch (DecoderFallbackException) { return false; }
    }

    static string Trim(string s) => s.Length <= 300 ? s : s[..300] + $"… ({s.Length} chars)";

    async Task GuestWorkerAsync(Uri baseAddress, int worker, long frames, FuzzGenerator generator, Tally tally)
    {
        var token = $"fuzz-{worker}-{Guid.NewGuid()}";
        var others = Enumerable.Range(0, 4).Select(i => $"fuzz-other-{worker}-{i}").ToArray();
        var configure = Encoding.UTF8.GetBytes(
            $"{{\"action\":\"configureSession\",\"token\":\"{token}\",\"deploymentId\":\"{ParleyServer.DeploymentId}\",\"tracingId\":\"c\"}}");
        var socket = await FuzzSocket.ConnectAsync(baseAddress, 10 + worker, tally);
        try
        {
            long sent = 0, batches = 0;
            var batch = new List<(byte[] Bytes, bool Binary)>(Batch);
            while (sent < frames)
            {
                batch.Clear();
                await socket.SendAsync(configure, WebSocketMessageType.Text);
                var n = (int)Math.Min(Batch, frames - sent);
                for (var i = 0; i < n; i++)
                {
                    var (text, bytes, binary) = generator.GuestFrame(token, ParleyServer.DeploymentId, others);
                    socket.LastSent = text ?? $"({bytes!.Length} raw bytes)";
                    bytes ??= Encoding.UTF8.GetBytes(text!);
                    batch.Add((bytes, binary));
                    sent++;
                    Interlocked.Increment(ref tally.GuestFrames);
                    if (!await socket.SendAsync(bytes, binary ? WebSocketMessageType.Binary : WebSocketMessageType.Text)) break;
                }
                var open = await socket.SentinelAsync($"sentinel-{worker}-{batches++}");
                if (open) continue;
                // Closed: with a close frame (a guest Clear, an invalid or oversized frame) that is an answer; without one, a failure.
                await socket.Closed.Task.WaitAsync(TimeSpan.FromSeconds(10));
                // A text frame that is not UTF-8 fails the connection (RFC 6455 §8.1, §7.1.7): a close frame (1007) is sent, but
                // the connection may be cut before the guest reads it. Any other drop without a close frame is a failure.
                // Likewise a guest's Presence Clear closes its socket; a guest still sending then may see the connection
                // cut rather than read the close frame (docs/fuzzing.md).
                var violation = batch.Any(f => !f.Binary && !IsUtf8(f.Bytes));
                var cleared = batch.Any(f => !f.Binary && Encoding.UTF8.GetString(f.Bytes).Contains("\"Clear\""));
                if (socket.Abort is { } abort && !violation && !cleared)
                    tally.Fail($"guest socket dropped without a close frame ({abort}); the frame that does it: " +
                               await IsolateAsync(baseAddress, worker, configure, batch, tally));
                Tally.Count(tally.Closes, socket.CloseStatus is { } status ? $"{(int)status}"
                    : violation ? "cut after invalid UTF-8" : cleared ? "cut after a Clear" : "abort");
                await socket.DisposeAsync();
                Interlocked.Increment(ref tally.Reconnects);
                socket = await FuzzSocket.ConnectAsync(baseAddress, 10 + worker, tally);
            }
        }
        catch (Exception e) when (e is TimeoutException or WebSocketException or HttpRequestException)
        {
            tally.Fail($"guest worker {worker} stopped: {e.GetType().Name}: {e.Message}; last frame: {Trim(socket.LastSent)}");
        }
        finally
        {
            await socket.DisposeAsync();
        }
    }

    static int _isolations;

    /// <summary>Replays a batch one frame per fresh socket until one is dropped without a close frame: that frame, for the report.</summary>
    static async Task<string> IsolateAsync(Uri baseAddress, int worker, byte[] configure, List<(byte[] Bytes, bool Binary)> batch, Tally tally)
    {
        if (Interlocked.Increment(ref _isolations) > 5) return "(not isolated: five already were)";
        foreach (var (bytes, binary) in batch)
        {
            await using var socket = await FuzzSocket.ConnectAsync(baseAddress, 10 + worker, new Tally());
            await socket.SendAsync(configure, WebSocketMessageType.Text);
            await socket.SendAsync(bytes, binary ? WebSocketMessageType.Binary : WebSocketMessageType.Text);
            if (await socket.SentinelAsync("isolate")) continue;
            await socket.Closed.Task.WaitAsync(TimeSpan.FromSeconds(10));
            if (socket.Abort is not null)
                return binary ? $"a binary frame of {bytes.Length} bytes: {Convert.ToHexString(bytes)}" : Trim(Encoding.UTF8.GetString(bytes));
        }
        return "(none alone: it takes the sequence)";
    }

    // ------------------------------------------------------------------ platform requests

    static async Task PlatformWorkerAsync(Uri baseAddress, int worker, long requests, FuzzTargets targets, FuzzGenerator generator, Tally tally)
    {
        using var http = new HttpClient(LoadProfile.HandlerFrom(LoadProfile.Address(100 + worker), maxConnections: 4))
        {
            BaseAddress = baseAddress, Timeout = TimeSpan.FromSeconds(60),
        };
        for (long i = 0; i < requests; i++)
        {
            var r = generator.PlatformRequest(targets);
            using var request = new HttpRequestMessage(new HttpMethod(r.Method), r.Path);
            if (r.Authorization is not null) request.Headers.TryAddWithoutValidation("Authorization", r.Authorization);
            if (r.Body is not null)
            {
                request.Content = new ByteArrayContent(r.Body);
                if (r.ContentType is not null) request.Content.Headers.TryAddWithoutValidation("Content-Type", r.ContentType);
            }
            Interlocked.Increment(ref tally.PlatformRequests);
            try
            {
                using var response = await http.SendAsync(request);
                var status = (int)response.StatusCode;
                Tally.Count(tally.Statuses, status.ToString());
                var body = await response.Content.ReadAsByteArrayAsync();
                if (status >= 500) tally.Fail($"{status} for {r}: {Trim(Encoding.UTF8.GetString(body))}");
                else if (status >= 400 && r.Method != "HEAD") CheckErrorBody(r, status, body, tally);
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                tally.Fail($"no answer ({e.GetType().Name}: {e.Message}) for {r}");
            }
        }
    }

    /// <summary>An error is in the protocol's own form: the platform's error body, or RFC 6749's on the token endpoint.</summary>
    static void CheckErrorBody(FuzzRequest r, int status, byte[] body, Tally tally)
    {
        Interlocked.Increment(ref tally.ErrorBodiesChecked);
        try
        {
            using var doc = JsonDocument.Parse(body);
            var root = doc.RootElement;
            var ok = r.Path.StartsWith("/oauth/", StringComparison.Ordinal)
                ? root.TryGetProperty("error", out var e) && e.ValueKind == JsonValueKind.String
                : root.TryGetProperty("status", out var s) && s.ValueKind == JsonValueKind.Number && s.GetInt32() == status
                  && root.TryGetProperty("code", out var c) && c.ValueKind == JsonValueKind.String;
            if (!ok) tally.Fail($"{status} without the error body for {r}: {Trim(Encoding.UTF8.GetString(body))}");
        }
        catch (JsonException)
        {
            tally.Fail($"{status} with a body that is not JSON for {r}: {Trim(Encoding.UTF8.GetString(body))}");
        }
    }
}
