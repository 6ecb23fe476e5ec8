using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;
using Npgsql;
using Parley.Core;

namespace Parley.Storage.Postgres;

/// <summary>The database holds encrypted secrets that the cipher at hand cannot decrypt (its keys are lost or not these).</summary>
public sealed class SecretsUnreadableException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// Secrets on their way to and from the database, in the same form as the SQLite store keeps them: encrypted with the
/// <see cref="ISecretCipher"/> and prefixed with <see cref="Marker"/>; a value without the marker is plain text (written
/// without a cipher) and read as it is. Without a cipher values stay plain text (tests of the store itself).
/// </summary>
sealed class SecretCodec(ISecretCipher? cipher)
{
    const string Marker = "parley-dp1:";
    static readonly byte[] MarkerBytes = Encoding.ASCII.GetBytes(Marker);

    /// <summary>The columns that hold secrets, each with its table's key column.</summary>
    static readonly (string Table, string Key, string Column)[] Columns =
    [
        ("open_integrations", "id", "secret_token"),
        ("open_integrations", "id", "previous_secret_token"),
        ("signing_keys", "id", "key"),
        ("token_signing_keys", "kid", "key"),
    ];

    public string? Protect(string? plaintext) =>
        plaintext is null || cipher is null ? plaintext : Marker + Base64Url.EncodeToString(cipher.Protect(Encoding.UTF8.GetBytes(plaintext)));

    public string? Unprotect(string? stored) =>
        stored is null || !stored.StartsWith(Marker, StringComparison.Ordinal) ? stored
            : Encoding.UTF8.GetString(Cipher.Unprotect(Base64Url.DecodeFromChars(stored.AsSpan(Marker.Length))));

    public byte[] Protect(byte[] plaintext) => cipher is null ? plaintext : [.. MarkerBytes, .. cipher.Protect(plaintext)];

    public byte[] Unprotect(byte[] stored) =>
        stored.AsSpan().StartsWith(MarkerBytes) ? Cipher.Unprotect(stored[MarkerBytes.Length..]) : stored;

    static bool IsProtected(object value) => value switch
    {
        string s => s.StartsWith(Marker, StringComparison.Ordinal),
        byte[] b => b.AsSpan().StartsWith(MarkerBytes),
        _ => false,
    };

    ISecretCipher Cipher => cipher ?? throw new SecretsUnreadableException("The database holds encrypted secrets, but the store was opened without a cipher.");

    /// <summary>
    /// At open: decrypts every encrypted secret once, so keys that cannot read them stop the start instead of failing later
    /// requests, and encrypts any stored in plain text (by a node that ran without a cipher). Returns how many it encrypted.
    /// Each node checks; the updates are idempotent (a value is encrypted only while it still lacks the marker).
    /// </summary>
    public async Task<int> MigrateAsync(NpgsqlDataSource source, CancellationToken ct)
    {
        if (cipher is null) return 0;
        var plain = new List<(string Table, string Key, string Column, object Id, object Value)>();
        foreach (var (table, key, column) in Columns)
        {
            await using var read = source.CreateCommand($"SELECT {key}, {column} FROM {table} WHERE {column} IS NOT NULL");
            await using var r = await read.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct))
            {
                var value = r.GetValue(1);
                if (!IsProtected(value)) { plain.Add((table, key, column, r.GetValue(0), value)); continue; }
                try { if (value is string s) Unprotect(s); else Unprotect((byte[])value); }
                catch (Exception e) when (e is CryptographicException or FormatException)
                {
                    var reason = e.Message.Split('\n')[0].Trim();
                    throw new SecretsUnreadableException($"a secret in {table}.{column}: {(reason.Length <= 200 ? reason : reason[..200] + "…")}", e);
                }
            }
        }
        if (plain.Count == 0) return 0;
        await using var batch = source.CreateBatch();
        foreach (var (table, key, column, id, value) in plain)
        {
            var update = new NpgsqlBatchCommand($"UPDATE {table} SET {column} = $1 WHERE {key} = $2 AND {column} = $3");
            update.Parameters.Add(new NpgsqlParameter { Value = value is string s ? Protect(s)! : Protect((byte[])value) });
            update.Parameters.Add(new NpgsqlParameter { Value = id });
            update.Parameters.Add(new NpgsqlParameter { Value = value });
            batch.BatchCommands.Add(update);
        }
        await batch.ExecuteNonQueryAsync(ct);
        return plain.Count;
    }
}
