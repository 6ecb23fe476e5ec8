using System.Collections.Frozen;
using System.Text;

namespace Parley.Server.OpenMessaging;

/// <summary>
/// Which <c>webhookHeaders</c> an integration may set. A name must be an RFC 9110 token; a value printable ASCII or tab
/// (a CR or LF would end the header and let the rest of the value be read as more headers, or as a second request on
/// the same connection). Framing, hop-by-hop and proxy headers, and the headers Parley signs and identifies a delivery
/// with, are Parley's own. Checked at create/update, and again on every send: a row stored before these rules may be bad.
/// </summary>
public static class WebhookHeaderRules
{
    public const int MaxHeaders = 20;
    public const int MaxNameLength = 64;
    public const int MaxValueLength = 2048;

    /// <summary>Set by HTTP itself (framing, hop-by-hop, proxies) or by Parley for every delivery.</summary>
    static readonly FrozenSet<string> Reserved = new[]
    {
        "Host", "Content-Length", "Transfer-Encoding", "Content-Type", "Content-Encoding", "Connection", "Keep-Alive",
        "Proxy-Connection", "Proxy-Authorization", "Proxy-Authenticate", "TE", "Trailer", "Upgrade", "Expect",
        "X-Hub-Signature", WebhookSignature.HubHeader, WebhookSignature.SignatureHeader, WebhookSignature.TimestampHeader,
        "X-Parley-Delivery-Id", "X-Parley-Delivery-Attempt",
    }.ToFrozenSet(StringComparer.OrdinalIgnoreCase);

    /// <summary>Prefixes Parley keeps for headers it may add later.</summary>
    static readonly string[] ReservedPrefixes = ["Parley-", "X-Parley-"];

    /// <summary>What is wrong with this set of headers (naming the header), or null when every one may be sent.</summary>
    public static string? Problem(IReadOnlyDictionary<string, string>? headers)
    {
        if (headers is null) return null;
        if (headers.Count > MaxHeaders) return $"at most {MaxHeaders} headers may be set.";
        var seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (var (name, value) in headers)
        {
            if (Problem(name, value) is { } problem) return problem;
            if (!seen.Add(name)) return $"the header '{Printable(name)}' is set twice (header names are case-insensitive).";
        }
        return null;
    }

    public static string? Problem(string name, string? value)
    {
        if (name.Length == 0) return "a header name is empty.";
        if (name.Length > MaxNameLength) return $"the header '{Printable(name)}' has a name longer than {MaxNameLength} characters.";
        foreach (var c in name)
            if (!IsTokenChar(c))
                return $"the header '{Printable(name)}' has a character that is not allowed in a header name ({Describe(c)}).";
        if (Reserved.Contains(name))
            return $"the header '{name}' is set by HTTP or by Parley itself and may not be set by an integration.";
        foreach (var prefix in ReservedPrefixes)
            if (name.StartsWith(prefix, StringComparison.OrdinalIgnoreCase))
                return $"the header '{name}' uses the prefix '{prefix}', which Parley keeps for its own headers.";
        if (value is null) return $"the header '{name}' has no value.";
        if (value.Length > MaxValueLength) return $"the header '{name}' has a value longer than {MaxValueLength} characters.";
        foreach (var c in value)
            if (c != '\t' && (c < 0x20 || c > 0x7E))
                return $"the header '{name}' has a character that is not allowed in a header value ({Describe(c)}): " +
                    "values may hold printable ASCII and tabs only.";
        // The HTTP stack's own validation agrees, so what passes here is exactly what is sent.
        using var probe = new HttpRequestMessage();
        try { probe.Headers.Add(name, value); }
        catch (Exception e) when (e is FormatException or InvalidOperationException)
        {
            return $"the header '{name}' has a value that is not valid for that header.";
        }
        return null;
    }

    // RFC 9110 §5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA
    static bool IsTokenChar(char c) => char.IsAsciiLetterOrDigit(c) || "!#$%&'*+-.^_`|~".Contains(c);

    static string Describe(char c) => c switch
    {
        '\r' => "CR",
        '\n' => "LF",
        '\0' => "NUL",
        _ => $"U+{(int)c:X4}",
    };

    /// <summary>A name for an error message: bounded, control characters escaped, never the caller's raw bytes.</summary>
    static string Printable(string name)
    {
        var text = new StringBuilder();
        foreach (var c in name.Length > MaxNameLength ? name[..MaxNameLength] : name)
            text.Append(c is >= ' ' and <= '~' && c != '\'' ? c.ToString() : $"\\u{(int)c:X4}");
        if (name.Length > MaxNameLength) text.Append('…');
        return text.ToString();
    }
}
