using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;
using Parley.Server;
using Parley.Server.OAuth;

namespace Parley.E2E.Tests;

/// <summary>
/// What an operator reads (docs/logging.md): the access log, the termination line, refusals, each with its stable event id
/// and fields, and never a token, a secret or message text; and the standard Logging configuration honoured by a real process.
/// </summary>
public sealed class LoggingTests
{
    static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);

    static Task<ParleyServer> StartAsync(LogCapture logs, Func<ParleyOptions, ParleyOptions>? configure = null) =>
        ParleyServer.StartAsync(configure, services: s => s.AddSingleton<ILoggerProvider>(logs));

    [Fact]
    public async Task AccessLog_OneLinePerRequest_WithMethodPathStatusDuration_AndNeverATokenSecretOrMessageText()
    {
        var logs = new LogCapture();
        var secret = "s3cret-" + Guid.NewGuid().ToString("N");
        await using var server = await StartAsync(logs, o => o with { AccessLogEnabled = true, DemoClientSecret = secret });
        using var platform = await server.PlatformAsync(secret: secret);
        var bearer = platform.Http.DefaultRequestHeaders.Authorization!.Parameter!;
        var text = "my card number is 4111-" + Guid.NewGuid().ToString("N");
        var queryToken = "q-" + Guid.NewGuid().ToString("N");

        var guest = await server.GuestAsync();
        await guest.ConfigureAsync();
        var jwt = await guest.JwtAsync();
        Assert.Equal("message", (string?)(await guest.SendTextAsync(text))["type"]);
        var conversationId = await platform.ConversationOfSessionAsync(await guest.SessionIdAsync());
        var (ended, _) = await platform.PostAsync($"/api/v2/conversations/{conversationId}/disconnect");
        Assert.Equal(HttpStatusCode.Accepted, ended.StatusCode);
        // A credential in a query string (a client's mistake) is not written down either.
        using var history = new HttpRequestMessage(HttpMethod.Get, $"/webdeployments/v1/deployments/{ParleyServer.DeploymentId}/config.json?token={queryToken}&x=1");
        await platform.Http.SendAsync(history);
        // A notification channel's id is its capability: not written down, in a path or in the socket's connectUri.
        var (_, channel) = await platform.PostAsync("/api/v2/notifications/channels");
        var channelId = (string)channel!["id"]!;
        var (subscribed, _) = await platform.PostAsync($"/api/v2/notifications/channels/{channelId}/subscriptions", new[] { new { id = $"v2.detail.events.conversation.{conversationId}.customer.end" } });
        Assert.Equal(HttpStatusCode.OK, subscribed.StatusCode);
        using (var channelSocket = new System.Net.WebSockets.ClientWebSocket())
        {
            await channelSocket.ConnectAsync(new Uri((string)channel["connectUri"]!), CancellationToken.None).WaitAsync(Wait);
            await channelSocket.CloseOutputAsync(System.Net.WebSockets.WebSocketCloseStatus.NormalClosure, null, CancellationToken.None).WaitAsync(Wait);
        }
        await guest.DisposeAsync();

        var token = await logs.WaitForAsync(e => e.EventId == 9001 && e.Field("Path") == "/oauth/token", Wait);
        Assert.Equal(ParleyLog.Access, token.Category);
        Assert.Equal(LogLevel.Information, token.Level);
        Assert.Equal("POST", token.Field("Method"));
        Assert.Equal("200", token.Field("Status"));
        Assert.True(double.Parse(token.Field("DurationMs")!, System.Globalization.CultureInfo.InvariantCulture) >= 0);
        Assert.True(long.Parse(token.Field("Bytes")!) > 0, token.Message);
        Assert.Equal("127.0.0.1", token.Field("Client"));
        var disconnect = await logs.WaitForAsync(e => e.EventId == 9001 && e.Field("Path") == $"/api/v2/conversations/{conversationId}/disconnect", Wait);
        Assert.Equal("202", disconnect.Field("Status"));
        var masked = await logs.WaitForAsync(e => e.EventId == 9001 && e.Field("Path")!.Contains("config.json"), Wait);
        Assert.EndsWith("?token=***&x=1", masked.Field("Path"));
        // The guest's socket is one line, written when it closes, with how long it was open.
        var socket = await logs.WaitForAsync(e => e.EventId == 9002 && e.Field("Path")!.StartsWith("/v1"), Wait);
        Assert.StartsWith("/v1?deploymentId=", socket.Field("Path"));
        Assert.Equal("101", socket.Field("Status"));
        await logs.WaitForAsync(e => e.EventId == 1003, Wait);   // the guest's own close line (GuestApi)
        var subscriptions = await logs.WaitForAsync(e => e.EventId == 9001 && e.Field("Path")!.EndsWith("/subscriptions"), Wait);
        Assert.Equal("/api/v2/notifications/channels/***/subscriptions", subscriptions.Field("Path"));
        var channelLine = await logs.WaitForAsync(e => e.EventId == 9002 && e.Field("Path")!.StartsWith("/channels/"), Wait);
        Assert.Equal("/channels/***", channelLine.Field("Path"));

        foreach (var forbidden in new[] { secret, bearer, guest.Token, jwt, text, queryToken, channelId })
            Assert.DoesNotContain(logs.All, e => e.Contains(forbidden));
    }

    [Fact]
    public async Task AccessLog_IsOffByDefault_OutsideDevelopment()
    {
        var logs = new LogCapture();
        await using var server = await StartAsync(logs);
        using var platform = await server.PlatformAsync();
        var (response, _) = await platform.GetAsync("/api/v2/parley/webmessaging/sessions");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        // The Parley lines of the same start are there (the capture works); no access line is.
        await logs.WaitForAsync(e => e.EventId == 7001, Wait);
        Assert.DoesNotContain(logs.All, e => e.Category == ParleyLog.Access);
    }

    [Fact]
    public async Task Termination_IsOneLine_WithWhoLeverReasonSocketsAndLatency_WrittenBeforeTheAnswer()
    {
        var logs = new LogCapture();
        await using var server = await StartAsync(logs);
        using var platform = await server.PlatformAsync();
        await using var guest = await server.GuestAsync();
        await guest.ConfigureAsync();
        var sessionId = await guest.SessionIdAsync();
        var conversationId = (string)(await platform.StartConversationAsync(sessionId))["conversationId"]!;
        await guest.NextAsync(Frames.IsOutboundText);
        var started = await logs.WaitForAsync(e => e.EventId == 2001, Wait);
        Assert.Equal(conversationId, started.Field("ConversationId"));
        Assert.Equal(sessionId, started.Field("SessionId"));

        var reason = "compliance: " + new string('x', 400);
        using var request = new HttpRequestMessage(HttpMethod.Post, $"/api/v2/conversations/{conversationId}/disconnect");
        request.Headers.Add("Parley-Termination-Reason", reason);
        var response = await platform.Http.SendAsync(request);
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);

        // No waiting: the line is written after the sockets were told and before the HTTP answer.
        var line = Assert.Single(logs.All, e => e.EventId == 3001);
        Assert.Equal(ParleyLog.Termination, line.Category);
        Assert.Equal(LogLevel.Information, line.Level);
        Assert.Equal(conversationId, line.Field("ConversationId"));
        Assert.Equal(ParleyOptions.DefaultClientId, line.Field("ClientId"));
        Assert.Equal("ConversationDisconnect", line.Field("Lever"));
        Assert.Equal("1", line.Field("Sockets"));
        Assert.True(double.Parse(line.Field("LatencyMs")!, System.Globalization.CultureInfo.InvariantCulture) > 0);
        // The reason is the operator's text: there, but clipped.
        Assert.StartsWith("compliance: xxx", line.Field("Reason"));
        Assert.True(line.Field("Reason")!.Length <= ParleyLog.MaxReasonLength + 1, line.Field("Reason"));
        Assert.Contains($"terminated by {ParleyOptions.DefaultClientId} via ConversationDisconnect", line.Message);
    }

    [Fact]
    public async Task Termination_ByTheInactivitySweeper_IsLoggedAsAnyOtherEnd()
    {
        var logs = new LogCapture();
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var server = await ParleyServer.StartAsync(clock: clock, services: s => s.AddSingleton<ILoggerProvider>(logs));
        var sweeper = server.Services.GetRequiredService<InactivitySweeper>();
        using var platform = await server.PlatformAsync();
        var (_, deployment) = await platform.PostAsync("/api/v2/parley/deployments", new { name = "idle", inactivityTimeoutSeconds = 60 });
        await using var guest = await TestGuest.ConnectAsync(server, Guid.NewGuid().ToString(), null, (string)deployment!["id"]!);
        await guest.ConfigureAsync();
        await guest.SendTextAsync("hello?");

        clock.Advance(TimeSpan.FromSeconds(61));
        await sweeper.SweptAsync(clock.GetUtcNow()).WaitAsync(Wait);

        // The sweep is done once its ends were told: the line is there without waiting.
        var line = Assert.Single(logs.All, e => e.EventId == 3001);
        Assert.Equal("parley:inactivity", line.Field("ClientId"));
        Assert.Equal("Inactivity", line.Field("Lever"));
        Assert.Equal("1", line.Field("Sockets"));
        await guest.NextAsync(Frames.IsDisconnect, Wait);
    }

    [Fact]
    public async Task Refusals_401_403_409_AndTheTokenEndpoint_AreLoggedWithTheirReasons()
    {
        var logs = new LogCapture();
        await using var server = await StartAsync(logs);
        using var platform = await server.PlatformAsync();
        using var anonymous = new HttpClient { BaseAddress = server.BaseAddress };

        // 401: no bearer token.
        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.GetAsync("/api/v2/parley/webmessaging/sessions")).StatusCode);
        var unauthorized = await logs.WaitForAsync(e => e.EventId == 4001 && e.Field("Status") == "401", Wait);
        Assert.Equal(ParleyLog.Refusals, unauthorized.Category);
        Assert.Equal("authentication.required", unauthorized.Field("Code"));
        Assert.Equal("GET", unauthorized.Field("Method"));
        Assert.Equal("/api/v2/parley/webmessaging/sessions", unauthorized.Field("Path"));
        Assert.Contains("No authentication bearer token", unauthorized.Field("Reason"));

        // 401 at the token endpoint: the reason, never the presented secret.
        var wrong = "wrong-" + Guid.NewGuid().ToString("N");
        using var form = new HttpRequestMessage(HttpMethod.Post, "/oauth/token") { Content = new FormUrlEncodedContent([new("grant_type", "client_credentials")]) };
        form.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{ParleyOptions.DefaultClientId}:{wrong}")));
        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.SendAsync(form)).StatusCode);
        var token = await logs.WaitForAsync(e => e.EventId == 4002, Wait);
        Assert.Equal("wrong secret", token.Field("Reason"));
        Assert.Equal(ParleyOptions.DefaultClientId, token.Field("ClientId"));
        // An unknown client id may be a secret in the wrong field (id and secret swapped): only a short hash of it is logged.
        var swapped = "swapped-" + Guid.NewGuid().ToString("N");
        using var swap = new HttpRequestMessage(HttpMethod.Post, "/oauth/token") { Content = new FormUrlEncodedContent([new("grant_type", "client_credentials")]) };
        swap.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{swapped}:{ParleyOptions.DefaultClientId}")));
        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.SendAsync(swap)).StatusCode);
        var unknown = await logs.WaitForAsync(e => e.EventId == 4002 && e.Field("Reason") == "unknown client", Wait);
        Assert.Matches("^sha256:[0-9a-f]{8}$", unknown.Field("ClientId"));

        // 409: a second end of an ended conversation.
        await using var guest = await server.GuestAsync();
        await guest.ConfigureAsync();
        var conversationId = (string)(await platform.StartConversationAsync(await guest.SessionIdAsync()))["conversationId"]!;
        Assert.Equal(HttpStatusCode.Accepted, (await platform.PostAsync($"/api/v2/conversations/{conversationId}/disconnect")).Response.StatusCode);
        Assert.Equal(HttpStatusCode.Conflict, (await platform.PostAsync($"/api/v2/conversations/{conversationId}/disconnect")).Response.StatusCode);
        var conflict = await logs.WaitForAsync(e => e.EventId == 4001 && e.Field("Status") == "409", Wait);
        Assert.Equal("conversation.already.disconnected", conflict.Field("Code"));
        Assert.Contains("already ended", conflict.Field("Reason"));

        // 409 on the guest socket: a message after a read-only end, in the guest error frame and in the log.
        var refused = await guest.SendTextAsync("are you there?");
        Assert.Equal(409, (int)refused["code"]!);
        var guestConflict = await logs.WaitForAsync(e => e.EventId == 4004, Wait);
        Assert.Equal("409", guestConflict.Field("Status"));
        Assert.Equal("onMessage", guestConflict.Field("Action"));
        Assert.Equal(await guest.SessionIdAsync(), guestConflict.Field("SessionId"));

        // 403: a token without the permission (a client made with analytics only).
        var (created, body) = await platform.PostAsync("/api/v2/oauth/clients", new { name = "reader", permissions = new[] { Permissions.AnalyticsView } });
        Assert.Equal(HttpStatusCode.OK, created.StatusCode);
        using var reader = await server.PlatformAsync((string)body!["id"]!, (string)body["secret"]!);
        Assert.Equal(HttpStatusCode.Forbidden, (await reader.PostAsync($"/api/v2/conversations/{conversationId}/disconnect")).Response.StatusCode);
        var forbidden = await logs.WaitForAsync(e => e.EventId == 4001 && e.Field("Status") == "403", Wait);
        Assert.Equal("missing.permissions", forbidden.Field("Code"));

        Assert.DoesNotContain(logs.All, e => e.Contains(wrong) || e.Contains(swapped) || e.Contains((string)body["secret"]!));
    }

    [Fact]
    public async Task RealProcess_JsonFormatterAndLevels_FromStandardConfiguration()
    {
        // JSON lines, and Development turns the access log on (the readiness polls are requests too).
        await using (var json = await ParleyProcess.StartAsync(new ParleyProcessOptions
        {
            Environment = new Dictionary<string, string> { ["Logging__Console__FormatterName"] = "json", ["ASPNETCORE_ENVIRONMENT"] = "Development" },
        }))
        {
            Assert.Equal(0, await json.StopAsync(TimeSpan.FromSeconds(30)));
            var lines = json.Stdout.Split('\n').Where(l => l.StartsWith('{')).Select(l => JsonDocument.Parse(l).RootElement).ToList();
            var started = Assert.Single(lines, l => l.GetProperty("EventId").GetInt32() == 7001);
            Assert.Equal("Parley.Hosting", started.GetProperty("Category").GetString());
            Assert.False(string.IsNullOrEmpty(started.GetProperty("State").GetProperty("Urls").GetString()));
            // The poll that found it ready (an earlier one may have timed out on a loaded machine: 499).
            Assert.Contains(lines, l => l.GetProperty("EventId").GetInt32() == 9001
                && l.GetProperty("State").GetProperty("Path").GetString() == "/readyz" && l.GetProperty("State").GetProperty("Status").ToString() == "200");
        }

        // Logging__LogLevel__Parley=Warning silences every Parley category's information lines (the access log's too),
        // while another category's information lines still show.
        await using var quiet = await ParleyProcess.StartAsync(new ParleyProcessOptions
        {
            Environment = new Dictionary<string, string> { ["Logging__LogLevel__Parley"] = "Warning", ["Parley__AccessLog__Enabled"] = "true" },
        });
        Assert.Equal(0, await quiet.StopAsync(TimeSpan.FromSeconds(30)));
        Assert.Contains("info: Microsoft.Hosting.Lifetime", quiet.Stdout);
        Assert.Contains("Parley is listening on", quiet.Stdout);
        Assert.DoesNotContain("info: Parley.", quiet.Stdout);
    }
}

