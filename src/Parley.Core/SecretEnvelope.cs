using System.Buffers.Text;
using System.Text;

namespace Parley.Core;

/// <summary>The database holds encrypted secrets that the cipher at hand cannot decrypt (its keys are lost or not these).</summary>
public sealed class SecretsUnreadableException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// How every store keeps a secret (webhook secrets, token-signing keys): encrypted with the <see cref="ISecretCipher"/>
/// and prefixed with <see cref="Marker"/>. A value without the marker is plain text, written by an older version or
/// without a cipher, and is read as it is, so a half-migrated database works. Without a cipher values stay plain text.
/// One form for every adapter, so a secret reads the same whichever store wrote it.
/// </summary>
public class SecretEnvelope(ISecretCipher? cipher)
{
    /// <summary>Starts every encrypted value (text and blob alike); a random 32-byte key never starts with it in practice.</summary>
    public const string Marker = "parley-dp1:";
    static readonly byte[] MarkerBytes = Encoding.ASCII.GetBytes(Marker);

    public bool Encrypts => cipher is not null;

    public string? Protect(string? plaintext) =>
        plaintext is null || cipher is null ? plaintext : Marker + Base64Url.EncodeToString(cipher.Protect(Encoding.UTF8.GetBytes(plaintext)));

    public string? Unprotect(string? stored) =>
        stored is null || !stored.StartsWith(Marker, StringComparison.Ordinal) ? stored
            : Encoding.UTF8.GetString(Cipher.Unprotect(Base64Url.DecodeFromChars(stored.AsSpan(Marker.Length))));

    public byte[] Protect(byte[] plaintext) => cipher is null ? plaintext : [.. MarkerBytes, .. cipher.Protect(plaintext)];

    public byte[] Unprotect(byte[] stored) =>
        stored.AsSpan().StartsWith(MarkerBytes) ? Cipher.Unprotect(stored[MarkerBytes.Length..]) : stored;

    /// <summary>Whether a stored value (text or blob) is in the encrypted form.</summary>
    public static bool IsProtected(object value) => value switch
    {
        string s => s.StartsWith(Marker, StringComparison.Ordinal),
        byte[] b => b.AsSpan().StartsWith(MarkerBytes),
        _ => false,
    };

    ISecretCipher Cipher => cipher ?? throw new SecretsUnreadableException("The database holds encrypted secrets, but the store was opened without a cipher.");
}
