using Npgsql;

namespace Parley.Testing;

/// <summary>Drops the PostgreSQL databases tests make for themselves.</summary>
public static class TestDatabases
{
    /// <summary>
    /// <c>DROP DATABASE … WITH (FORCE)</c>, tried again for a few seconds when the server refuses it for a moment: an
    /// autovacuum worker that happens to be in the new database cannot be terminated by a non-superuser role (42501 on
    /// PostgreSQL 15), and a backend that is still going away leaves it "being accessed by other users" (55006).
    /// </summary>
    public static async Task DropAsync(string serverConnectionString, string database)
    {
        NpgsqlConnection.ClearAllPools();
        var deadline = DateTime.UtcNow.AddSeconds(10);
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await using var c = new NpgsqlConnection(serverConnectionString);
                await c.OpenAsync();
                await using var drop = new NpgsqlCommand($"DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)", c);
                await drop.ExecuteNonQueryAsync();
                return;
            }
            catch (PostgresException e) when (e.SqlState is PostgresErrorCodes.InsufficientPrivilege or PostgresErrorCodes.ObjectInUse
                                              && DateTime.UtcNow < deadline)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(50 * Math.Min(attempt, 10)));
            }
        }
    }
}
