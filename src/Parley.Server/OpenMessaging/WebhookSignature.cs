using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace Parley.Server.OpenMessaging;

/// <summary>
/// The two signatures a delivery carries, and how an inbound post is checked against them.
/// <list type="bullet">
/// <item><c>X-Hub-Signature-256: sha256=base64(HMAC-SHA256(secret, body))</c>: the platform's own (docs/compatibility.md §Open Messaging webhooks), with the
/// current secret only (the platform has one secret at a time).</item>
/// <item><c>Parley-Webhook-Signature: t=&lt;unix seconds&gt;,v1=&lt;hex&gt;[,v1=&lt;hex&gt;]</c>: Stripe's scheme, followed as
/// Stripe documents it: v1 is the lower-case hex HMAC-SHA256, keyed with the secret's UTF-8 bytes, of
/// <c>"{t}.{raw body}"</c>; one v1 per secret in force (the new and, during a rotation's overlap, the old one); a
/// receiver accepts when any v1 matches and <c>t</c> is within its tolerance (300 s). <c>Parley-Webhook-Timestamp</c>
/// repeats <c>t</c> for receivers that log it. Every attempt is signed afresh, so a retry carries a new <c>t</c>.</item>
/// </list>
/// </summary>
public static class WebhookSignature
{
    public const string HubHeader = "X-Hub-Signature-256";
    public const string SignatureHeader = "Parley-Webhook-Signature";
    public const string TimestampHeader = "Parley-Webhook-Timestamp";
    /// <summary>Longest signature header an inbound post may carry (a timestamp and a handful of v1 values).</summary>
    const int MaxHeaderLength = 1024;

    public static string Hub(string secret, ReadOnlySpan<byte> body) =>
        "sha256=" + Convert.ToBase64String(HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), body));

    /// <summary>Lower-case hex HMAC-SHA256 of <c>"{timestamp}.{body}"</c> keyed with the secret.</summary>
    public static string V1(string secret, long timestamp, ReadOnlySpan<byte> body)
    {
        var prefix = Encoding.ASCII.GetBytes(timestamp.ToString(CultureInfo.InvariantCulture) + ".");
        using var hmac = IncrementalHash.CreateHMAC(HashAlgorithmName.SHA256, Encoding.UTF8.GetBytes(secret));
        hmac.AppendData(prefix);
        hmac.AppendData(body);
        return Convert.ToHexStringLower(hmac.GetHashAndReset());
    }

    public static string Header(long timestamp, IEnumerable<string> secrets, ReadOnlySpan<byte> body)
    {
        var text = new StringBuilder("t=").Append(timestamp.ToString(CultureInfo.InvariantCulture));
        foreach (var secret in secrets) text.Append(",v1=").Append(V1(secret, timestamp, body));
        return text.ToString();
    }

    public enum Verdict { Valid, Malformed, OutsideWindow, NoMatch }

    /// <summary>
    /// Checks a <c>Parley-Webhook-Signature</c> value as a Stripe receiver does: parse <c>t</c> and every <c>v1</c>,
    /// refuse a timestamp further than <paramref name="tolerance"/> from <paramref name="now"/>, accept when any v1
    /// equals the HMAC of one of <paramref name="secrets"/> (compared in constant time).
    /// </summary>
    public static Verdict Verify(string header, ReadOnlySpan<byte> body, IReadOnlyList<string> secrets, DateTimeOffset now, TimeSpan tolerance)
    {
        if (header.Length is 0 or > MaxHeaderLength) return Verdict.Malformed;
        long? timestamp = null;
        var signatures = new List<byte[]>();
        foreach (var part in header.Split(','))
        {
            var eq = part.IndexOf('=');
            if (eq <= 0) return Verdict.Malformed;
            var (key, value) = (part[..eq].Trim(), part[(eq + 1)..].Trim());
            if (key == "t")
            {
                if (timestamp is not null || !long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var t)) return Verdict.Malformed;
                timestamp = t;
            }
            else if (key == "v1") signatures.Add(Encoding.ASCII.GetBytes(value));
            // other schemes are ignored, as Stripe's receivers do
        }
        if (timestamp is not { } ts || signatures.Count == 0) return Verdict.Malformed;
        if (Math.Abs(now.ToUnixTimeSeconds() - ts) > tolerance.TotalSeconds) return Verdict.OutsideWindow;
        var match = false;
        foreach (var secret in secrets)
        {
            var expected = Encoding.ASCII.GetBytes(V1(secret, ts, body));
            foreach (var given in signatures) match |= CryptographicOperations.FixedTimeEquals(expected, given);
        }
        return match ? Verdict.Valid : Verdict.NoMatch;
    }

    /// <summary>An <c>X-Hub-Signature-256</c> value against each secret in force, in constant time.</summary>
    public static bool VerifyHub(string header, ReadOnlySpan<byte> body, IReadOnlyList<string> secrets)
    {
        var given = Encoding.ASCII.GetBytes(header);
        var match = false;
        foreach (var secret in secrets) match |= CryptographicOperations.FixedTimeEquals(given, Encoding.ASCII.GetBytes(Hub(secret, body)));
        return match;
    }
}
