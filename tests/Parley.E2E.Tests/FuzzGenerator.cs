using System.Text;

namespace Parley.E2E.Tests;

/// <summary>What the Platform API fuzzer aims at: real ids made at setup, so bodies reach the handlers behind the routes.</summary>
public sealed record FuzzTargets(
    string ConversationId, string BotCommunicationId, string CustomerParticipantId, string GuestSessionId,
    string DeploymentId, string IntegrationId, string ChannelId, string GoodToken, string GuestJwt);

/// <summary>A generated Platform API request.</summary>
public sealed record FuzzRequest(string Method, string Path, string? ContentType, byte[]? Body, string? Authorization)
{
    public override string ToString() =>
        $"{Method} {Path} ({ContentType ?? "no content type"}, auth {Authorization?[..Math.Min(20, Authorization.Length)] ?? "none"}): " +
        (Body is null ? "no body" : Encoding.UTF8.GetString(Body, 0, Math.Min(Body.Length, 300)));
}

/// <summary>
/// Structure-aware generator of Guest API frames and Platform API bodies: mostly JSON of the right outline with fields
/// missing, of the wrong type, extra, duplicated, or carrying edge values (huge numbers, deep nesting, lone surrogates,
/// control characters, long strings, unknown enum values, wrong tokens); some malformed JSON and raw bytes besides.
/// Deterministic for a seed: the same seed gives the same sequence.
/// </summary>
public sealed class FuzzGenerator(int seed)
{
    readonly Random _r = new(seed);
    /// <summary>How often a field is missing, mistyped or duplicated; per request, so that some go deep into the handlers.</summary>
    double _mutation = 0.2;

    /// <summary>Most requests are mutated heavily; some lightly, so they pass validation and reach the store.</summary>
    void PickMutation() => _mutation = Chance(0.4) ? 0.01 : 0.2;

    bool Chance(double p) => _r.NextDouble() < p;
    T Pick<T>(params T[] items) => items[_r.Next(items.Length)];

    // ------------------------------------------------------------------ values

    static readonly string[] EdgeStrings =
    [
        "", " ", "a", "null", "true", "0", "-1", "NaN", "Infinity", "undefined", "[]", "{}",
        "\\u0000", "\\ud800", "\\udc00", "\\ud83d\\ude00", "\\udfff\\ud800", "\\ufeff", "\\u202e", "\\u2028\\u2029", "\\uffff",
        "😀", "👩‍👩‍👧‍👦", "e\u0301\u0301\u0301", "ﷺ", "𝕏", "漢字", "\u0630\u0644\u0643", "Z̴̧̛̛a̷l̶g̵o̸",
        "\\\"\\\\\\/\\b\\f\\n\\r\\t", "'; DROP TABLE messages; --", "../../../../etc/passwd", "%s%n%x{0}", "${jndi:ldap://x}",
        "<script>alert(1)</script>", "\\r\\nX-Injected: 1", "Text", "Event", "Structured", "Typing", "Presence", "Clear",
        "Join", "SignIn", "Disconnect", "On", "Off", "disconnected", "connected", "webmessaging", "open", "ReadOnly", "Send",
        "d1e2a3b4-0000-4000-8000-000000000001", "00000000-0000-0000-0000-000000000000",
    ];

    static readonly string[] EdgeNumbers =
    [
        "0", "-0", "1", "-1", "2147483647", "2147483648", "-2147483649", "9223372036854775807", "9223372036854775808",
        "18446744073709551616", "123456789012345678901234567890", "1e308", "1e309", "-1e400", "1e-400", "0.1", "1.0",
        "3.14159265358979323846264338327950288", "1E2", "-0.0e-0", "10000", "10001", "4096", "4097", "65536",
    ];

    /// <summary>A JSON string literal: usually an edge case, sometimes long or random (escapes kept valid JSON).</summary>
    public string Str()
    {
        // Lightly mutated requests keep to valid text, so they get past the parser.
        if (_mutation < 0.1 && Chance(0.9)) return "\"" + Pick("hello", "漢字", "😀", "e\u0301", "\u202eabc", "a\\nb", "' OR 1=1 --", "ذلك", "x") + "\"";
        var roll = _r.Next(10);
        if (roll < 5) return "\"" + Pick(EdgeStrings) + "\"";
        if (roll < 7) return "\"" + new string(Pick('a', 'x', '漢', '\u00e9'), Pick(10, 100, 2000, 4096, 4097, 5000)) + "\"";
        var sb = new StringBuilder("\"");
        var n = _r.Next(1, 40);
        for (var i = 0; i < n; i++)
        {
            var c = (char)_r.Next(0x20, 0x3000);
            if (c is '"' or '\\' || char.IsSurrogate(c)) sb.Append("\\u").Append(((int)c).ToString("x4"));
            else sb.Append(c);
        }
        return sb.Append('"').ToString();
    }

