using Npgsql;

namespace Parley.Storage.Postgres;

/// <summary>
/// Embedded, numbered SQL files (<c>Migrations/0001_schema.sql</c>, …; this adapter's own numbering) applied at start-up
/// and recorded in <c>schema_version</c>. Every node runs this at start: the pending files and their records are applied
/// in one transaction that first takes <c>pg_advisory_xact_lock(<see cref="LockKey"/>)</c>, so when several nodes start
/// at once on an empty database one applies the schema and the others, once the lock is theirs, find nothing left to do.
/// A shipped file is never edited; a change is the next number.
/// </summary>
static class PostgresMigrations
{
    /// <summary>The advisory lock key ("parley" in ASCII): held only by migrations, for their transaction.</summary>
    public const long LockKey = 0x7061726C6579;

    public static async Task<IReadOnlyList<long>> ApplyAsync(NpgsqlDataSource source, CancellationToken ct)
    {
        var assembly = typeof(PostgresMigrations).Assembly;
        var scripts = assembly.GetManifestResourceNames()
            .Where(n => n.EndsWith(".sql", StringComparison.Ordinal))
            .Select(n => (Name: n, Version: long.Parse(n.Split('.')[^2].Split('_')[0])))
            .OrderBy(s => s.Version)
            .ToList();

        await using var c = await source.OpenConnectionAsync(ct);
        await using var tx = await c.BeginTransactionAsync(ct);
        await using (var setup = new NpgsqlCommand(
            $"SELECT pg_advisory_xact_lock({LockKey}); " +
            "CREATE TABLE IF NOT EXISTS schema_version (version bigint PRIMARY KEY, applied_at bigint NOT NULL)", c, tx))
            await setup.ExecuteNonQueryAsync(ct);
        long current;
        await using (var read = new NpgsqlCommand("SELECT COALESCE(MAX(version), 0) FROM schema_version", c, tx))
            current = (long)(await read.ExecuteScalarAsync(ct))!;
        var applied = new List<long>();
        foreach (var (name, version) in scripts)
        {
            if (version <= current) continue;
            using var reader = new StreamReader(assembly.GetManifestResourceStream(name)!);
            await using (var apply = new NpgsqlCommand(await reader.ReadToEndAsync(ct), c, tx))
                await apply.ExecuteNonQueryAsync(ct);
            await using (var record = new NpgsqlCommand("INSERT INTO schema_version (version, applied_at) VALUES ($1, $2)", c, tx))
            {
                record.Parameters.Add(new NpgsqlParameter { Value = version });
                record.Parameters.Add(new NpgsqlParameter { Value = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() });
                await record.ExecuteNonQueryAsync(ct);
            }
            applied.Add(version);
        }
        await tx.CommitAsync(ct);
        return applied;
    }
}
