using System.Buffers;
using System.Collections.Immutable;
using System.Net;
using System.Net.WebSockets;
using System.Text.Json;
using Parley.Core;
using Parley.Protocol;
using Parley.Server.OAuth;
using Parley.Server.Protocol;

namespace Parley.Server.GuestApi;

/// <summary>
/// The Web Messaging Guest API: <c>GET /v1?deploymentId=…</c> upgraded to a WebSocket (docs/compatibility.md §Guest frames). The receive loop
/// parses one JSON request per text frame and answers in the protocol's own form; it decides nothing itself — every
/// write goes through <see cref="Conversations"/> (decide + commit), so a message racing a termination loses by
/// version, not by luck. A bad frame is answered with an error frame and the socket keeps serving.
/// </summary>
public sealed class GuestSocketEndpoint(
    Conversations conversations,
    IGuestSessionStore sessions,
    IConversationStore store,
    IDirectoryStore directory,
    IAuditLog audit,
    SessionRegistry registry,
    ISessionBackplane backplane,
    GuestRateLimiter rateLimiter,
    NewSessionLimiter newSessions,
    Tokens tokens,
    ParleyOptions options,
    TimeProvider clock,
    StoreOutages outages,
    ILoggerFactory loggers)
{
    readonly ILogger _log = loggers.CreateLogger(ParleyLog.GuestApi);
    readonly ILogger _refusals = loggers.CreateLogger(ParleyLog.Refusals);
    readonly ILogger _terminations = loggers.CreateLogger(ParleyLog.Termination);

    public const string SupportedActions = "configureSession, onMessage, echo, getJwt, closeSession";

    public async Task HandleAsync(HttpContext http)
    {
        if (!http.WebSockets.IsWebSocketRequest)
        {
            // A browser sees a refused upgrade only as a failed WebSocket: a plain GET here tells it why (the guest
            // library asks after a failed connect, docs/messenger.md), from any page, like the other guest REST calls.
            http.Response.Headers.AccessControlAllowOrigin = "*";
            // A same-origin fetch carries no Origin header: the page may name its origin in the query instead. This only
            // explains a refusal; the upgrade itself checks the real header.
            var asked = http.Request.Query["deploymentId"].ToString();
            var from = http.Request.Headers.Origin.ToString() is { Length: > 0 } header ? header : http.Request.Query["origin"].ToString();
            if (asked.Length > 0 && from.Length > 0 && await directory.GetDeploymentAsync(asked, http.RequestAborted) is { } target && !target.AllowsOrigin(from))
            {
                await OriginRefused(from, asked).ExecuteAsync(http);
                return;
            }
            if (registry.Full(options.MaxGuestSockets))
            {
                http.Response.Headers.RetryAfter = "5";
                await Unavailable().ExecuteAsync(http);
                return;
            }
            await ApiError.BadRequest("This is the Web Messaging Guest API: open a WebSocket to /v1?deploymentId={deploymentId}.")
                .ExecuteAsync(http);
            return;
        }
        // Origin is checked before the upgrade (as ASP.NET's AllowedOrigins does): a disallowed page never gets a socket.
        var deploymentId = http.Request.Query["deploymentId"].ToString();
        var origin = http.Request.Headers.Origin.ToString();
        if (deploymentId.Length > 0 && await directory.GetDeploymentAsync(deploymentId, http.RequestAborted) is { } d && !d.AllowsOrigin(origin))
        {
            await RefuseAsync(http, OriginRefused(origin, deploymentId));
            return;
        }

        // Refuse cleanly while there is room to: past the cap, before the upgrade, with a clear 503.
        if (!registry.TryOpen(options.MaxGuestSockets))
        {
            http.Response.Headers.RetryAfter = "5";
            await RefuseAsync(http, Unavailable());
            return;
        }
        try
        {
            var guard = http.Features.Get<FrameSizeGuard>();
            using var socket = await http.WebSockets.AcceptWebSocketAsync();
            // The client address as the transport (or a trusted proxy's forwarded header) gives it: the key of the per-address rate.
            await ServeAsync(socket, deploymentId, origin, http.Connection.RemoteIpAddress, guard, http.RequestAborted);
        }
        finally
        {
            registry.Closed();
        }
    }

    static ApiError OriginRefused(string origin, string deploymentId) => new(403, "origin.not.allowed",
        $"Origin '{ApiError.Clip(origin)}' is not allowed for deployment {ApiError.Clip(deploymentId)}.");

    ApiError Unavailable() => new(503, "service.unavailable", registry.Stopping
        ? "This server is shutting down; connect again (to another node)."
        : $"This server holds its maximum of {options.MaxGuestSockets} guest connections; retry later or connect to another node.");

    /// <summary>
    /// A refusal before the upgrade closes its connection (Connection: close), so a client that keeps refused connections
    /// open holds no descriptor for them; one that does not even read the answer is cut off after a short deadline.
    /// </summary>
    async Task RefuseAsync(HttpContext http, ApiError error)
    {
        http.Response.Headers.Connection = "close";
        await error.ExecuteAsync(http);
        try { await http.Response.CompleteAsync().WaitAsync(options.RefusedConnectionTimeout); }
        catch (TimeoutException) { http.Abort(); }
    }

    /// <summary>
    /// Serves one accepted guest WebSocket until it closes, whichever transport accepted it (Kestrel's HTTP upgrade, or
    /// <see cref="GuestTransport"/> below it). The caller has taken its place (<see cref="SessionRegistry.TryOpen"/>).
    /// </summary>
    internal async Task ServeAsync(WebSocket socket, string deploymentId, string origin, IPAddress? remoteAddress, FrameSizeGuard? guard,
        CancellationToken ct)
    {
        var openedAt = System.Diagnostics.Stopwatch.GetTimestamp();
        var lost = false;
        var connection = new GuestConnection(socket, options.MaxQueuedFrames, options.GuestSendTimeout);
        registry.Track(connection);
        var state = new SocketState(connection, deploymentId.Length > 0 ? deploymentId : null, origin, remoteAddress);
        if (guard is not null) guard.Oversized = () => CloseTooBig(connection);
        // A socket that never configures a session holds a descriptor and a place for nothing: it gets a deadline,
        // whose timer is let go as soon as a session is configured.
        connection.SetConfigureDeadline(clock.CreateTimer(_ => CloseUnconfigured(connection), null, options.ConfigureSessionTimeout,
            Timeout.InfiniteTimeSpan));
        try
        {
            // The receive loop, here rather than in a method of its own: one suspended frame per idle socket, not two.
            while (socket.State == WebSocketState.Open && !state.Connection.IsClosing)
            {
                // Wait with a zero-byte read: an idle guest holds no receive buffer.
                // No token on the idle wait: a registration per idle socket for nothing, as a lost connection ends the read anyway.
                var first = await socket.ReceiveAsync(Memory<byte>.Empty, CancellationToken.None);
                if (first.MessageType == WebSocketMessageType.Close)
                {
                    state.Connection.Close(WebSocketCloseStatus.NormalClosure, "bye");
                    return;
                }
                await state.Connection.WaitForRoomAsync();
                var message = new PooledMessage();
                try
                {
                    var (tooBig, type) = await ReadMessageAsync(socket, first, message, ct);
                    if (type == WebSocketMessageType.Close) { state.Connection.Close(WebSocketCloseStatus.NormalClosure, "bye"); return; }
                    if (tooBig)
                    {
                        CloseTooBig(state.Connection);
                        return;
                    }
                    if (type == WebSocketMessageType.Binary)
                        Reply(state, Wire.ErrorFrame(400, "Request failed. Binary frames are not supported; send JSON text frames."));
                    else
                        await DispatchAsync(state, message.Buffer.AsMemory(0, message.Count), ct);
                }
                finally
                {
                    message.Return();
                }
            }
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or IOException)
        {
            // the guest went away; the conversation lives on (web messaging is persistent, docs/compatibility.md §Guest session lifecycle)
            lost = true;
        }
        finally
        {
            var binding = connection.Binding;
            if (_log.IsEnabled(LogLevel.Information))
                _log.GuestSocketClosed(binding?.SessionId ?? "-", binding?.DeploymentId ?? ParleyLog.Clip(state.UrlDeploymentId ?? "-", 100),
                    connection.CloseReason is null or "bye" ? (lost ? "connection lost" : "closed by the guest") : connection.CloseReason,
                    (long)System.Diagnostics.Stopwatch.GetElapsedTime(openedAt).TotalMilliseconds);
            if (binding is { } b) registry.Detach(b.SessionId, connection);
            registry.Untrack(connection);
            connection.Close(WebSocketCloseStatus.NormalClosure, "bye");
            await connection.DrainedAsync();
        }
    }

    sealed record SocketState(GuestConnection Connection, string? UrlDeploymentId, string Origin, IPAddress? RemoteAddress)
    {
        /// <summary>When the bound session expires (unix seconds) as this socket last knew it; activity elsewhere may have moved it later.</summary>
        public long SessionExpiresAt;
    }

    void CloseUnconfigured(GuestConnection connection)
    {
        if (connection.WasConfigured) return;
        var seconds = (int)options.ConfigureSessionTimeout.TotalSeconds;
        connection.Deliver(Wire.ErrorFrame(408, $"Request timed out: no configureSession within {seconds} seconds of connecting."));
        connection.Close(WebSocketCloseStatus.PolicyViolation, $"configureSession not received within {seconds} s");
    }

    /// <summary>An oversized message: the protocol's 4011, then close 1009; the rest of the message is never read.</summary>
    void CloseTooBig(GuestConnection connection)
    {
        connection.Deliver(Wire.ErrorFrame(4011, $"Message too long: a frame may carry at most {options.MaxFrameBytes} bytes."));
        connection.Close(WebSocketCloseStatus.MessageTooBig, $"message larger than {options.MaxFrameBytes} bytes");
    }

    /// <summary>One message's bytes in a pooled buffer; whoever grows it swaps the buffer here first, so it is returned once.</summary>
    sealed class PooledMessage
    {
        public byte[] Buffer = ArrayPool<byte>.Shared.Rent(4096);
        public int Count;

        public void Grow(int size)
        {
            var bigger = ArrayPool<byte>.Shared.Rent(size);
            Buffer.AsSpan(0, Count).CopyTo(bigger);
            var old = Buffer;
            Buffer = bigger;
            ArrayPool<byte>.Shared.Return(old);
        }

        public void Return()
        {
            ArrayPool<byte>.Shared.Return(Buffer);
            Buffer = [];
        }
    }

    /// <summary>Reads one message up to MaxFrameBytes; a larger one is not read further (TooBig).</summary>
    async Task<(bool TooBig, WebSocketMessageType Type)> ReadMessageAsync(WebSocket socket, ValueWebSocketReceiveResult first,
        PooledMessage message, CancellationToken ct)
    {
        var result = first;
        while (!result.EndOfMessage)
        {
            if (message.Count == message.Buffer.Length)
            {
                // Normally FrameSizeGuard has refused it at its header already; this holds without it.
                if (message.Buffer.Length >= options.MaxFrameBytes) return (true, first.MessageType);
                message.Grow(Math.Min(message.Buffer.Length * 2, options.MaxFrameBytes));
            }
            result = await socket.ReceiveAsync(message.Buffer.AsMemory(message.Count), ct);
            if (result.MessageType == WebSocketMessageType.Close) return (false, result.MessageType);
            message.Count += result.Count;
        }
        return (false, first.MessageType);
    }

    static void Reply(SocketState state, byte[] frame) => state.Connection.Deliver(frame);

    /// <summary>
    /// A 403 or 409 answered in the protocol's error frame, logged as a refusal (event 4004) and counted in
    /// <c>parley.refusals</c> under <paramref name="code"/>, a fixed label (never an id or the frame's text).
    /// </summary>
    void Refuse(SocketState state, string action, int status, string code, string reason, string? tracingId)
    {
        ParleyTelemetry.Refused(status, code);
        var binding = state.Connection.Binding;
        _refusals.GuestRefused(action, status, ParleyLog.Clip(reason), binding?.SessionId ?? "-", binding?.DeploymentId ?? ParleyLog.Clip(state.UrlDeploymentId ?? "-", 100));
        Reply(state, Wire.ErrorFrame(status, reason, tracingId));
    }

    async Task DispatchAsync(SocketState state, ReadOnlyMemory<byte> json, CancellationToken ct)
    {
        GuestRequest? request;
        try
        {
            request = JsonSerializer.Deserialize(json.Span, ParleyJson.Wire.GuestRequest);
        }
        catch (JsonException e)
        {
            // A field of the wrong type (a numeric token, say) fails the whole request; its tracingId is still echoed.
            Reply(state, Wire.ErrorFrame(400, $"Request failed. Malformed JSON: {Bounded(e.Message)}", TracingIdOf(json.Span)));
            return;
        }
        if (request is null)
        {
            Reply(state, Wire.ErrorFrame(400, "Request failed. A request is a JSON object with an 'action'."));
            return;
        }
        var t = request.TracingId;
        try
        {
            await DispatchActionAsync(state, request, ct);
        }
        catch (Exception e) when (StoreOutages.Find(e) is { } unavailable)
        {
            // The store cannot be reached: nothing was stored, echoed or fanned out. The client SDK reads a 5xx code as a
            // server error (ServerResponseError); the socket stays open and the same request may be sent again.
            outages.Failed($"guest {request.Action}", unavailable);
            ParleyTelemetry.Refused(503, "service.unavailable");
            Reply(state, Wire.ErrorFrame(503, StoreUnavailableText, t));
        }
        catch (Exception e) when (e is not (OperationCanceledException or WebSocketException or IOException))
        {
            // An unexpected failure ends this request, never the socket: the protocol's 5000 answer (docs/compatibility.md §Guest errors).
            _log.GuestRequestFailed(e, ParleyLog.Clip(request.Action, 40));
            Reply(state, Wire.ErrorFrame(5000, "Request failed.", t));
        }
    }

    public const string StoreUnavailableText =
        "Service temporarily unavailable: the server cannot reach its store, and the request was not acknowledged. " +
        "Send it again shortly (if the store was lost mid-write it may have been kept: the history shows it).";

    /// <summary>The request's tracingId when the frame is JSON with a string tracingId of sane length, whatever else is wrong with it.</summary>
    static string? TracingIdOf(ReadOnlySpan<byte> json)
    {
        try
        {
            var reader = new Utf8JsonReader(json);
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject) return null;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                var isTracingId = reader.ValueTextEquals("tracingId"u8);
                if (!reader.Read()) return null;
                if (isTracingId)
                    return reader.TokenType == JsonTokenType.String && reader.GetString() is { Length: > 0 and <= MaxEchoedTracingId } t ? t : null;
                reader.Skip();
            }
        }
        catch (JsonException) { }
        catch (InvalidOperationException) { }
        return null;
    }

    /// <summary>Longest tracingId echoed from a frame that did not parse (a valid frame's is echoed as sent, within the frame cap).</summary>
    const int MaxEchoedTracingId = 256;

    /// <summary>A parser message can quote the input (a property path); never echo more than a line of it.</summary>
    static string Bounded(string text) => text.Length <= 300 ? text : text[..300] + "…";

    async Task DispatchActionAsync(SocketState state, GuestRequest request, CancellationToken ct)
    {
        var t = request.TracingId;
        switch (request.Action)
        {
            case "configureSession": await ConfigureAsync(state, request, ct); break;
            case "onMessage": await OnMessageAsync(state, request, ct); break;
            case "echo": Echo(state, request); break;
            case "getJwt": await GetJwtAsync(state, request, ct); break;
            case "closeSession": await CloseSessionAsync(state, request, ct); break;
            case null or "":
                Reply(state, Wire.ErrorFrame(4020, $"Missing parameter 'action'. Supported actions: {SupportedActions}.", t)); break;
            case "configureAuthenticatedSession" or "onAttachment" or "getAttachment" or "deleteAttachment" or "getConfiguration":
                Reply(state, Wire.ErrorFrame(4000, $"Feature unavailable: '{request.Action}' is not supported by this server. Supported actions: {SupportedActions}.", t));
                break;
            default:
                Reply(state, Wire.ErrorFrame(400, $"Request failed. Unknown action '{request.Action}'. Supported actions: {SupportedActions}.", t));
                break;
        }
    }

    async Task ConfigureAsync(SocketState state, GuestRequest r, CancellationToken ct)
    {
        var t = r.TracingId;
        if (string.IsNullOrEmpty(r.Token)) { Reply(state, Wire.ErrorFrame(4020, "Missing parameter 'token'.", t)); return; }
        if (r.Token.Length > 2048) { Reply(state, Wire.ErrorFrame(400, "Request failed. The token may be at most 2048 characters.", t)); return; }
        var deploymentId = r.DeploymentId ?? state.UrlDeploymentId;
        if (string.IsNullOrEmpty(deploymentId)) { Reply(state, Wire.ErrorFrame(4020, "Missing parameter 'deploymentId'.", t)); return; }
        if (state.UrlDeploymentId is { } urlId && urlId != deploymentId)
        {
            Refuse(state, "configureSession", 403, "guest.deployment.mismatch", $"Deployment {ApiError.Clip(deploymentId)} does not match the deploymentId {urlId} this socket was opened for.", t);
            return;
        }
        var deployment = await directory.GetDeploymentAsync(deploymentId, ct);
        if (deployment is null)
        {
            Refuse(state, "configureSession", 403, "guest.deployment.not.found", $"Deployment {ApiError.Clip(deploymentId)} not found. Check that your deploymentId, feature toggles, and configuration are correct.", t);
            return;
        }
        if (!deployment.AllowsOrigin(state.Origin))
        {
            Refuse(state, "configureSession", 403, "origin.not.allowed", $"Origin '{ApiError.Clip(state.Origin)}' is not allowed for deployment {deploymentId}.", t);
            return;
        }

        var hash = Tokens.HashGuestToken(deploymentId, r.Token);
        var session = await sessions.FindByTokenHashAsync(hash, ct);
        var isNew = session is null;
        if (isNew && !newSessions.TryTake(state.RemoteAddress, deploymentId, out var retryAfter, out var refusedBy))
        {
            var from = refusedBy == NewSessionLimiter.ByAddress ? "from this address" : "for this deployment";
            _refusals.GuestRateLimited($"too many new sessions {from}", retryAfter, "-");
            ParleyTelemetry.Refused(429, refusedBy == NewSessionLimiter.ByAddress ? "guest.new.sessions.address" : "guest.new.sessions.deployment");
            Reply(state, Wire.Frame("response", "TooManyRequestsErrorMessage", 429,
                new TooManyRequestsBody(retryAfter, 4029, $"Too many new sessions {from}; retry in {retryAfter} seconds"),
                ParleyJson.Wire.TooManyRequestsBody, t));
            return;
        }
        // journeyContext.customer (docs/compatibility.md §Guest actions) names the guest for the business: kept, so a bot can find the session by it.
        var (customerId, customerIdType) = JourneyCustomer(r.JourneyContext);
        session ??= await sessions.CreateAsync(new GuestSession(Conversations.NewId(), hash, deploymentId, null, clock.GetUtcNow(),
            Address: customerId, AddressType: customerIdType), ct);
        var conversation = session.ConversationId is { } cid ? await store.LoadAsync(cid, ct) : null;
        var expiresAt = isNew ? clock.GetUtcNow().ToUnixTimeSeconds() + options.SessionDurationSeconds : await ExpiresAtAsync(session, ct);
        if (expiresAt <= clock.GetUtcNow().ToUnixTimeSeconds())
        {
            // durationSeconds without a message: the session is over for good (docs/compatibility.md §Guest errors, 4006); the guest starts
            // a new one with a new token, as the official Messenger does when its session expires.
            Reply(state, Wire.ErrorFrame(4006,
                $"Session has expired: no message for {options.SessionDurationSeconds} seconds. Start a new session with a new token.", t));
            return;
        }
        if (r.StartNew == true && conversation is { IsEnded: true })
        {
            // Start a new chat after a read-only end (docs/compatibility.md §Guest session lifecycle): the next message opens a new conversation.
            await conversations.DetachAsync(session.Id, conversation.Id, ct);
            conversation = null;
            isNew = true;
        }

        Bind(state.Connection, new GuestBinding(session.Id, deploymentId, hash));
        if (isNew) _log.GuestSessionStarted(session.Id, deploymentId);
        else _log.GuestSessionResumed(session.Id, deploymentId);
        state.SessionExpiresAt = expiresAt;
        Reply(state, GuestFrames.Session(new SessionResponse
        {
            Connected = true,
            NewSession = isNew,
            ReadOnly = conversation?.IsReadOnlyForGuest ?? false,
            MaxCustomDataBytes = options.MaxCustomDataBytes,
            AllowedMedia = new AllowedMedia(new InboundMedia([], 0)),
            BlockedExtensions = [.. GuestFrames.BlockedExtensions],
            ClearedExistingSession = false,
            DurationSeconds = options.SessionDurationSeconds,
            ExpirationDate = expiresAt,
        }, t));
    }

    /// <summary>
    /// When a session expires (unix seconds): durationSeconds after its last activity, the later of its creation and
    /// its current conversation's last message (either side's: a conversation that is talking keeps its session alive).
    /// </summary>
    async Task<long> ExpiresAtAsync(GuestSession session, CancellationToken ct)
    {
        var last = session.CreatedAt;
        if (session.ConversationId is { } cid && await store.LastActivityAsync(cid, ct) is { } activity && activity > last) last = activity;
        return last.ToUnixTimeSeconds() + options.SessionDurationSeconds;
    }

    /// <summary>
    /// False (after a 4006 answer and SessionExpiredEvent, and the socket is closing) when the bound session has expired since this socket
    /// configured it. The socket's own knowledge is checked first; only past it is the store asked, since activity on
    /// another socket or from the bot may have kept the session alive.
    /// </summary>
    async Task<bool> StillAliveAsync(SocketState state, GuestBinding binding, string? tracingId, CancellationToken ct)
    {
        var now = clock.GetUtcNow().ToUnixTimeSeconds();
        if (now < Volatile.Read(ref state.SessionExpiresAt)) return true;
        if (await sessions.GetAsync(binding.SessionId, ct) is { } session)
        {
            var expiresAt = await ExpiresAtAsync(session, ct);
            Volatile.Write(ref state.SessionExpiresAt, expiresAt);
            if (now < expiresAt) return true;
        }
        // The request is answered (4006, with its tracingId), then the session's end is announced and the socket closed.
        state.Connection.Deliver(Wire.ErrorFrame(4006, "Session has expired: start a new session with a new token.", tracingId));
        state.Connection.Deliver(GuestFrames.SessionExpired);
        state.Connection.Close(WebSocketCloseStatus.NormalClosure, "session expired");
        return false;
    }

    static (string? Id, string? IdType) JourneyCustomer(JsonElement? journeyContext)
    {
        try
        {
            if (journeyContext is not { ValueKind: JsonValueKind.Object } j
                || !j.TryGetProperty("customer", out var customer) || customer.ValueKind != JsonValueKind.Object
                || !customer.TryGetProperty("id", out var id) || id.ValueKind != JsonValueKind.String || id.GetString() is not { Length: > 0 and <= 256 } value)
                return (null, null);
            var type = customer.TryGetProperty("idType", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null;
            return (value, type);
        }
        catch (InvalidOperationException)
        {
            // An escaped lone surrogate ("\udc00") in a name or a value is valid JSON but no valid text; reading it throws.
            // The journey customer is only a hint, and an unreadable one is no hint.
            return (null, null);
        }
    }

    void Bind(GuestConnection connection, GuestBinding? binding)
    {
        if (connection.Binding is { } old) registry.Detach(old.SessionId, connection);
        connection.Binding = binding;
        if (binding is not null) registry.Attach(binding.SessionId, connection);
    }

    /// <summary>The socket's session, when the request's token is the one that configured it; otherwise an error frame.</summary>
    GuestBinding? Authorize(SocketState state, GuestRequest r)
    {
        var t = r.TracingId;
        if (state.Connection.Binding is not { } binding)
        {
            Reply(state, Wire.ErrorFrame(4007, "Session not found: send configureSession first.", t));
            return null;
        }
        if (string.IsNullOrEmpty(r.Token)) { Reply(state, Wire.ErrorFrame(4020, "Missing parameter 'token'.", t)); return null; }
        if (!Tokens.GuestTokenMatches(binding.DeploymentId, r.Token, binding.TokenHash))
        {
            Refuse(state, r.Action ?? "-", 403, "guest.token.mismatch", "The token does not match the session this socket was configured for.", t);
            return null;
        }
        return binding;
    }

    async Task OnMessageAsync(SocketState state, GuestRequest r, CancellationToken ct)
    {
        var t = r.TracingId;
        if (Authorize(state, r) is not { } binding) return;
        if (r.Message is not { } m) { Reply(state, Wire.ErrorFrame(4020, "Missing parameter 'message'.", t)); return; }

        ImmutableDictionary<string, string>? attributes = null;
        if (m.Channel?.Metadata?.CustomAttributes is { Count: > 0 } custom)
        {
            if (JsonSerializer.SerializeToUtf8Bytes(custom).Length > options.MaxCustomDataBytes)
            {
                Reply(state, Wire.ErrorFrame(4013, $"Custom Attributes in channel metadata is larger than {options.MaxCustomDataBytes} bytes", t));
                return;
            }
            attributes = custom.ToImmutableDictionary();
        }

        MessageKind kind;
        ImmutableArray<MessageEvent> events = [];
        switch (m.Type)
        {
            case "Text":
                if (string.IsNullOrEmpty(m.Text)) { Reply(state, Wire.ErrorFrame(4020, "Missing parameter 'message.text'.", t)); return; }
                if (m.Text.Length > options.MaxGuestTextLength)
                {
                    Reply(state, Wire.ErrorFrame(4011, $"Message too long: text may be at most {options.MaxGuestTextLength} characters.", t));
                    return;
                }
                kind = MessageKind.Text;
                break;
            case "Event":
                if (ParseEvents(m.Events, out var parsed) is { } problem) { Reply(state, Wire.ErrorFrame(400, problem, t)); return; }
                if (parsed.Any(e => e is { EventType: "Presence", Type: "Clear" }))
                {
                    await ClearAsync(state, binding, t, ct);
                    return;
                }
                kind = MessageKind.Event;
                events = parsed;
                break;
            case "Structured":
                Reply(state, Wire.ErrorFrame(4000, "Feature unavailable: Structured messages (button responses) are not supported by this server yet; send Text.", t));
                return;
            default:
                Reply(state, Wire.ErrorFrame(400, $"Request failed. Unsupported message type '{m.Type}': send Text or Event.", t));
                return;
        }

        var deployment = await directory.GetDeploymentAsync(binding.DeploymentId, ct);
        if (deployment is null) { Refuse(state, "onMessage", 403, "guest.deployment.not.found", $"Deployment {binding.DeploymentId} no longer exists.", t); return; }
        if (!await StillAliveAsync(state, binding, t, ct)) return;
        // The platform's per-session rate (docs/compatibility.md §Guest limits), then this address's across all its sessions: a refused
        // request stores nothing and is answered with the platform's own 429 frame.
        if (!rateLimiter.TryTakeForSession(binding.SessionId, deployment.GuestMessagesPerSecond, out var retryAfter))
        {
            _refusals.GuestRateLimited("message rate too high for this session", retryAfter, binding.SessionId);
            ParleyTelemetry.Refused(429, "guest.message.rate.session");
            Reply(state, TooManyRequests(retryAfter, "Message rate too high for this session", t));
            return;
        }
        if (!rateLimiter.TryTakeForAddress(state.RemoteAddress, options.GuestMessagesPerAddressPerSecond, out retryAfter))
        {
            _refusals.GuestRateLimited("message rate too high for this client address", retryAfter, binding.SessionId);
            ParleyTelemetry.Refused(429, "guest.message.rate.address");
            Reply(state, TooManyRequests(retryAfter, "Message rate too high for this client address", t));
            return;
        }
        var messageId = Conversations.NewMessageId();
        Outcome outcome;
        try
        {
            outcome = await conversations.SendToSessionAsync(binding.SessionId, deployment.Settings, MessageDirection.Inbound,
                c => new AddMessage(messageId, c.Customer.Id, kind, kind == MessageKind.Text ? m.Text : null, events, null, attributes, t), ct);
        }
        catch (StoreUnavailableException)
        {
            // Not stored, so not counted against the guest's rate: the retry it is asked for must not be refused for it.
            rateLimiter.Refund(binding.SessionId, state.RemoteAddress, options.GuestMessagesPerAddressPerSecond);
            throw;
        }
        // Success is the echo of the stored message, pushed by the fan-out to every socket of the session (with tracingId).
        if (outcome.Status == OutcomeStatus.Done)
            Volatile.Write(ref state.SessionExpiresAt, clock.GetUtcNow().ToUnixTimeSeconds() + options.SessionDurationSeconds);
        switch (outcome.Status)
        {
            case OutcomeStatus.Rejected when outcome.Rejected!.Code == RejectionCode.ConversationEnded:
                Refuse(state, "onMessage", 409, "guest.conversation.ended", Conversations.ReadOnlyMessage, t);
                break;
            case OutcomeStatus.Rejected:
                Reply(state, Wire.ErrorFrame(400, $"Request failed. {outcome.Rejected!.Message}", t));
                break;
            case OutcomeStatus.NotFound:
                Reply(state, Wire.ErrorFrame(4007, "Session not found: it was cleared; send configureSession again.", t));
                break;
        }
    }

    static byte[] TooManyRequests(int retryAfter, string message, string? t) =>
        Wire.Frame("response", "TooManyRequestsErrorMessage", 429, new TooManyRequestsBody(retryAfter, 4029, message),
            ParleyJson.Wire.TooManyRequestsBody, t);

    /// <summary>Guest events (docs/compatibility.md §Guest events): Typing On; Presence Join, Clear, SignIn. Anything else is named and refused.</summary>
    static string? ParseEvents(List<WireEvent>? wire, out ImmutableArray<MessageEvent> events)
    {
        events = [];
        if (wire is not { Count: > 0 }) return "Request failed. An Event message needs a non-empty 'events' list.";
        var list = ImmutableArray.CreateBuilder<MessageEvent>(wire.Count);
        foreach (var e in wire)
        {
            if (e is null) return "Request failed. An entry of 'events' is null.";
            switch (e.EventType)
            {
                case "Typing" when e.Typing?.Type == "On":
                    list.Add(new MessageEvent("Typing", "On"));
                    break;
                case "Typing":
                    return "Request failed. A guest Typing event has typing.type 'On'.";
                case "Presence" when e.Presence?.Type is "Join" or "Clear" or "SignIn":
                    list.Add(new MessageEvent("Presence", e.Presence.Type));
                    break;
                case "Presence":
                    return $"Request failed. Unsupported Presence type '{e.Presence?.Type}': a guest sends Join, Clear or SignIn. " +
                           "The Disconnect presence comes from the platform (PATCH the participant to 'disconnected').";
                default:
                    return $"Request failed. Unsupported eventType '{e.EventType}': supported are Typing and Presence.";
            }
        }
        events = list.MoveToImmutable();
        return null;
    }

    /// <summary>Presence Clear: the guest ends its conversation and forgets the session (docs/compatibility.md §Guest session lifecycle).</summary>
    async Task ClearAsync(SocketState state, GuestBinding binding, string? t, CancellationToken ct)
    {
        var deployment = await directory.GetDeploymentAsync(binding.DeploymentId, ct);
        if (deployment is not { ClearEnabled: true })
        {
            Refuse(state, "onMessage", 403, "guest.clear.not.enabled", "Presence events Conversation Clear are not supported", t);
            return;
        }
        using var trace = ParleyTelemetry.StartTermination(EndLever.GuestClear, conversationId: null);
        var outcome = await conversations.ClearSessionAsync(binding.SessionId, ct);
        // The elapsed time stops when the sockets were told, before the audit row's count is written.
        var elapsed = outcome is { Status: OutcomeStatus.Done } ? trace.Told(outcome, await outcome.Delivered) : TimeSpan.Zero;
        var told = outcome is null ? 0 : await Conversations.AwaitDeliveryAsync(outcome, audit, CancellationToken.None);
        if (outcome is { Status: OutcomeStatus.Done }) _terminations.Terminated(outcome, told, elapsed);
        // The session is deleted now: every socket of it, on any node, is closed (those not told through a conversation
        // end, when there was no live one, are told first).
        await backplane.DeliverAsync(binding.SessionId, new SessionDelivery.ConnectionsClosed(SessionCleared: true, "conversation cleared"),
            options.NotifyTimeout, CancellationToken.None);
        _log.GuestSessionCleared(binding.SessionId, told);
    }

    void Echo(SocketState state, GuestRequest r)
    {
        var body = new StructuredMessage
        {
            Id = Conversations.NewMessageId(), Type = "Text", Text = r.Message?.Text ?? "ping", Direction = "Inbound",
        };
        Reply(state, Wire.Frame("response", "StructuredMessage", 200, body, ParleyJson.Wire.StructuredMessage, r.TracingId));
    }

    async Task GetJwtAsync(SocketState state, GuestRequest r, CancellationToken ct)
    {
        if (Authorize(state, r) is not { } binding) return;
        if (!await StillAliveAsync(state, binding, r.TracingId, ct)) return;
        // The JWT opens the session's history: it never outlives the session (as last known; activity only extends it).
        var (jwt, exp) = tokens.IssueGuestJwt(binding.SessionId, binding.DeploymentId, notAfter: Volatile.Read(ref state.SessionExpiresAt));
        Reply(state, Wire.Frame("response", "JwtResponse", 200, new JwtResponse(jwt, exp), ParleyJson.Wire.JwtResponse, r.TracingId));
    }

    /// <summary>
    /// closeSession (docs/compatibility.md §Guest actions): answers connected:false; with closeAllConnections the session's other sockets get
    /// ConnectionClosedEvent and are closed. This socket stays open, unbound, ready for configureSession{startNew}.
    /// The conversation is not ended by this.
    /// </summary>
    async Task CloseSessionAsync(SocketState state, GuestRequest r, CancellationToken ct)
    {
        if (Authorize(state, r) is not { } binding) return;
        var readOnly = false;
        var session = await sessions.GetAsync(binding.SessionId, ct);
        if (session?.ConversationId is { } cid)
            readOnly = (await store.LoadAsync(cid, ct))?.IsReadOnlyForGuest ?? false;
        Bind(state.Connection, null);
        // This socket is unbound already: the session's other sockets, on every node, are closed.
        if (r.CloseAllConnections == true)
            await backplane.DeliverAsync(binding.SessionId, new SessionDelivery.ConnectionsClosed(SessionCleared: false, "session closed by another connection"),
                options.NotifyTimeout, CancellationToken.None);
        Reply(state, GuestFrames.Session(new SessionResponse { Connected = false, ReadOnly = readOnly }, r.TracingId));
    }
}