/// <summary>Every log entry of one server, with its fields, for tests that assert what an operator would read.</summary>
public sealed class LogCapture : ILoggerProvider
{
    public sealed record Entry(string Category, LogLevel Level, int EventId, string Message, IReadOnlyDictionary<string, string?> Fields, string? Error)
    {
        public string? Field(string name) => Fields.TryGetValue(name, out var v) ? v : null;

        /// <summary>The text anywhere in the entry: message, fields, exception.</summary>
        public bool Contains(string text) =>
            Message.Contains(text, StringComparison.Ordinal) || Error?.Contains(text, StringComparison.Ordinal) == true
            || Fields.Values.Any(v => v?.Contains(text, StringComparison.Ordinal) == true);
    }

    readonly ConcurrentQueue<Entry> _entries = new();
    readonly object _gate = new();
    TaskCompletionSource _added = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public IReadOnlyList<Entry> All => [.. _entries];

    /// <summary>The first entry that matches, waiting (on each new entry, not by polling) up to <paramref name="timeout"/>.</summary>
    public async Task<Entry> WaitForAsync(Func<Entry, bool> match, TimeSpan timeout)
    {
        using var deadline = new CancellationTokenSource(timeout);
        while (true)
        {
            Task added;
            lock (_gate) added = _added.Task;
            if (_entries.FirstOrDefault(match) is { } found) return found;
            try { await added.WaitAsync(deadline.Token); }
            catch (OperationCanceledException)
            {
                throw new TimeoutException($"No matching log entry within {timeout}. Logged:\n" +
                    string.Join('\n', _entries.Select(e => $"{e.Category}[{e.EventId}] {e.Message}")));
            }
        }
    }

    void Add(Entry entry)
    {
        _entries.Enqueue(entry);
        TaskCompletionSource added;
        lock (_gate) (added, _added) = (_added, new(TaskCreationOptions.RunContinuationsAsynchronously));
        added.TrySetResult();
    }

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);
    public void Dispose() { }

    sealed class Logger(LogCapture capture, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(LogLevel logLevel) => logLevel != LogLevel.None;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            var fields = new Dictionary<string, string?>();
            if (state is IReadOnlyList<KeyValuePair<string, object?>> pairs)
                foreach (var (key, value) in pairs)
                    fields[key] = Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture);
            capture.Add(new Entry(category, logLevel, eventId.Id, formatter(state, exception), fields, exception?.ToString()));
        }
    }
}
