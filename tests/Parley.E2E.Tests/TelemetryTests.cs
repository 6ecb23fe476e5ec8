using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Threading.Channels;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Parley.Server;

namespace Parley.E2E.Tests;

/// <summary>
/// Runs alone: the <c>Parley</c> meter is one per process, so counts are exact only while no other server in this process
/// terminates conversations or refuses requests.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class TelemetryCollection
{
    public const string Name = "Telemetry (process-wide meter)";
}

/// <summary>
/// Metrics and traces (docs/observability.md): <c>GET /metrics</c> in Prometheus text after real traffic, the span tree of
/// one termination, OTLP export when <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> is set, and the settings that turn it off.
/// </summary>
[Collection(TelemetryCollection.Name)]
public sealed class TelemetryTests
{
    [Fact]
    public async Task Metrics_AfterATermination_ExposeTheNamedMeters_WithTheLever_TheDuration_MessagesAndRefusals()
    {
        await using var server = await ParleyServer.StartAsync();
        using var platform = await server.PlatformAsync();
        using var http = new HttpClient { BaseAddress = server.BaseAddress };
        await using var guest = await server.GuestAsync();
        await guest.ConfigureAsync();
        var conversationId = (await platform.StartConversationAsync(await guest.SessionIdAsync()))["conversationId"]!.GetValue<string>();
        await guest.NextAsync(Frames.IsOutboundText);
        await guest.SendTextAsync("thanks, that is all");
        await Scrape.UntilAsync(http, s => s.Value("parley_guest_sessions_connected") == 1, "one guest session connected");

        var ended = await platform.Http.PostAsync($"/api/v2/conversations/{conversationId}/disconnect", null);
        Assert.Equal(HttpStatusCode.Accepted, ended.StatusCode);
        var again = await platform.Http.PostAsync($"/api/v2/conversations/{conversationId}/disconnect", null);   // 409: already ended
        Assert.Equal(HttpStatusCode.Conflict, again.StatusCode);
        // A guest message after the end: the read-only 409 error frame, counted as a refusal with a fixed reason code.
        Assert.Equal(409, (int)(await guest.SendTextAsync("wait, one more thing"))["code"]!);
        using var badToken = new HttpRequestMessage(HttpMethod.Post, "/oauth/token")
            { Content = new FormUrlEncodedContent([new("grant_type", "client_credentials")]) };
        badToken.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes("parley-demo-client:wrong")));
        Assert.Equal(HttpStatusCode.Unauthorized, (await http.SendAsync(badToken)).StatusCode);

        var lever = ("parley_termination_lever", "conversation_disconnect");
        var metrics = await Scrape.UntilAsync(http, s => s.Value("parley_terminations_total", lever) == 1
            && s.Value("parley_refusals_total", ("parley_refusal_reason", "invalid_client")) == 1
            && s.Value("parley_refusals_total", ("parley_refusal_reason", "guest.conversation.ended")) == 1, "the termination and the refusals counted");
        Assert.Contains("# TYPE parley_terminations_total counter", metrics.Text);
        Assert.Equal(1, metrics.Value("parley_termination_duration_seconds_count", lever));
        // call → sockets told: a sample above zero, within the notify timeout
        Assert.InRange(metrics.Value("parley_termination_duration_seconds_sum", lever), double.Epsilon, 2.0);
        Assert.Equal(1, metrics.Value("parley_messages_total", ("parley_message_direction", "inbound"), ("parley_channel", "web_messaging")));
        Assert.Equal(1, metrics.Value("parley_messages_total", ("parley_message_direction", "outbound"), ("parley_channel", "web_messaging")));
        // the start, the guest's message and the end: three conversation commits, each timed; grouped writes counted
        Assert.True(metrics.Value("parley_store_commit_duration_seconds_count") >= 3, metrics.Text);
        Assert.True(metrics.Value("parley_store_commit_group_size_count") >= 3, metrics.Text);
        Assert.Equal(1, metrics.Value("parley_refusals_total", ("http_response_status_code", "409"), ("parley_refusal_reason", "conversation.already.disconnected")));
        Assert.Equal(1, metrics.Value("parley_refusals_total", ("http_response_status_code", "401"), ("parley_refusal_reason", "invalid_client")));
        Assert.Equal(1, metrics.Value("parley_refusals_total", ("http_response_status_code", "409"), ("parley_refusal_reason", "guest.conversation.ended")));
        // ASP.NET Core, HttpClient and runtime instrumentation ride along
        Assert.Contains("http_server_request_duration_seconds_bucket", metrics.Text);
        Assert.Contains("dotnet_gc_collections_total", metrics.Text);
        Assert.Equal("parley", metrics.Label("target_info", "service_name"));
        Assert.Equal(ParleyCommandLine.Version, metrics.Label("target_info", "service_version"));   // what --version prints

        await guest.DisposeAsync();
        await Scrape.UntilAsync(http, s => s.Value("parley_guest_sessions_connected") == 0, "the guest's socket gone");
    }

    /// <summary>
    /// A participant PATCH that disconnects one participant while the conversation goes on is not a termination. No
    /// Platform API call does that here (a conversation's only platform-side participant is the bot, and disconnecting it
    /// ends the conversation), so the outcome such a PATCH would commit is handed to the trace directly.
    /// </summary>
    [Fact]
    public void Terminations_CountOnlyOutcomesThatEndTheConversation_NotAParticipantLeaving()
    {
        var counted = new List<(string Instrument, double Value)>();
        using var listener = new System.Diagnostics.Metrics.MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == Parley.Core.ParleyDiagnostics.Name && instrument.Name is "parley.terminations" or "parley.termination.duration")
                l.EnableMeasurementEvents(instrument);
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, _, _) => { lock (counted) counted.Add((instrument.Name, value)); });
        listener.SetMeasurementEventCallback<double>((instrument, value, _, _) => { lock (counted) counted.Add((instrument.Name, value)); });
        listener.Start();
        var now = DateTimeOffset.UtcNow;
        Parley.Core.Outcome Done(params Parley.Core.ConversationEvent[] events) =>
            new(Parley.Core.OutcomeStatus.Done, null, [.. events], null, Task.FromResult(1));

        using (var trace = ParleyTelemetry.StartTermination(Parley.Core.EndLever.ParticipantPatch, "telemetry-unit"))
            trace.Told(Done(new Parley.Core.ParticipantDisconnected("bot", Parley.Core.DisconnectType.Client, now)), 1);
        lock (counted) Assert.Empty(counted);

        using (var trace = ParleyTelemetry.StartTermination(Parley.Core.EndLever.ParticipantPatch, "telemetry-unit"))
            trace.Told(Done(new Parley.Core.ParticipantDisconnected("customer", Parley.Core.DisconnectType.Client, now),
                new Parley.Core.ConversationEnded(new Parley.Core.Actor("test"), Parley.Core.EndLever.ParticipantPatch, null, "customer", now)), 1);
        lock (counted)
        {
            Assert.Equal([("parley.terminations", 1.0)], counted.Where(c => c.Instrument == "parley.terminations"));
            Assert.Single(counted, c => c.Instrument == "parley.termination.duration");
        }
    }

    [Fact]
    public async Task Metrics_GuestsOverTheMessageRate_AreCountedAsRefusals_OnePerRefusedFrame()
    {
        await using var server = await ParleyServer.StartAsync(ParleyServer.ShippedGuestLimits);   // the platform's 2 per second
        using var http = new HttpClient { BaseAddress = server.BaseAddress };
        await using var guest = await server.GuestAsync();
        await guest.ConfigureAsync();

        var ids = new List<string>();
        for (var i = 0; i < 10; i++) ids.Add(await guest.SendTextNoWaitAsync($"burst {i}"));
        var refused = 0;
        foreach (var _ in ids)
        {
            var reply = await guest.NextAsync(f => f["tracingId"] is { } v && ids.Contains((string)v!));
            if ((int?)reply["code"] == 429) refused++;
        }

        Assert.InRange(refused, 1, 8);
        var reason = ("parley_refusal_reason", "guest.message.rate.session");
        await Scrape.UntilAsync(http, s => s.Value("parley_refusals_total", reason) == refused, $"{refused} refusals counted");
        var scrape = await Scrape.UntilAsync(http, s => true, "a scrape");
        Assert.Equal(refused, scrape.Value("parley_refusals_total", ("http_response_status_code", "429"), reason));
        Assert.Equal(10 - refused, scrape.Value("parley_messages_total", ("parley_message_direction", "inbound")));
    }

    [Fact]
    public async Task Trace_OneTermination_HttpCall_Termination_Commit_FanOut_SocketWrite_InOneTrace()
    {
        using var spans = new SpanRecorder();
        await using var server = await ParleyServer.StartAsync();
        using var platform = await server.PlatformAsync();
        await using var guest = await server.GuestAsync();
        await guest.ConfigureAsync();
        await using var tab = await server.GuestAsync(guest.Token);
        await tab.ConfigureAsync();
        var conversationId = (await platform.StartConversationAsync(await guest.SessionIdAsync()))["conversationId"]!.GetValue<string>();
        await guest.NextAsync(Frames.IsOutboundText);

        using var request = new HttpRequestMessage(HttpMethod.Post, $"/api/v2/conversations/{conversationId}/disconnect");
        request.Headers.Add("traceparent", spans.TraceParent);
        var response = await platform.Http.SendAsync(request);
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);

        var call = await spans.WaitForAsync(a => a.Source.Name == "Microsoft.AspNetCore" && a.Kind == ActivityKind.Server, "the HTTP server span");
        var termination = await spans.WaitForAsync("parley.termination");
        var commit = await spans.WaitForAsync("parley.store.commit");
        var fanout = await spans.WaitForAsync("parley.fanout");
        var write = await spans.WaitForAsync("parley.sockets.write");
        Assert.Equal(call.SpanId, termination.ParentSpanId);
        Assert.Equal(termination.SpanId, commit.ParentSpanId);
        Assert.Equal(termination.SpanId, fanout.ParentSpanId);
        Assert.Equal(fanout.SpanId, write.ParentSpanId);
        Assert.Equal("conversation_disconnect", termination.GetTagItem("parley.termination.lever"));
        Assert.Equal(conversationId, termination.GetTagItem("parley.conversation.id"));
        Assert.Equal(2, termination.GetTagItem("parley.sockets.told"));
        Assert.Equal(2, write.GetTagItem("parley.sockets.told"));
        Assert.Equal(["socket.written", "socket.written"], write.Events.Select(e => e.Name));
        // the commit came before the sockets were written, and the termination spans both
        Assert.True(commit.StartTimeUtc + commit.Duration <= write.StartTimeUtc, "commit before the socket writes");
        Assert.True(termination.StartTimeUtc <= commit.StartTimeUtc && write.StartTimeUtc + write.Duration <= termination.StartTimeUtc + termination.Duration);
    }

    [Fact]
    public async Task Otlp_WhenTheEndpointIsSet_TracesAndMetricsArePostedAsProtobuf_WithTheServiceName()
    {
        await using var collector = await OtlpReceiver.StartAsync();
        var server = await ParleyServer.StartAsync(args:
        [
            "--OTEL_EXPORTER_OTLP_ENDPOINT", collector.Url, "--OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf",
            "--OTEL_SERVICE_NAME", "parley-otlp-test",
        ]);
        string conversationId;
        try
        {
            using var platform = await server.PlatformAsync();
            await using var guest = await server.GuestAsync();
            await guest.ConfigureAsync();
            conversationId = (await platform.StartConversationAsync(await guest.SessionIdAsync()))["conversationId"]!.GetValue<string>();
            Assert.Equal(HttpStatusCode.Accepted, (await platform.Http.PostAsync($"/api/v2/conversations/{conversationId}/disconnect", null)).StatusCode);
        }
        finally
        {
            await server.DisposeAsync();   // the providers flush what they hold as the host stops
        }

        var traces = await collector.NextAsync("/v1/traces", body => Contains(body, "parley.termination"));
        Assert.Equal("application/x-protobuf", traces.ContentType);
        Assert.True(Contains(traces.Body, "parley-otlp-test"), "the service name from OTEL_SERVICE_NAME");
        Assert.True(Contains(traces.Body, conversationId), "the termination span's conversation id");
        var metrics = await collector.NextAsync("/v1/metrics", body => Contains(body, "parley.terminations"));
        Assert.Equal("application/x-protobuf", metrics.ContentType);
    }

    [Fact]
    public async Task Metrics_Disabled_NoScrapeEndpoint_AndAnOddPathRefusesTheStart()
    {
        await using (var server = await ParleyServer.StartAsync(args: ["--Parley:Metrics:Enabled", "false"]))
        {
            using var http = new HttpClient { BaseAddress = server.BaseAddress };
            Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync("/metrics")).StatusCode);
        }
        await using (var server = await ParleyServer.StartAsync(args: ["--Parley:Metrics:Path", "/internal/prometheus"]))
        {
            using var http = new HttpClient { BaseAddress = server.BaseAddress };
            var scrape = await http.GetAsync("/internal/prometheus");
            Assert.Equal(HttpStatusCode.OK, scrape.StatusCode);
            Assert.Contains("target_info", await scrape.Content.ReadAsStringAsync());
            Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync("/metrics")).StatusCode);
            // the SDK gateway prefix never leads there
            Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync("/gateway/internal/prometheus")).StatusCode);
        }
        foreach (var path in new[] { "/api/v2/metrics", "/health", "/Health/" })   // /health: the health alias's route, ambiguous
        {
            var refused = await Assert.ThrowsAsync<StartupRefused>(() => ParleyServer.StartAsync(args: ["--Parley:Metrics:Path", path]));
            Assert.Contains("Parley:Metrics:Path", refused.Message);
        }
    }

    static bool Contains(byte[] body, string text) => body.AsSpan().IndexOf(Encoding.UTF8.GetBytes(text)) >= 0;

    /// <summary>A scrape of <c>/metrics</c>, read as Prometheus's text format: <c>name{label="value",…} number</c> per line.</summary>
    sealed record Scrape(string Text)
    {
        /// <summary>Scrapes until <paramref name="condition"/> holds (the exporter caches a scrape for a moment), up to 10 s.</summary>
        public static async Task<Scrape> UntilAsync(HttpClient http, Func<Scrape, bool> condition, string what)
        {
            var deadline = Stopwatch.StartNew();
            while (true)
            {
                var response = await http.GetAsync("/metrics");
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
                Assert.StartsWith("text/plain", response.Content.Headers.ContentType?.MediaType);
                var scrape = new Scrape(await response.Content.ReadAsStringAsync());
                if (condition(scrape)) return scrape;
                if (deadline.Elapsed > TimeSpan.FromSeconds(10)) Assert.Fail($"Not within 10 s: {what}. Last scrape:\n{scrape.Text}");
                await Task.Delay(100);   // the next scrape: the exporter answers from a cache of up to 300 ms
            }
        }

        /// <summary>The sum over the series of <paramref name="metric"/> that carry every given label (0 when none does).</summary>
        public double Value(string metric, params (string Name, string Value)[] labels) =>
            Series(metric).Where(s => labels.All(l => s.Labels.Contains($"{l.Name}=\"{l.Value}\""))).Sum(s => s.Value);

        public string? Label(string metric, string label) => Series(metric).Select(s =>
        {
            var at = s.Labels.IndexOf(label + "=\"", StringComparison.Ordinal);
            return at < 0 ? null : s.Labels[(at + label.Length + 2)..s.Labels.IndexOf('"', at + label.Length + 2)];
        }).FirstOrDefault(v => v is not null);

        IEnumerable<(string Labels, double Value)> Series(string metric)
        {
            foreach (var line in Text.Split('\n'))
            {
                if (!line.StartsWith(metric, StringComparison.Ordinal) || line.Length == metric.Length) continue;
                var rest = line[metric.Length..];
                if (rest[0] is not ('{' or ' ')) continue;
                var labels = rest[0] == '{' ? rest[..(rest.IndexOf('}') + 1)] : "";
                var number = rest[labels.Length..].Trim().Split(' ')[0];
                yield return (labels, double.Parse(number, CultureInfo.InvariantCulture));
            }
        }
    }

    /// <summary>An OTLP/HTTP collector on loopback: records each POST's path, content type and protobuf body.</summary>
    sealed class OtlpReceiver : IAsyncDisposable
    {
        public sealed record Export(string Path, string? ContentType, byte[] Body);

        readonly WebApplication _app;
        readonly Channel<Export> _exports = Channel.CreateUnbounded<Export>();
        public string Url { get; }

        OtlpReceiver(WebApplication app, string url) => (_app, Url) = (app, url);

        public static async Task<OtlpReceiver> StartAsync()
        {
            var builder = WebApplication.CreateSlimBuilder();
            builder.Logging.ClearProviders();
            builder.WebHost.UseUrls("http://127.0.0.1:0");
            var app = builder.Build();
            Channel<Export>? sink = null;
            app.MapPost("/v1/{signal}", async (HttpContext http) =>
            {
                using var body = new MemoryStream();
                await http.Request.Body.CopyToAsync(body);
                sink!.Writer.TryWrite(new Export(http.Request.Path, http.Request.ContentType, body.ToArray()));
                return Results.Ok();
            });
            await app.StartAsync();
            var receiver = new OtlpReceiver(app, app.Urls.First());
            sink = receiver._exports;
            return receiver;
        }

        /// <summary>The first export to <paramref name="path"/> whose body matches (earlier ones are skipped).</summary>
        public async Task<Export> NextAsync(string path, Func<byte[], bool> match)
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(15));
            while (true)
            {
                var export = await _exports.Reader.ReadAsync(timeout.Token);
                if (export.Path == path && match(export.Body)) return export;
            }
        }

        public async ValueTask DisposeAsync() => await _app.DisposeAsync();
    }
}
