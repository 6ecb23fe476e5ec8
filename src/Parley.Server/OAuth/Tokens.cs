using System.Buffers;
using System.Collections.Concurrent;
using System.Collections.Frozen;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.IdentityModel.Tokens;
using Parley.Core;

namespace Parley.Server.OAuth;

/// <summary>A verified caller of the Platform API: a client, and with a user's token the user it acts for.</summary>
public sealed record Caller(string ClientId, string[] Permissions, string? UserId = null, string? UserName = null)
{
    public bool Has(string permission) => Array.IndexOf(Permissions, "*") >= 0 || Array.IndexOf(Permissions, permission) >= 0;

    /// <summary>Who the domain records as having acted (the audit names the user beside the client).</summary>
    public Actor Actor => new(ClientId, UserId, UserName);
}

/// <summary>A verified guest (from a JWT handed out by <c>getJwt</c>).</summary>
public sealed record GuestClaims(string SessionId, string DeploymentId, long Exp);

public enum TokenCheck { Valid, Invalid, Expired }

/// <summary>
/// Signs and checks the two kinds of bearer token: Platform access tokens (client credentials) and guest JWTs.
/// Both are compact HS256 JWTs under keys kept in the store, so they survive restarts and every node of a cluster
/// accepts them. The audience keeps them apart: a guest JWT opens no Platform endpoint, and the reverse.
/// Keys rotate without downtime: the header names the key (<c>kid</c>), the newest active key signs, and every key not
/// yet retired verifies. The original key's tokens carry no <c>kid</c> (tokens issued before rotation existed).
/// Platform access tokens are validated by ASP.NET Core's JWT bearer handler over this ring (<see cref="PlatformAuth"/>,
/// <see cref="VerificationKeys"/>); guest JWTs by <see cref="CheckGuestJwt"/>.
/// </summary>
public sealed class Tokens
{
    public const string PlatformAudience = "parley:platform";
    /// <summary>The <c>iss</c> of Platform access tokens (tokens issued before it existed carry none).</summary>
    public const string PlatformIssuer = "parley:platform";
    public const string GuestAudience = "parley:guest";
    public static readonly TimeSpan AccessTokenLifetime = TimeSpan.FromSeconds(86399);
    public static readonly TimeSpan GuestJwtLifetime = TimeSpan.FromHours(1);

    static readonly string OriginalHeader = B64(Encoding.UTF8.GetBytes("{\"alg\":\"HS256\",\"typ\":\"JWT\"}"));

    sealed record RingKey(string Kid, byte[] Key, string Header, DateTimeOffset SignsFrom, DateTimeOffset? RetiresAt)
    {
        /// <summary>The same key for the JWT bearer handler; the original key's tokens carry no kid, so it has none.</summary>
        public readonly SecurityKey[] Security =
            [new SymmetricSecurityKey(Key) { KeyId = Kid == SigningKey.OriginalKid ? null : Kid }];
    }

    /// <summary>The keys in force, by encoded header (a token's first segment names its key with no parsing) and by kid.</summary>
    sealed record Ring(FrozenDictionary<string, RingKey> ByHeader, RingKey[] NewestFirst)
    {
        public readonly FrozenDictionary<string, RingKey> ByKid = NewestFirst.ToFrozenDictionary(k => k.Kid);
    }

    readonly TimeProvider _clock;
    volatile Ring _ring;

    public Tokens(byte[] key, TimeProvider clock)
    {
        _clock = clock;
        _ring = Build([new SigningKey(SigningKey.OriginalKid, null, default, default, null)], key);
    }

    /// <summary>Replaces the key ring (at start, after a rotation, and on every refresh from the store).</summary>
    public void Load(IEnumerable<SigningKey> keys, byte[] originalKey)
    {
        var ring = Build(keys, originalKey);
        var before = _ring;
        _ring = ring;
        // A key that left the ring, or a new retirement date, must not keep verifying through a cache of verified tokens.
        if (before.ByHeader.Count != ring.ByHeader.Count || before.NewestFirst.Zip(ring.NewestFirst).Any(p => p.First.RetiresAt != p.Second.RetiresAt))
            _version = new object();
    }

    volatile object _version = new();

    /// <summary>Changes (a new object) whenever the keys in force change; caches of verified tokens start afresh then.</summary>
    public object RingVersion => _version;

