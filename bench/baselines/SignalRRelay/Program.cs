using System.Collections.Concurrent;
using System.Text.Json;
using Microsoft.AspNetCore.SignalR;

// Baseline (b) for bench/: a SignalR hub (JSON protocol over WebSockets) with the same workload: ConfigureSession,
// OnMessage → "message" echo to the caller, and POST /send/{token} pushing a bot message. Nothing stored.
var builder = WebApplication.CreateSlimBuilder(args);
builder.Logging.ClearProviders();
builder.Services.AddSignalR();
builder.Services.AddSingleton<Sessions>();
var app = builder.Build();
app.MapHub<RelayHub>("/hub");
app.MapPost("/send/{token}", async (string token, HttpContext http, Sessions sessions, IHubContext<RelayHub> hub) =>
{
    using var doc = await JsonDocument.ParseAsync(http.Request.Body);
    if (!sessions.ByToken.TryGetValue(token, out var connectionId)) return Results.NotFound();
    await hub.Clients.Client(connectionId).SendAsync("message", Frames.Message(doc.RootElement.GetProperty("textBody").GetString(), "Outbound", null));
    return Results.Ok();
});
app.Run();

sealed class Sessions
{
    public readonly ConcurrentDictionary<string, string> ByToken = new();
}

sealed class RelayHub(Sessions sessions) : Hub
{
    public string ConfigureSession(string token)
    {
        sessions.ByToken[token] = Context.ConnectionId;
        Context.Items["token"] = token;
        return "connected";
    }

    public Task OnMessage(string tracingId, string text) => Clients.Caller.SendAsync("message", Frames.Message(text, "Inbound", tracingId));

    public override Task OnDisconnectedAsync(Exception? exception)
    {
        if (Context.Items["token"] is string token) sessions.ByToken.TryRemove(token, out _);
        return base.OnDisconnectedAsync(exception);
    }
}

static class Frames
{
    public static string Message(string? text, string direction, string? tracingId) => JsonSerializer.Serialize(new
    {
        type = "message", @class = "StructuredMessage", code = 200,
        body = new { id = Guid.NewGuid().ToString("N"), type = "Text", text, direction, channel = new { time = DateTime.UtcNow.ToString("O") } },
        tracingId,
    });
}
