using System.Security.Cryptography;

namespace Parley.Server.Users;

/// <summary>
/// User passwords: PBKDF2-HMAC-SHA256 with a 16-byte random salt per password (OWASP's recommendation for PBKDF2 is
/// 600,000 iterations), stored as <c>pbkdf2$iterations$salt$hash</c>, the format client secrets use, so one constant-time
/// check (<see cref="Matches"/>) reads both. A password is never logged and never in an answer.
/// </summary>
public static class Passwords
{
    /// <summary>OWASP Password Storage Cheat Sheet, PBKDF2-HMAC-SHA256.</summary>
    public const int DefaultIterations = 600_000;
    public const int MinLength = 8;
    /// <summary>Longest password hashed; bounds the input one request hands to PBKDF2.</summary>
    public const int MaxLength = 1024;

    public static string Hash(string password, int iterations)
    {
        var salt = RandomNumberGenerator.GetBytes(16);
        var hash = Rfc2898DeriveBytes.Pbkdf2(password, salt, iterations, HashAlgorithmName.SHA256, 32);
        return $"pbkdf2${iterations}${Convert.ToBase64String(salt)}${Convert.ToBase64String(hash)}";
    }

    /// <summary>Constant-time comparison of the derived key; a malformed stored hash matches nothing.</summary>
    public static bool Matches(string password, string stored)
    {
        try { return OAuth.Tokens.SecretMatches(password, stored); }
        catch (Exception e) when (e is FormatException or OverflowException) { return false; }
    }

    /// <summary>The iterations a stored hash was made with (0 when it cannot be read).</summary>
    public static int IterationsOf(string stored) => stored.Split('$') is [_, var n, _, _] && int.TryParse(n, out var i) ? i : 0;

    /// <summary>A password to print once: 128 random bits, URL-safe.</summary>
    public static string Generate() => Convert.ToBase64String(RandomNumberGenerator.GetBytes(16)).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    /// <summary>Why a chosen password is refused, or null.</summary>
    public static string? Refusal(string? password) => password switch
    {
        null or "" => "A password is required.",
        { Length: < MinLength } => $"The password is shorter than {MinLength} characters.",
        { Length: > MaxLength } => $"The password is longer than {MaxLength} characters.",
        _ => null,
    };
}