    public string Number() => Chance(0.7) ? Pick(EdgeNumbers) : _r.NextInt64(long.MinValue, long.MaxValue).ToString();

    /// <summary>Any JSON value; containers nest up to <paramref name="depth"/>.</summary>
    public string Any(int depth = 2)
    {
        switch (_r.Next(depth > 0 ? 9 : 6))
        {
            case 0: case 1: return Str();
            case 2: return Number();
            case 3: return Pick("true", "false");
            case 4: return "null";
            case 5: return Chance(0.05) ? Deep() : "[]";
            case 6: case 7:
                var items = Enumerable.Range(0, _r.Next(0, 4)).Select(_ => Any(depth - 1));
                return "[" + string.Join(",", items) + "]";
            default:
                var fields = Enumerable.Range(0, _r.Next(0, 4)).Select(_ => Str() + ":" + Any(depth - 1));
                return "{" + string.Join(",", fields) + "}";
        }
    }

    /// <summary>Nesting past System.Text.Json's default depth (64), or far past it.</summary>
    string Deep()
    {
        var depth = Pick(63, 64, 65, 200, 5000);
        var (open, close) = Chance(0.5) ? ("[", "]") : ("{\"a\":", "}");
        return string.Concat(Enumerable.Repeat(open, depth)) + "1" + string.Concat(Enumerable.Repeat(close, depth));
    }

    /// <summary>
    /// An object of the given fields: each may be missing, of a wrong type, or duplicated; unknown fields may be added.
    /// A field's generator gives its right-typed value (itself often an edge value).
    /// </summary>
    public string Obj(params (string Name, Func<string> Value)[] fields)
    {
        var parts = new List<string>();
        foreach (var (name, value) in fields)
        {
            var roll = _r.NextDouble();
            if (roll < 0.4 * _mutation) continue;                                 // missing
            var key = Chance(0.1 * _mutation) ? Str() : "\"" + name + "\"";      // a wrong key now and then
            parts.Add(key + ":" + (roll < _mutation ? Any() : value()));          // wrong type, or right
            if (Chance(0.1 * _mutation)) parts.Add(key + ":" + Any());            // duplicated
        }
        if (Chance(0.5 * _mutation))
            for (var i = _r.Next(1, 4); i > 0; i--) parts.Insert(_r.Next(parts.Count + 1), Str() + ":" + Any());   // unknown fields
        return "{" + string.Join(",", parts) + "}";
    }

    string Lit(string s) => "\"" + s + "\"";

    // ------------------------------------------------------------------ guest frames

    static readonly string[] Actions =
    [
        "configureSession", "onMessage", "onMessage", "onMessage", "onMessage", "echo", "getJwt", "closeSession",
        "configureAuthenticatedSession", "onAttachment", "getAttachment", "deleteAttachment", "getConfiguration",
        "OnMessage", "onmessage", "hangup", "disconnect", "", "onMessage\u0000",
    ];

    /// <summary>One Guest API frame as text (or, rarely, bytes to send as a binary frame or as invalid UTF-8 text).</summary>
    public (string? Text, byte[]? Bytes, bool Binary) GuestFrame(string token, string deploymentId, string[] otherTokens)
    {
        var roll = _r.Next(1000);
        if (roll < 20) return (null, RandomBytes(), true);                                     // binary frame
        if (roll < 21) return (null, InvalidUtf8(), false);                                    // not UTF-8: fails the connection
        if (roll < 120) return (RawJson(), null, false);                                       // malformed JSON, odd roots
        PickMutation();
        // A lightly mutated request is mostly a message, so that many pass validation and are stored.
        var action = _mutation < 0.1 && Chance(0.7) ? "onMessage" : Pick(Actions);
        string Token() => Chance(0.85) ? Lit(token) : Chance(0.5) ? Lit(Pick(otherTokens)) : Chance(0.5) ? Str() : Lit(new string('t', 3000));
        var text = Obj(
            ("action", () => Chance(0.95) ? Lit(action) : Str()),
            ("token", Token),
            ("deploymentId", () => Chance(0.8) ? Lit(deploymentId) : Str()),
            ("tracingId", () => Chance(0.7) ? Lit($"f-{_r.Next()}") : Str()),
            ("startNew", () => Pick("true", "false")),
            ("closeAllConnections", () => Pick("true", "false")),
            ("message", GuestMessage),
            ("journeyContext", () => Obj(("customer", () => Obj(("id", Str), ("idType", Str))), ("customerSession", () => Any()))),
            ("data", () => Any()),
            ("time", Str));
        return (text, null, false);
    }

