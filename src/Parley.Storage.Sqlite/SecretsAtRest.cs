using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;

namespace Parley.Storage.Sqlite;

/// <summary>The database holds encrypted secrets that the cipher at hand cannot decrypt (its keys are lost or not these).</summary>
public sealed class SecretsUnreadableException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// Secrets on their way to and from the database: encrypted with the <see cref="ISecretCipher"/> on write, decrypted on
/// read. An encrypted value starts with <see cref="Marker"/>; a value without it was written in plain text by an older
/// version and is still read as it is, so a half-migrated database works. Without a cipher values stay plain text.
/// </summary>
sealed class SecretCodec(ISecretCipher? cipher)
{
    /// <summary>Starts every encrypted value (text and blob alike); a random 32-byte key never starts with it in practice.</summary>
    const string Marker = "parley-dp1:";
    static readonly byte[] MarkerBytes = Encoding.ASCII.GetBytes(Marker);

    /// <summary>The columns that hold secrets. Token-signing keys (the original one, and those rotations added) are blobs; webhook secrets text.</summary>
    internal static readonly (string Table, string Column, bool Blob)[] Columns =
    [
        ("open_integrations", "secret_token", false),
        ("open_integrations", "previous_secret_token", false),
        ("signing_keys", "key", true),
        ("token_signing_keys", "key", true),
    ];

    public bool Encrypts => cipher is not null;

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
    /// At open, before any other write: encrypts every secret an older version stored in plain text (one transaction),
    /// and decrypts every encrypted one once, so keys that cannot read them stop the start instead of failing later
    /// requests. Returns how many were encrypted; a second open finds none. The old plain text is overwritten with
    /// zeros (secure_delete) and the WAL that carried the change is emptied.
    /// </summary>
    public async Task<int> MigrateAsync(SqliteConnection writer, CancellationToken ct)
    {
        if (cipher is null) return 0;
        var plain = new List<(string Table, string Column, long RowId, object Value)>();
        foreach (var (table, column, _) in Columns)
        {
            await using var read = writer.CreateCommand();
            read.CommandText = $"SELECT rowid, {column} FROM {table} WHERE {column} IS NOT NULL";
            await using var r = await read.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct))
            {
                var value = r.GetValue(1);
                if (!IsProtected(value)) { plain.Add((table, column, r.GetInt64(0), value)); continue; }
                try { if (value is string s) Unprotect(s); else Unprotect((byte[])value); }
                catch (Exception e) when (e is CryptographicException or FormatException)
                {
                    var reason = e.Message.Split('\n')[0].Trim();
                    throw new SecretsUnreadableException(
                        $"a secret in {table}.{column}: {(reason.Length <= 200 ? reason : reason[..200] + "…")}", e);
                }
            }
        }
        if (plain.Count == 0) return 0;

        long secureDelete;
        await using (var on = writer.CreateCommand())
        {
            on.CommandText = "PRAGMA secure_delete";
            secureDelete = (long)(await on.ExecuteScalarAsync(ct))!;
            on.CommandText = "PRAGMA secure_delete = ON";
            await on.ExecuteNonQueryAsync(ct);
        }
        await using (var tx = (SqliteTransaction)await writer.BeginTransactionAsync(ct))
        {
            foreach (var (table, column, rowId, value) in plain)
            {
                await using var update = writer.CreateCommand();
                update.Transaction = tx;
                update.CommandText = $"UPDATE {table} SET {column} = $value WHERE rowid = $rowid";
                update.Parameters.AddWithValue("$value", value is string s ? Protect(s)! : (object)Protect((byte[])value));
                update.Parameters.AddWithValue("$rowid", rowId);
                await update.ExecuteNonQueryAsync(ct);
            }
            await tx.CommitAsync(ct);
        }
        // Copy the encrypted pages into the database file and empty the WAL, which held them beside older plain-text frames.
        await using (var after = writer.CreateCommand())
        {
            after.CommandText = $"PRAGMA wal_checkpoint(TRUNCATE); PRAGMA secure_delete = {secureDelete}";
            await after.ExecuteNonQueryAsync(ct);
        }
        return plain.Count;
    }
}