    /// <summary>
    /// The keys that may have signed a Platform token naming <paramref name="kid"/> (none: the original key), if that key
    /// has not retired. An unknown or retired kid gets none, so the token is refused.
    /// </summary>
    public IEnumerable<SecurityKey> VerificationKeys(string? kid) =>
        Find(kid) is { } key && InForce(key) ? key.Security : [];

    /// <summary>Whether the key named by <paramref name="kid"/> (null: the original) still verifies.</summary>
    public bool KeyInForce(string? kid) => Find(kid) is { } key && InForce(key);

    RingKey? Find(string? kid) => _ring.ByKid.GetValueOrDefault(string.IsNullOrEmpty(kid) ? SigningKey.OriginalKid : kid);

    bool InForce(RingKey key) => key.RetiresAt is not { } retires || retires > _clock.GetUtcNow();

    static Ring Build(IEnumerable<SigningKey> keys, byte[] originalKey)
    {
        var list = keys.Where(k => k.Kid == SigningKey.OriginalKid || k.Key is not null)
            .Select(k => k.Kid == SigningKey.OriginalKid
                ? new RingKey(k.Kid, originalKey, OriginalHeader, k.SignsFrom, k.RetiresAt)
                : new RingKey(k.Kid, k.Key!, B64(Encoding.UTF8.GetBytes($"{{\"alg\":\"HS256\",\"kid\":\"{k.Kid}\",\"typ\":\"JWT\"}}")), k.SignsFrom, k.RetiresAt))
            .OrderByDescending(k => k.SignsFrom).ToArray();
        return new Ring(list.ToFrozenDictionary(k => k.Header), list);
    }

    /// <summary>The kid that signs now (the newest key whose start has passed and that has not retired).</summary>
    public string SigningKid => Signer(_clock.GetUtcNow()).Kid;

    RingKey Signer(DateTimeOffset now)
    {
        var ring = _ring;
        foreach (var k in ring.NewestFirst)
            if (k.SignsFrom <= now && (k.RetiresAt is not { } at || at > now)) return k;
        // Every key retired or not yet started (a misconfigured rotation): sign with the newest started key rather than fail.
        return ring.NewestFirst.FirstOrDefault(k => k.SignsFrom <= now) ?? ring.NewestFirst[^1];
    }

    /// <param name="user">For a user's token: the user it acts for (its permissions are then the user's, read at each call).</param>
    public (string Token, long ExpiresIn) IssueAccessToken(string clientId, IEnumerable<string> permissions, long credentialVersion = 0, User? user = null)
    {
        var now = _clock.GetUtcNow().ToUnixTimeSeconds();
        var exp = now + (long)AccessTokenLifetime.TotalSeconds;
        var claims = new Dictionary<string, object>
        {
            ["iss"] = PlatformIssuer, ["aud"] = PlatformAudience, ["sub"] = clientId, ["iat"] = now, ["exp"] = exp, ["perms"] = permissions.ToArray(),
            ["cv"] = credentialVersion, ["jti"] = Guid.NewGuid().ToString("N"),
        };
        if (user is not null)
        {
            claims["uid"] = user.Id;
            claims["uname"] = user.Username;
            claims["uv"] = user.CredentialVersion;
        }
        return (Sign(JsonSerializer.SerializeToUtf8Bytes(claims)), exp - now);
    }

