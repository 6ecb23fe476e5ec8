using System.Collections.Concurrent;
using System.Data.Common;
using System.Text.Json;
using Microsoft.AspNetCore.SignalR;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;

// Baseline (d) for bench/: the SignalR hub of baseline (b), same frames and the same POST /send/{token}, that stores each
// message with EF Core on SQLite before relaying it, the way EF Core's documentation shows: a DbContext registered with
// AddDbContext (scoped: one per hub invocation, one per HTTP request), Add + SaveChangesAsync per message. The database
// is in WAL mode (EF Core creates SQLite databases so) with synchronous=FULL set on every connection it opens, by a
// connection interceptor. Defaults otherwise, as a team would ship it.
var builder = WebApplication.CreateSlimBuilder(args);
builder.Logging.ClearProviders();
var connectionString = builder.Configuration.GetConnectionString("Messages") ?? "Data Source=messages.db";
builder.Services.AddSignalR();
builder.Services.AddSingleton<Sessions>();
builder.Services.AddDbContext<RelayDb>(options => options.UseSqlite(connectionString).AddInterceptors(new DurableSqlite()));
var app = builder.Build();
using (var scope = app.Services.CreateScope())
{
    var db = scope.ServiceProvider.GetRequiredService<RelayDb>();
    db.Database.EnsureCreated();
    db.Database.ExecuteSqlRaw("PRAGMA journal_mode=WAL");
}
app.MapHub<RelayHub>("/hub");
app.MapPost("/send/{token}", async (string token, HttpContext http, Sessions sessions, RelayDb db, IHubContext<RelayHub> hub) =>
{
    using var doc = await JsonDocument.ParseAsync(http.Request.Body);
    if (!sessions.ByToken.TryGetValue(token, out var connectionId)) return Results.NotFound();
    var message = Message.Of(token, "Outbound", doc.RootElement.GetProperty("textBody").GetString());
    db.Messages.Add(message);
    await db.SaveChangesAsync();
    await hub.Clients.Client(connectionId).SendAsync("message", Frames.Message(message, null));
    return Results.Ok();
});
app.Run();

sealed class Sessions
{
    public readonly ConcurrentDictionary<string, string> ByToken = new();
}

sealed class RelayHub(Sessions sessions, RelayDb db) : Hub
{
    // The session is its token: the stored messages carry it, so a reconnecting guest's history is a query away.
    public string ConfigureSession(string token)
    {
        sessions.ByToken[token] = Context.ConnectionId;
        Context.Items["token"] = token;
        return "connected";
    }

    public async Task OnMessage(string tracingId, string text)
    {
        var message = Message.Of((string)Context.Items["token"]!, "Inbound", text);
        db.Messages.Add(message);
        await db.SaveChangesAsync();
        await Clients.Caller.SendAsync("message", Frames.Message(message, tracingId));
    }

    public override Task OnDisconnectedAsync(Exception? exception)
    {
        if (Context.Items["token"] is string token) sessions.ByToken.TryRemove(token, out _);
        return base.OnDisconnectedAsync(exception);
    }
}

sealed class RelayDb(DbContextOptions<RelayDb> options) : DbContext(options)
{
    public DbSet<Message> Messages => Set<Message>();

    protected override void OnModelCreating(ModelBuilder model) =>
        model.Entity<Message>().HasIndex(m => new { m.SessionToken, m.Timestamp });   // a session's history, in order
}

sealed class Message
{
    public Guid Id { get; set; }
    public required string SessionToken { get; set; }
    public required string Direction { get; set; }
    public string? Text { get; set; }
    public DateTime Timestamp { get; set; }

    public static Message Of(string token, string direction, string? text) =>
        new() { Id = Guid.NewGuid(), SessionToken = token, Direction = direction, Text = text, Timestamp = DateTime.UtcNow };
}

/// <summary>synchronous=FULL on every connection EF Core opens: a commit returns after the WAL is fsynced.</summary>
sealed class DurableSqlite : DbConnectionInterceptor
{
    public override void ConnectionOpened(DbConnection connection, ConnectionEndEventData eventData) => Apply(connection);

    public override Task ConnectionOpenedAsync(DbConnection connection, ConnectionEndEventData eventData, CancellationToken cancellationToken = default)
    {
        Apply(connection);
        return Task.CompletedTask;
    }

    static void Apply(DbConnection connection)
    {
        using var command = connection.CreateCommand();
        command.CommandText = "PRAGMA synchronous=FULL";
        command.ExecuteNonQuery();
    }
}

static class Frames
{
    public static string Message(Message m, string? tracingId) => JsonSerializer.Serialize(new
    {
        type = "message", @class = "StructuredMessage", code = 200,
        body = new { id = m.Id.ToString("N"), type = "Text", text = m.Text, direction = m.Direction, channel = new { time = m.Timestamp.ToString("O") } },
        tracingId,
    });
}
