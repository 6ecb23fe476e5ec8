using Npgsql;
using Parley.Cluster.Tests.Engines;
using StackExchange.Redis;

namespace Parley.Cluster.Tests;

/// <summary>The private engines the fault tests stop and start: they really go down, and come back on the same port.</summary>
[Collection(FaultCollection.Name)]
public sealed class PrivateEngineTests(PrivateEngines engines)
{
    [EngineFaultFact]
    public async Task PrivateRedis_GoesDown_AndComesBackOnTheSamePort()
    {
        await engines.ClusterOptionsAsync();
        var redis = engines.Redis;
        var options = ConfigurationOptions.Parse(redis.ConnectionString);
        options.AbortOnConnectFail = true;
        options.ConnectTimeout = 2000;
        await using (var client = await ConnectionMultiplexer.ConnectAsync(options))
            await client.GetDatabase().StringSetAsync("k", "v");

        await redis.KillAsync();
        Assert.False(redis.IsRunning);
        await Assert.ThrowsAsync<RedisConnectionException>(() => ConnectionMultiplexer.ConnectAsync(options));

        await redis.StartServerAsync();
        await using (var client = await ConnectionMultiplexer.ConnectAsync(options))
            Assert.True((await client.GetDatabase().StringGetAsync("k")).IsNull);   // no persistence: nothing survives
    }

    [EngineFaultFact]
    public async Task PrivatePostgres_GoesDown_AndComesBackOnTheSamePort_WithItsData()
    {
        await engines.ClusterOptionsAsync();
        var pg = engines.Postgres;
        var table = $"t_{Guid.NewGuid():N}";
        await using (var db = NpgsqlDataSource.Create(pg.ConnectionString))
            await db.CreateCommand($"CREATE TABLE {table} (v int); INSERT INTO {table} VALUES (42)").ExecuteNonQueryAsync();

        await pg.StopAsync(immediate: true);
        await using (var db = NpgsqlDataSource.Create(pg.ConnectionString))
            await Assert.ThrowsAnyAsync<NpgsqlException>(() => db.CreateCommand("SELECT 1").ExecuteScalarAsync());

        await pg.StartAsync();
        await using (var db = NpgsqlDataSource.Create(pg.ConnectionString))
        {
            Assert.Equal(42, await db.CreateCommand($"SELECT v FROM {table}").ExecuteScalarAsync());
            await db.CreateCommand($"DROP TABLE {table}").ExecuteNonQueryAsync();
        }
    }
}
