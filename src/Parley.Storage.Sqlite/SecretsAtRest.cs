using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;

namespace Parley.Storage.Sqlite;

/// <summary>
/// Secrets on their way to and from the database: encrypted with the <see cref="ISecretCipher"/> on write, decrypted on
/// read. An encrypted value starts with <see cref="Marker"/>; a value without it was written in plain text by an older
/// version and is still read as it is, so a half-migrated database works. Without a cipher values stay plain text.
/// </summary>
sealed class SecretCodec(ISecretCipher? cipher) : SecretEnvelope(cipher)
{
    /// <summary>The columns that hold secrets. Token-signing keys (the original one, and those rotations added) are blobs; webhook secrets text.</summary>
    internal static readonly (string Table, string Column, bool Blob)[] Columns =
    [
        ("open_integrations", "secret_token", false),
        ("open_integrations", "previous_secret_token", false),
        ("signing_keys", "key", true),
        ("token_signing_keys", "key", true),
    ];

    /// <summary>
    /// At open, before any other write: encrypts every secret an older version stored in plain text (one transaction),
    /// and decrypts every encrypted one once, so keys that cannot read them stop the start instead of failing later
    /// requests. Returns how many were encrypted; a second open finds none. The old plain text is overwritten with
    /// zeros (secure_delete) and the WAL that carried the change is emptied.
    /// </summary>
    public async Task<int> MigrateAsync(SqliteConnection writer, CancellationToken ct)
    {
        if (!Encrypts) return 0;
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
