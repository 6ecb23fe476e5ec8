using Npgsql;
using Parley.Cluster.Tests.Engines;
using StackExchange.Redis;

namespace Parley.Cluster.Tests;

/// <summary>The private engines the fault tests stop and start: they really go down, and come back on the same port.</summary>
public sealed class PrivateEngineTests
{
    [Fact]
    public async Task PrivateRedis_StopsAndRestartsOnTheSamePort()
    {
        await using var redis = await PrivateRedis.StartAsync();
        var options = ConfigurationOptions.Parse(redis.ConnectionString);
        options.AbortOnConnectFail = true;
        await using (var client = await ConnectionMultiplexer.ConnectAsync(options))
            await client.GetDatabase().StringSetAsync("k", "v");

        await redis.KillAsync();
        Assert.False(redis.IsRunning);
        await Assert.ThrowsAsync<RedisConnectionException>(() => ConnectionMultiplexer.ConnectAsync(options));

        await redis.RestartAsync();
        await using (var client = await ConnectionMultiplexer.ConnectAsync(options))
            Assert.True((await client.GetDatabase().StringGetAsync("k")).IsNull);   // no persistence: nothing survives
    }

    [Fact]
    public async Task PrivatePostgres_StopsAndRestartsOnTheSamePort_KeepingItsData()
    {
        await using var pg = await PrivatePostgres.CreateAsync();
        await using (var db = NpgsqlDataSource.Create(pg.ConnectionString))
            await db.CreateCommand("CREATE TABLE t (v int); INSERT INTO t VALUES (42)").ExecuteNonQueryAsync();

        await pg.StopAsync(immediate: true);
        await using (var db = NpgsqlDataSource.Create(pg.ConnectionString))
            await Assert.ThrowsAnyAsync<NpgsqlException>(() => db.CreateCommand("SELECT 1").ExecuteScalarAsync());

        await pg.StartAsync();
        await using (var db = NpgsqlDataSource.Create(pg.ConnectionString))
            Assert.Equal(42, await db.CreateCommand("SELECT v FROM t").ExecuteScalarAsync());
    }
}
