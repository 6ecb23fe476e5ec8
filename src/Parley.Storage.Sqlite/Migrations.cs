namespace Parley.Storage.Sqlite;

/// <summary>
/// Embedded, numbered SQL files (<c>Migrations/0001_initial.sql</c>, …) applied in order, one transaction each, and
/// recorded in <c>schema_version</c>. A shipped file is never edited; a change is the next number.
/// </summary>
static class Migrations
{
    public static async Task ApplyAsync(SqliteConnection c, CancellationToken ct)
    {
        await using (var create = c.CreateCommand())
        {
            create.CommandText = "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)";
            await create.ExecuteNonQueryAsync(ct);
        }
        long current;
        await using (var read = c.CreateCommand())
        {
            read.CommandText = "SELECT COALESCE(MAX(version), 0) FROM schema_version";
            current = (long)(await read.ExecuteScalarAsync(ct))!;
        }
        var assembly = typeof(Migrations).Assembly;
        var scripts = assembly.GetManifestResourceNames()
            .Where(n => n.EndsWith(".sql", StringComparison.Ordinal))
            .Select(n => (Name: n, Version: long.Parse(n.Split('.')[^2].Split('_')[0])))
            .OrderBy(s => s.Version);
        foreach (var (name, version) in scripts)
        {
            if (version <= current) continue;
            using var reader = new StreamReader(assembly.GetManifestResourceStream(name)!);
            var sql = await reader.ReadToEndAsync(ct);
            await using var tx = (SqliteTransaction)await c.BeginTransactionAsync(ct);
            await using (var apply = c.CreateCommand())
            {
                apply.Transaction = tx;
                apply.CommandText = sql;
                await apply.ExecuteNonQueryAsync(ct);
            }
            await using (var record = c.CreateCommand())
            {
                record.Transaction = tx;
                record.CommandText = "INSERT INTO schema_version (version, applied_at) VALUES ($v, $at)";
                record.Parameters.AddWithValue("$v", version);
                record.Parameters.AddWithValue("$at", DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
                await record.ExecuteNonQueryAsync(ct);
            }
            await tx.CommitAsync(ct);
        }
    }
}
