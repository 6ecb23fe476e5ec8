using System.Net.Sockets;
using Npgsql;
using NpgsqlTypes;
using Parley.Core;

namespace Parley.Storage.Postgres;

/// <summary>
/// What every port class shares: the one <see cref="NpgsqlDataSource"/> (its connection pool), the secrets codec, this
/// node's id, and the rule that an engine failure reaches callers as <see cref="StoreUnavailableException"/>, never as a
/// raw Npgsql exception.
/// </summary>
sealed class PostgresDatabase(NpgsqlDataSource source, SecretCodec secrets, string nodeId)
{
    public NpgsqlDataSource Source => source;
    public SecretCodec Secrets => secrets;
    public string NodeId => nodeId;

    /// <summary>A read (or a write that may simply be retried): cancellable, engine failures mapped.</summary>
    public async Task<T> ReadAsync<T>(Func<CancellationToken, Task<T>> work, CancellationToken ct)
    {
        try { return await work(ct); }
        catch (Exception e) when (Unavailable(e) is { } unavailable) { throw unavailable; }
    }

    /// <summary>
    /// A write. Cancellation is honoured only before it is sent: once on the wire it runs to its end, so a caller is never
    /// told "failed" about a write that then commits. A connection lost before the answer leaves the outcome unknown;
    /// it is reported as <see cref="StoreUnavailableException"/> (never as stored).
    /// </summary>
    public async Task<T> WriteAsync<T>(Func<CancellationToken, Task<T>> work, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        T result;
        try { result = await work(CancellationToken.None); }
        catch (Exception e) when (Unavailable(e) is { } unavailable) { throw unavailable; }
        ParleyDiagnostics.CommitGroupSize.Record(1);   // each write is a transaction of its own: no group commit here
        return result;
    }

    /// <summary>The failure as "the store is unavailable", or null when it is not an engine failure (a bug, a constraint).</summary>
    public static StoreUnavailableException? Unavailable(Exception e) => e switch
    {
        StoreUnavailableException => null,
        PostgresException pg when pg.IsTransient || pg.SqlState.StartsWith("08", StringComparison.Ordinal)
            || pg.SqlState.StartsWith("57P", StringComparison.Ordinal) || pg.SqlState.StartsWith("53", StringComparison.Ordinal)
            => new StoreUnavailableException($"PostgreSQL is unavailable ({pg.SqlState}: {Clip(pg.MessageText)}).", e),
        PostgresException => null,
        // Not an answer from the server: the connection could not be made or was lost (socket, timeout, pool exhausted).
        NpgsqlException => new StoreUnavailableException($"PostgreSQL cannot be reached ({Clip(FirstLine(e))}).", e),
        SocketException or IOException or TimeoutException => new StoreUnavailableException($"PostgreSQL cannot be reached ({Clip(e.Message)}).", e),
        _ => null,
    };

    static string FirstLine(Exception e)
    {
        var inner = e.InnerException is { } i && i is not NpgsqlException ? $": {i.Message}" : "";
        return (e.Message + inner).Split('\n')[0].Trim();
    }

    static string Clip(string s) => s.Length <= 200 ? s : s[..200] + "…";

    // ------------------------------------------------------------ parameters and values

    public static NpgsqlParameter Text(string? v) => new() { Value = (object?)v ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text };
    public static NpgsqlParameter Int8(long? v) => new() { Value = (object?)v ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Bigint };
    public static NpgsqlParameter Int4(int? v) => new() { Value = (object?)v ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Integer };
    public static NpgsqlParameter Bool(bool v) => new() { Value = v, NpgsqlDbType = NpgsqlDbType.Boolean };
    public static NpgsqlParameter Bytes(byte[]? v) => new() { Value = (object?)v ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Bytea };
    public static NpgsqlParameter TextArray(string[] v) => new() { Value = v, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text };
    public static NpgsqlParameter Int4Array(int[] v) => new() { Value = v, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Integer };

    public static long Ms(DateTimeOffset t) => t.ToUnixTimeMilliseconds();
    public static long? Ms(DateTimeOffset? t) => t?.ToUnixTimeMilliseconds();
    public static DateTimeOffset Time(long ms) => DateTimeOffset.FromUnixTimeMilliseconds(ms);
    public static DateTimeOffset? TimeOrNull(NpgsqlDataReader r, int i) => r.IsDBNull(i) ? null : Time(r.GetInt64(i));
    public static string? StringOrNull(NpgsqlDataReader r, int i) => r.IsDBNull(i) ? null : r.GetString(i);
    public static T Parse<T>(string s) where T : struct, Enum => Enum.Parse<T>(s);
    public static long Offset(int pageSize, int pageNumber) => (long)(pageNumber - 1) * pageSize;

    public NpgsqlCommand Command(string sql, params NpgsqlParameter[] args)
    {
        var cmd = source.CreateCommand(sql);
        foreach (var a in args) cmd.Parameters.Add(a);
        return cmd;
    }

    public static NpgsqlBatchCommand BatchCommand(string sql, params NpgsqlParameter[] args)
    {
        var cmd = new NpgsqlBatchCommand(sql);
        foreach (var a in args) cmd.Parameters.Add(a);
        return cmd;
    }

    public async Task<int> ExecuteAsync(string sql, CancellationToken ct, params NpgsqlParameter[] args) =>
        await WriteAsync(async c =>
        {
            await using var cmd = Command(sql, args);
            return await cmd.ExecuteNonQueryAsync(c);
        }, ct);

    public async Task<long> CountAsync(string sql, CancellationToken ct, params NpgsqlParameter[] args)
    {
        await using var cmd = Command(sql, args);
        return (long)(await cmd.ExecuteScalarAsync(ct))!;
    }

    public async Task<List<T>> ListAsync<T>(string sql, Func<NpgsqlDataReader, T> read, CancellationToken ct, params NpgsqlParameter[] args)
    {
        await using var cmd = Command(sql, args);
        await using var r = await cmd.ExecuteReaderAsync(ct);
        var list = new List<T>();
        while (await r.ReadAsync(ct)) list.Add(read(r));
        return list;
    }
}