    string GuestMessage() => Obj(
        ("type", () => Lit(_mutation < 0.1 && Chance(0.7) ? "Text" : Pick("Text", "Text", "Text", "Event", "Structured", "text", "Receipt", "Unknown", ""))),
        ("text", Str),
        ("events", () => "[" + string.Join(",", Enumerable.Range(0, _r.Next(0, 3)).Select(_ => GuestEvent())) + "]"),
        ("channel", () => Obj(("metadata", () => Obj(("customAttributes", () =>
            Chance(0.1) ? "{" + string.Join(",", Enumerable.Range(0, 300).Select(i => $"\"k{i}\":\"{new string('v', 10)}\"")) + "}" : StringMap()))),
            ("messageId", Str), ("time", Str))),
        ("content", () => "[" + string.Join(",", Enumerable.Range(0, _r.Next(0, 2)).Select(_ => Any(1))) + "]"),
        ("metadata", StringMap));

    /// <summary>An object of string values (what a Dictionary&lt;string, string&gt; field takes).</summary>
    string StringMap() => "{" + string.Join(",", Enumerable.Range(0, _r.Next(0, 4)).Select(_ => Str() + ":" + Str())) + "}";

    /// <summary>A number for an int field: usually in range, sometimes an edge value.</summary>
    string Int() => Chance(_mutation < 0.1 ? 0.98 : 0.8) ? _r.Next(-5, 100_000).ToString() : Number();

    string GuestEvent() => Obj(
        // Clear ends the conversation and closes the socket: rarer than the others, so sockets live a while.
        ("eventType", () => Lit(Pick("Typing", "Typing", "Presence", "Presence", "Unknown", "", "typing"))),
        ("typing", () => Obj(("type", () => Lit(Pick("On", "Off", "on", ""))), ("duration", Int))),
        ("presence", () => Obj(("type", () => Lit(Chance(0.05) ? "Clear" : Pick("Join", "SignIn", "Disconnect", "Leave", ""))))));

    /// <summary>Malformed or oddly rooted JSON.</summary>
    string RawJson() => _r.Next(14) switch
    {
        0 => "",
        1 => Pick("null", "true", "0", "\"onMessage\"", "[]", "[{\"action\":\"echo\"}]", "1e999"),
        2 => "{\"action\":\"echo\"",                                                 // truncated
        3 => "{\"action\":\"echo\"} trailing",
        4 => "{'action':'echo'}",                                                  // single quotes
        5 => "{\"action\":\"echo\",}",                                             // trailing comma
        6 => "/* comment */ {\"action\":\"echo\"}",
        7 => "\ufeff{\"action\":\"echo\"}",                                        // BOM
        8 => "{\"action\":\"onMessage\",\"message\":{\"type\":\"Text\",\"text\":\"a\u0001b\"}}",   // raw control character
        9 => Deep(),
        10 => "{\"action\":\"echo\",\"tracingId\":\"" + new string('x', 70_000) + "\"}",          // past the frame limit
        11 => "{\"action\":NaN}",
        12 => "{\"action\":\"onMessage\",\"message\":{\"type\":\"Text\",\"text\":\"\\ud800\"},\"token\":\"x\"}",
        _ => Any(3),
    };

    byte[] RandomBytes()
    {
        var bytes = new byte[_r.Next(1, 200)];
        _r.NextBytes(bytes);
        return bytes;
    }

    byte[] InvalidUtf8() => [.. "{\"action\":\"echo\",\"tracingId\":\""u8.ToArray(), 0xC0, 0xAF, 0xFF, 0xED, 0xA0, 0x80, .. "\"}"u8.ToArray()];

    // ------------------------------------------------------------------ platform requests

