using System.Collections.Concurrent;
using System.Collections.Immutable;

namespace Parley.Server.GuestApi;

/// <summary>The guest sockets connected to this node, by guest session. A session may have several (tabs, devices).</summary>
public sealed class SessionRegistry
{
    readonly ConcurrentDictionary<string, ImmutableArray<GuestConnection>> _sessions = new();
    int _open;

    /// <summary>Takes a place for one more guest socket; false when <paramref name="max"/> are open.</summary>
    public bool TryOpen(int max)
    {
        if (Volatile.Read(ref _stopping)) return false;
        while (true)
        {
            var open = Volatile.Read(ref _open);
            if (open >= max) return false;
            if (Interlocked.CompareExchange(ref _open, open + 1, open) == open) return true;
        }
    }

    public void Closed() => Interlocked.Decrement(ref _open);

    /// <summary>No place for another guest socket: <paramref name="max"/> are open, or shutdown has begun.</summary>
    public bool Full(int max) => Volatile.Read(ref _stopping) || Volatile.Read(ref _open) >= max;

    readonly ConcurrentDictionary<GuestConnection, byte> _all = new();

    public void Track(GuestConnection connection) => _all.TryAdd(connection, 0);
    public void Untrack(GuestConnection connection) => _all.TryRemove(connection, out _);

    /// <summary>Every guest socket open on this node (diagnostics and tests).</summary>
    public IEnumerable<GuestConnection> Tracked => _all.Keys;

    /// <summary>
    /// Server shutdown: every guest socket is sent a close with 1001 (going away), so clients reconnect elsewhere or
    /// later; completes when the frames are written, before the server stops its transport.
    /// </summary>
    public Task CloseAllAsync()
    {
        Volatile.Write(ref _stopping, true);   // no new guest after this: it would never hear the close
        return Task.WhenAll(_all.Keys.Select(c => c.CloseAndConfirmAsync(System.Net.WebSockets.WebSocketCloseStatus.EndpointUnavailable, "server shutting down")));
    }

    bool _stopping;

    /// <summary>Shutdown has begun: no new guest socket is taken.</summary>
    public bool Stopping => Volatile.Read(ref _stopping);

    public void Attach(string sessionId, GuestConnection connection)
    {
        _sessions.AddOrUpdate(sessionId, [connection], (_, list) => list.Add(connection));
        ParleyTelemetry.GuestSessionsConnected.Add(1);
    }

    public void Detach(string sessionId, GuestConnection connection)
    {
        while (_sessions.TryGetValue(sessionId, out var list))
        {
            if (!list.Contains(connection)) return;
            var next = list.Remove(connection);
            var done = next.IsEmpty
                ? _sessions.TryRemove(new KeyValuePair<string, ImmutableArray<GuestConnection>>(sessionId, list))
                : _sessions.TryUpdate(sessionId, next, list);
            if (done)
            {
                ParleyTelemetry.GuestSessionsConnected.Add(-1);
                return;
            }
        }
    }

    public ImmutableArray<GuestConnection> Of(string sessionId) =>
        _sessions.TryGetValue(sessionId, out var list) ? list : [];
}
