using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace Parley.Server.OAuth;

/// <summary>A verified caller of the Platform API.</summary>
public sealed record Caller(string ClientId, string[] Permissions)
{
    public bool Has(string permission) => Array.IndexOf(Permissions, "*") >= 0 || Array.IndexOf(Permissions, permission) >= 0;
}

/// <summary>A verified guest (from a JWT handed out by <c>getJwt</c>).</summary>
public sealed record GuestClaims(string SessionId, string DeploymentId, long Exp);

public enum TokenCheck { Valid, Invalid, Expired }

/// <summary>
/// Signs and checks the two kinds of bearer token: Platform access tokens (client credentials) and guest JWTs.
/// Both are compact HS256 JWTs under one key kept in the store, so they survive restarts and every node of a
/// cluster accepts them. The audience keeps them apart: a guest JWT opens no Platform endpoint, and the reverse.
/// </summary>
public sealed class Tokens(byte[] key, TimeProvider clock)
{
    public const string PlatformAudience = "parley:platform";
    public const string GuestAudience = "parley:guest";
    public static readonly TimeSpan AccessTokenLifetime = TimeSpan.FromSeconds(86399);
    public static readonly TimeSpan GuestJwtLifetime = TimeSpan.FromHours(1);

    static readonly string Header = B64(Encoding.UTF8.GetBytes("{\"alg\":\"HS256\",\"typ\":\"JWT\"}"));

    public (string Token, long ExpiresIn) IssueAccessToken(string clientId, IEnumerable<string> permissions)
    {
        var now = clock.GetUtcNow().ToUnixTimeSeconds();
        var exp = now + (long)AccessTokenLifetime.TotalSeconds;
        var payload = JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, object>
        {
            ["aud"] = PlatformAudience, ["sub"] = clientId, ["iat"] = now, ["exp"] = exp, ["perms"] = permissions.ToArray(),
            ["jti"] = Guid.NewGuid().ToString("N"),
        });
        return (Sign(payload), exp - now);
    }

    /// <param name="notAfter">The latest expiry (unix seconds) the JWT may have: its session's own expiry.</param>
    public (string Jwt, long Exp) IssueGuestJwt(string sessionId, string deploymentId, long? notAfter = null)
    {
        var now = clock.GetUtcNow().ToUnixTimeSeconds();
        var exp = Math.Min(now + (long)GuestJwtLifetime.TotalSeconds, notAfter ?? long.MaxValue);
        var payload = JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, object>
        {
            ["aud"] = GuestAudience, ["sub"] = sessionId, ["deploymentId"] = deploymentId, ["iat"] = now, ["exp"] = exp,
        });
        return (Sign(payload), exp);
    }

    // Verified access tokens, so a client's every call does not re-verify and re-parse its token.
    readonly System.Collections.Concurrent.ConcurrentDictionary<string, (Caller Caller, long Exp)> _verified = new();

    public TokenCheck CheckAccessToken(string token, out Caller? caller)
    {
        var now = clock.GetUtcNow().ToUnixTimeSeconds();
        if (_verified.TryGetValue(token, out var hit))
        {
            caller = hit.Exp > now ? hit.Caller : null;
            return caller is null ? TokenCheck.Expired : TokenCheck.Valid;
        }
        caller = null;
        var check = Verify(token, PlatformAudience, out var payload);
        if (check != TokenCheck.Valid) return check;
        var perms = payload.GetProperty("perms").EnumerateArray().Select(p => p.GetString()!).ToArray();
        caller = new Caller(payload.GetProperty("sub").GetString()!, perms);
        if (_verified.Count > 10_000) _verified.Clear();
        _verified[token] = (caller, payload.GetProperty("exp").GetInt64());
        return TokenCheck.Valid;
    }

    public TokenCheck CheckGuestJwt(string token, out GuestClaims? guest)
    {
        guest = null;
        var check = Verify(token, GuestAudience, out var payload);
        if (check != TokenCheck.Valid) return check;
        guest = new GuestClaims(payload.GetProperty("sub").GetString()!, payload.GetProperty("deploymentId").GetString()!,
            payload.GetProperty("exp").GetInt64());
        return TokenCheck.Valid;
    }

    string Sign(byte[] payload)
    {
        var signingInput = Header + "." + B64(payload);
        return signingInput + "." + B64(HMACSHA256.HashData(key, Encoding.ASCII.GetBytes(signingInput)));
    }

    TokenCheck Verify(string token, string audience, out JsonElement payload)
    {
        payload = default;
        var parts = token.Split('.');
        if (parts.Length != 3 || parts[0] != Header) return TokenCheck.Invalid;
        try
        {
            var expected = HMACSHA256.HashData(key, Encoding.ASCII.GetBytes(parts[0] + "." + parts[1]));
            if (!CryptographicOperations.FixedTimeEquals(expected, FromB64(parts[2]))) return TokenCheck.Invalid;
            payload = JsonDocument.Parse(FromB64(parts[1])).RootElement;
            if (!payload.TryGetProperty("aud", out var aud) || aud.GetString() != audience) return TokenCheck.Invalid;
            return payload.GetProperty("exp").GetInt64() <= clock.GetUtcNow().ToUnixTimeSeconds() ? TokenCheck.Expired : TokenCheck.Valid;
        }
        catch (Exception e) when (e is FormatException or JsonException or KeyNotFoundException or InvalidOperationException)
        {
            return TokenCheck.Invalid;
        }
    }

    static string B64(ReadOnlySpan<byte> bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    static byte[] FromB64(string s)
    {
        s = s.Replace('-', '+').Replace('_', '/');
        return Convert.FromBase64String(s.PadRight(s.Length + (4 - s.Length % 4) % 4, '='));
    }

    /// <summary>Client secrets are stored as salted PBKDF2 hashes: <c>pbkdf2$iterations$salt$hash</c>.</summary>
    public static string HashSecret(string secret)
    {
        var salt = RandomNumberGenerator.GetBytes(16);
        const int iterations = 10_000;
        var hash = Rfc2898DeriveBytes.Pbkdf2(secret, salt, iterations, HashAlgorithmName.SHA256, 32);
        return $"pbkdf2${iterations}${Convert.ToBase64String(salt)}${Convert.ToBase64String(hash)}";
    }

    public static bool SecretMatches(string secret, string stored)
    {
        var parts = stored.Split('$');
        if (parts.Length != 4 || parts[0] != "pbkdf2") return false;
        var expected = Convert.FromBase64String(parts[3]);
        var actual = Rfc2898DeriveBytes.Pbkdf2(secret, Convert.FromBase64String(parts[2]), int.Parse(parts[1]), HashAlgorithmName.SHA256, expected.Length);
        return CryptographicOperations.FixedTimeEquals(expected, actual);
    }

    /// <summary>Guest tokens are client-chosen secrets: the store keys sessions by this hash, never the token.</summary>
    public static string HashGuestToken(string deploymentId, string token) =>
        Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(deploymentId + "\n" + token)));
}