    /// <summary>One Platform API (or token endpoint) request.</summary>
    public FuzzRequest PlatformRequest(FuzzTargets t)
    {
        PickMutation();
        string Id(string real) => _r.Next(10) switch
        {
            < 6 => real,
            6 => Guid.NewGuid().ToString(),
            7 => Uri.EscapeDataString(Pick("..", "%00", "漢字", "a b", "'", new string('9', 2000), "null", "😀")),
            8 => "x",
            _ => Uri.EscapeDataString(real.ToUpperInvariant()),
        };
        var auth = _r.Next(20) switch
        {
            < 16 => "Bearer " + t.GoodToken,
            16 => null,
            17 => "Bearer " + t.GuestJwt,
            18 => "Bearer " + Tamper(t.GoodToken),
            _ => Pick("Bearer", "Bearer ", "Basic Zm9vOmJhcg==", "Bearer " + new string('a', 5000), "bearer x.y.z"),
        };
        var contentType = _r.Next(20) switch { < 17 => "application/json", 17 => null, 18 => "text/plain", _ => "application/x-www-form-urlencoded" };
        string Body(string json) => json;
        string conversations = "/api/v2/conversations";
        var (method, path, body) = _r.Next(20) switch
        {
            0 or 1 => ("POST", $"{conversations}/messages/agentless", Body(Obj(
                ("fromAddress", () => Lit(Chance(0.5) ? t.DeploymentId : t.IntegrationId)),
                ("toAddress", () => Lit(Chance(0.5) ? t.GuestSessionId : "fuzz-contact-" + _r.Next(5))),
                ("toAddressMessengerType", () => Lit(Pick("webmessaging", "open", "sms", "whatsapp", ""))),
                ("textBody", Str), ("useExistingActiveConversation", () => Pick("true", "false")),
                ("messagingTemplate", () => Any())))),
            2 or 3 => ("POST", $"{conversations}/messages/{Id(t.ConversationId)}/communications/{Id(t.BotCommunicationId)}/messages",
                Body(Obj(("textBody", Str), ("messagingTemplate", () => Any()), ("useNormalizedMessage", () => Pick("true", "false"))))),
            4 => ("POST", $"{conversations}/messages/{Id(t.ConversationId)}/communications/{Id(t.BotCommunicationId)}/typing",
                Body(Obj(("typing", () => Obj(("type", () => Lit(Pick("On", "Off", "on", ""))), ("duration", Int)))))),
            5 => ("PATCH", $"{conversations}/messages/{Id(t.ConversationId)}", Body(StateChange())),
            6 => ("PATCH", $"{conversations}/messages/{Id(t.ConversationId)}/participants/{Id(t.CustomerParticipantId)}", Body(StateChange())),
            7 => ("POST", $"{conversations}/{Id(t.ConversationId)}/disconnect", Chance(0.5) ? "" : Body(StateChange())),
            8 or 9 => ("POST", "/api/v2/analytics/conversations/details/query", Body(Obj(
                ("interval", () => Lit(Pick("2020-01-01T00:00:00Z/2030-01-01T00:00:00Z", "x/y", "2030-01-01T00:00:00Z/2020-01-01T00:00:00Z", ""))),
                ("order", () => Lit(Pick("asc", "desc", "sideways"))), ("orderBy", () => Lit(Pick("conversationStart", "conversationEnd", "x"))),
                ("paging", () => Obj(("pageSize", Int), ("pageNumber", Int))),
                ("conversationFilters", () => "[" + Obj(("type", () => Lit(Pick("and", "or", "nand"))),
                    ("predicates", () => "[" + Obj(("dimension", Str), ("operator", Str), ("value", Str), ("type", Str)) + "]")) + "]"),
                ("segmentFilters", () => Any())))),
            10 => ("PUT", $"/api/v2/parley/deployments/{t.DeploymentId}", Body(Deployment())),
            11 => Chance(0.1) ? ("POST", "/api/v2/parley/deployments", Body(Deployment())) : ("GET", $"/api/v2/parley/deployments/{Id(t.DeploymentId)}", ""),
            12 => ("PATCH", $"{conversations}/messaging/integrations/open/{Id(t.IntegrationId)}", Body(Obj(
                ("name", Str), ("outboundNotificationWebhookUrl", () => Lit(Pick("http://127.0.0.1:9/x", "ftp://x", "http://u:p@h/", "not a url", ""))),
                ("outboundNotificationWebhookSignatureSecretToken", Str), ("webhookHeaders", () => Any()),
                ("disconnectNotification", () => Pick("true", "false")), ("conversationDisconnect", () => Obj(("type", Str), ("enabled", () => "true")))))),
            13 or 14 => ("POST", $"{conversations}/messages/{Id(t.IntegrationId)}/inbound/open/{Pick("message", "message", "event", "receipt", "structured/response")}",
                Body(OpenInbound())),
            15 => ("POST", $"{conversations}/messages/inbound/open", Body(OpenInbound())),
            16 => (Pick("POST", "PUT"), $"/api/v2/notifications/channels/{Id(t.ChannelId)}/subscriptions",
                Body("[" + string.Join(",", Enumerable.Range(0, _r.Next(0, 6)).Select(_ => Obj(("id", () => Lit(
                    Chance(0.5) ? $"v2.detail.events.conversation.{t.ConversationId}.customer.{Pick("start", "end", "middle")}" : "v2.users.x.presence"))))) + "]")),
            17 => Chance(0.1) ? ("POST", "/api/v2/oauth/clients", Body(Obj(("name", Str), ("description", Str),
                    ("authorizedGrantType", () => Lit(Pick("CLIENT-CREDENTIALS", "PASSWORD", ""))),
                    ("permissions", () => "[" + string.Join(",", Enumerable.Range(0, _r.Next(0, 3)).Select(_ => Lit(Pick("*", "conversation:view", "nope")))) + "]"))))
                : ("GET", $"/api/v2/conversations/messages?pageSize={Pick("1", "25", "100", "101", "0", "-1", "x", "99999999999")}&pageNumber={Pick("1", "2", "0", "x")}", ""),
            18 => (Pick("GET", "DELETE", "PUT", "HEAD", "OPTIONS"), $"{conversations}/messages/{Id(t.ConversationId)}", Chance(0.5) ? "" : Any()),
            _ => ("POST", "/oauth/token", TokenForm(out contentType, out auth)),
        };
        return new FuzzRequest(method, path, body.Length == 0 ? null : contentType, body.Length == 0 ? null : Encoding.UTF8.GetBytes(body), auth);
    }

