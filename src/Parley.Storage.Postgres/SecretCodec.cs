using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;
using Npgsql;
using Parley.Core;

namespace Parley.Storage.Postgres;

/// <summary>
/// Secrets on their way to and from the database, in the same form as the SQLite store keeps them: encrypted with the
/// <see cref="ISecretCipher"/> and prefixed with <see cref="Marker"/>; a value without the marker is plain text (written
/// without a cipher) and read as it is. Without a cipher values stay plain text (tests of the store itself).
/// </summary>
sealed class SecretCodec(ISecretCipher? cipher) : SecretEnvelope(cipher)
{
    /// <summary>The columns that hold secrets, each with its table's key column.</summary>
    static readonly (string Table, string Key, string Column)[] Columns =
    [
        ("open_integrations", "id", "secret_token"),
        ("open_integrations", "id", "previous_secret_token"),
        ("signing_keys", "id", "key"),
        ("token_signing_keys", "kid", "key"),
    ];

    /// <summary>
    /// At open: decrypts every encrypted secret once, so keys that cannot read them stop the start instead of failing later
    /// requests, and encrypts any stored in plain text (by a node that ran without a cipher). Returns how many it encrypted.
    /// Each node checks; the updates are idempotent (a value is encrypted only while it still lacks the marker).
    /// </summary>
    public async Task<int> MigrateAsync(NpgsqlDataSource source, CancellationToken ct)
    {
        if (!Encrypts) return 0;
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
