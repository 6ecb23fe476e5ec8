using SQLitePCL;

namespace Parley.Storage.Sqlite;

/// <summary>
/// One of the writer's hot statements on SQLite's own API (through the writer connection's handle, so inside its open
/// transaction): compiled once, its values bound by position, stepped, then reset. Per execution it makes no command,
/// parameter, data reader or boxed value, as <see cref="SqliteCommand"/> does (BENCHMARKS.md, round two, tenth run).
/// Only the writer loop runs these, one at a time; every parameter is bound before each run.
/// </summary>
sealed class WriterStatement : IDisposable
{
    readonly sqlite3 _db;
    readonly sqlite3_stmt _stmt;

    public WriterStatement(SqliteConnection connection, string sql)
    {
        _db = connection.Handle!;
        var rc = raw.sqlite3_prepare_v2(_db, sql, out _stmt);
        if (rc != raw.SQLITE_OK) SqliteException.ThrowExceptionForRC(rc, _db);
    }

    public WriterStatement Bind(int index, string? value)
    {
        Check(value is null ? raw.sqlite3_bind_null(_stmt, index) : raw.sqlite3_bind_text16(_stmt, index, value));
        return this;
    }

    public WriterStatement Bind(int index, long? value)
    {
        Check(value is { } v ? raw.sqlite3_bind_int64(_stmt, index, v) : raw.sqlite3_bind_null(_stmt, index));
        return this;
    }

    /// <summary>Runs the statement to its end; the rows it changed.</summary>
    public int Execute()
    {
        try
        {
            int rc;
            while ((rc = raw.sqlite3_step(_stmt)) == raw.SQLITE_ROW) { }
            if (rc != raw.SQLITE_DONE) SqliteException.ThrowExceptionForRC(rc, _db);
            return raw.sqlite3_changes(_db);
        }
        finally { raw.sqlite3_reset(_stmt); }
    }

    /// <summary>Runs the statement; its first row's first column, or null when it returned no row (or a null).</summary>
    public long? ExecuteInt64()
    {
        try
        {
            var rc = raw.sqlite3_step(_stmt);
            if (rc == raw.SQLITE_DONE) return null;
            if (rc != raw.SQLITE_ROW) SqliteException.ThrowExceptionForRC(rc, _db);
            long? value = raw.sqlite3_column_type(_stmt, 0) == raw.SQLITE_NULL ? null : raw.sqlite3_column_int64(_stmt, 0);
            // A RETURNING statement writes as it steps: run it to its end before the reset.
            while ((rc = raw.sqlite3_step(_stmt)) == raw.SQLITE_ROW) { }
            if (rc != raw.SQLITE_DONE) SqliteException.ThrowExceptionForRC(rc, _db);
            return value;
        }
        finally { raw.sqlite3_reset(_stmt); }
    }

    void Check(int rc)
    {
        if (rc != raw.SQLITE_OK) SqliteException.ThrowExceptionForRC(rc, _db);
    }

    public void Dispose() => _stmt.Dispose();
}