    /// <param name="notAfter">The latest expiry (unix seconds) the JWT may have: its session's own expiry.</param>
    public (string Jwt, long Exp) IssueGuestJwt(string sessionId, string deploymentId, long? notAfter = null)
    {
        var now = _clock.GetUtcNow().ToUnixTimeSeconds();
        var exp = Math.Min(now + (long)GuestJwtLifetime.TotalSeconds, notAfter ?? long.MaxValue);
        var payload = JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, object>
        {
            ["aud"] = GuestAudience, ["sub"] = sessionId, ["deploymentId"] = deploymentId, ["iat"] = now, ["exp"] = exp,
        });
        return (Sign(payload), exp);
    }

    public TokenCheck CheckGuestJwt(string token, out GuestClaims? guest)
    {
        guest = null;
        var check = Verify(token, GuestAudience, out var payload, out _);
        if (check != TokenCheck.Valid) return check;
        guest = new GuestClaims(payload.GetProperty("sub").GetString()!, payload.GetProperty("deploymentId").GetString()!,
            payload.GetProperty("exp").GetInt64());
        return TokenCheck.Valid;
    }

    string Sign(byte[] payload)
    {
        var key = Signer(_clock.GetUtcNow());
        var signingInput = key.Header + "." + B64(payload);
        return signingInput + "." + B64(HMACSHA256.HashData(key.Key, Encoding.ASCII.GetBytes(signingInput)));
    }

    TokenCheck Verify(string token, string audience, out JsonElement payload, out RingKey? key)
    {
        payload = default;
        var parts = token.Split('.');
        if (parts.Length != 3 || !_ring.ByHeader.TryGetValue(parts[0], out key)) { key = null; return TokenCheck.Invalid; }
        if (key.RetiresAt is { } retires && retires <= _clock.GetUtcNow()) return TokenCheck.Invalid;
        try
        {
            var expected = HMACSHA256.HashData(key.Key, Encoding.ASCII.GetBytes(parts[0] + "." + parts[1]));
            if (!CryptographicOperations.FixedTimeEquals(expected, FromB64(parts[2]))) return TokenCheck.Invalid;
            payload = JsonDocument.Parse(FromB64(parts[1])).RootElement;
            if (!payload.TryGetProperty("aud", out var aud) || aud.GetString() != audience) return TokenCheck.Invalid;
            return payload.GetProperty("exp").GetInt64() <= _clock.GetUtcNow().ToUnixTimeSeconds() ? TokenCheck.Expired : TokenCheck.Valid;
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

    /// <summary>
    /// A hash no secret matches, checked when the client id is unknown so that answer costs the same PBKDF2 work as a
    /// wrong secret (the timing does not tell which client ids exist).
    /// </summary>
    public static readonly string UnknownClientHash = HashSecret(Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)));

    public static bool SecretMatches(string secret, string stored)
    {
        var parts = stored.Split('$');
        if (parts.Length != 4 || parts[0] != "pbkdf2") return false;
        var expected = Convert.FromBase64String(parts[3]);
        var actual = Rfc2898DeriveBytes.Pbkdf2(secret, Convert.FromBase64String(parts[2]), int.Parse(parts[1]), HashAlgorithmName.SHA256, expected.Length);
        return CryptographicOperations.FixedTimeEquals(expected, actual);
    }

    /// <summary>Guest tokens are client-chosen secrets: the store keys sessions by this hash, never the token.</summary>
    public static string HashGuestToken(string deploymentId, string token)
    {
        Span<byte> digest = stackalloc byte[SHA256.HashSizeInBytes];
        GuestTokenDigest(deploymentId, token, digest);
        return Convert.ToHexString(digest);
    }

    /// <summary>
    /// Whether <paramref name="token"/> is the one <paramref name="hash"/> (<see cref="HashGuestToken"/>'s) was made from,
    /// compared in fixed time. Every guest request checks its token: this one allocates nothing.
    /// </summary>
    public static bool GuestTokenMatches(string deploymentId, string token, string hash)
    {
        if (hash.Length != SHA256.HashSizeInBytes * 2) return false;   // not a hash HashGuestToken makes
        Span<byte> digest = stackalloc byte[SHA256.HashSizeInBytes];
        GuestTokenDigest(deploymentId, token, digest);
        Span<char> hex = stackalloc char[SHA256.HashSizeInBytes * 2];
        Convert.TryToHexString(digest, hex, out _);
        return CryptographicOperations.FixedTimeEquals(MemoryMarshal.AsBytes(hex), MemoryMarshal.AsBytes(hash.AsSpan()));
    }

    /// <summary>SHA-256 of <c>deploymentId + "\n" + token</c> in UTF-8, built on the stack (a pooled array past 1 KiB).</summary>
    static void GuestTokenDigest(string deploymentId, string token, Span<byte> digest)
    {
        var length = Encoding.UTF8.GetByteCount(deploymentId) + 1 + Encoding.UTF8.GetByteCount(token);
        var rented = length > 1024 ? ArrayPool<byte>.Shared.Rent(length) : null;
        Span<byte> input = rented is null ? stackalloc byte[1024] : rented;
        var n = Encoding.UTF8.GetBytes(deploymentId, input);
        input[n++] = (byte)'\n';
        n += Encoding.UTF8.GetBytes(token, input[n..]);
        SHA256.HashData(input[..n], digest);
        if (rented is not null) ArrayPool<byte>.Shared.Return(rented);
    }
}