    string StateChange() => Obj(("state", () => Lit(Pick("disconnected", "connected", "terminated", "DISCONNECTED", ""))), ("reason", Str),
        ("wrapup", () => Any()));

    string Deployment() => Obj(("name", Str), ("allowedOrigins", () => Chance(0.5) ? "[\"*\"]" : Any()),
        ("conversationDisconnect", () => Obj(("enabled", () => Pick("true", "false")), ("type", () => Lit(Pick("ReadOnly", "Send", "None", ""))))),
        ("conversationClear", () => Obj(("enabled", () => Pick("true", "false")))),
        ("inactivityTimeoutSeconds", Int), ("guestMessagesPerSecond", Int));

    string OpenInbound() => Obj(
        ("id", Str),
        ("channel", () => Obj(("messageId", Str), ("time", () => Lit(Pick("2026-01-01T00:00:00.000Z", "yesterday", "", "2026-13-45T99:99:99Z"))),
            ("platform", () => Lit("Open")), ("type", () => Lit("Private")),
            ("from", () => Obj(("id", () => Lit("fuzz-contact-" + _r.Next(5))), ("idType", () => Lit(Pick("Opaque", "Email", "Phone", "Fax"))),
                ("nickname", Str), ("firstName", Str), ("lastName", Str))),
            ("to", () => Obj(("id", Str))))),
        ("type", () => Lit(Pick("Text", "Receipt", "Event", "Structured"))),
        ("text", Str),
        ("status", () => Lit(Pick("Sent", "Delivered", "Read", "Failed", "Published", "Removed", "Lost"))),
        ("events", () => "[" + Obj(("eventType", () => Lit(Pick("Typing", "Presence", ""))), ("typing", () => Obj(("type", () => Lit("On"))))) + "]"),
        ("content", () => Any()), ("metadata", () => Any()), ("isFinalReceipt", () => Pick("true", "false")), ("reasons", () => Any()));

    string TokenForm(out string? contentType, out string? auth)
    {
        contentType = Chance(0.9) ? "application/x-www-form-urlencoded" : "application/json";
        auth = _r.Next(4) switch
        {
            0 => null,
            1 => "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes($"fuzz-client-{_r.Next(3)}:wrong")),
            2 => "Basic !!!not-base64",
            _ => "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes(new string(':', _r.Next(1, 5)))),
        };
        return $"grant_type={Uri.EscapeDataString(Pick("client_credentials", "password", "", "client_credentials\u0000"))}" +
               (Chance(0.5) ? $"&client_id={Uri.EscapeDataString(Pick("parley-demo-client", "x", new string('c', 3000)))}&client_secret=wrong-{_r.Next(9)}" : "") +
               (Chance(0.1) ? "&%zz=%" : "");
    }

    string Tamper(string token)
    {
        var chars = token.ToCharArray();
        var i = _r.Next(chars.Length);
        chars[i] = chars[i] == 'A' ? 'B' : 'A';
        return new string(chars);
    }
}
