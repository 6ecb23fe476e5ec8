using Npgsql;
using StackExchange.Redis;

namespace Parley.Engines.Tests;

/// <summary>
/// The servers that scripts/start-services provides answer with the connection strings it prints: a PostgreSQL
/// role that can log in over TCP and write, and a Redis that carries publish/subscribe (what a backplane needs).
/// </summary>
public sealed class EngineConnectionTests
{
    private const string PostgresVariable = "ConnectionStrings__Postgres";
    private const string RedisVariable = "ConnectionStrings__Redis";
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(10);

    [EngineFact(PostgresVariable)]
    public async Task Postgres_accepts_the_configured_role_and_round_trips_a_row()
    {
        var builder = new NpgsqlConnectionStringBuilder(EngineFactAttribute.Require(PostgresVariable)) { Timeout = 10 };
        await using var source = NpgsqlDataSource.Create(builder.ConnectionString);
        await using var connection = await source.OpenConnectionAsync();

        await using (var who = new NpgsqlCommand("SELECT current_user, current_database()", connection))
        await using (var reader = await who.ExecuteReaderAsync())
        {
            Assert.True(await reader.ReadAsync());
            Assert.Equal(builder.Username, reader.GetString(0));
            Assert.Equal(builder.Database, reader.GetString(1));
        }

        // A temporary table: the round trip leaves nothing behind in the shared database.
        var body = $"probe {Guid.NewGuid():N}";
        await using (var create = new NpgsqlCommand("CREATE TEMP TABLE probe (id int PRIMARY KEY, body text NOT NULL)", connection))
        {
            await create.ExecuteNonQueryAsync();
        }
        await using (var insert = new NpgsqlCommand("INSERT INTO probe (id, body) VALUES (1, $1)", connection))
        {
            insert.Parameters.AddWithValue(body);
            Assert.Equal(1, await insert.ExecuteNonQueryAsync());
        }
        await using (var select = new NpgsqlCommand("SELECT body FROM probe WHERE id = 1", connection))
        {
            Assert.Equal(body, await select.ExecuteScalarAsync());
        }
    }

    [EngineFact(RedisVariable)]
    public async Task Redis_accepts_the_configuration_and_carries_a_published_message()
    {
        var options = ConfigurationOptions.Parse(EngineFactAttribute.Require(RedisVariable));
        options.ConnectTimeout = (int)Deadline.TotalMilliseconds;
        await using var redis = await ConnectionMultiplexer.ConnectAsync(options);
        Assert.True(redis.IsConnected);

        var db = redis.GetDatabase();
        var key = $"parley:test:{Guid.NewGuid():N}";
        var value = Guid.NewGuid().ToString("N");
        Assert.True(await db.StringSetAsync(key, value, TimeSpan.FromMinutes(1)));
        Assert.Equal(value, (string?)await db.StringGetAsync(key));
        await db.KeyDeleteAsync(key);

        // Publish/subscribe on a channel of this run's own.
        var channel = RedisChannel.Literal($"parley:test:{Guid.NewGuid():N}");
        var subscriber = redis.GetSubscriber();
        var queue = await subscriber.SubscribeAsync(channel);
        var receivers = await subscriber.PublishAsync(channel, value);
        Assert.Equal(1, receivers);
        var message = await queue.ReadAsync().AsTask().WaitAsync(Deadline);
        Assert.Equal(value, (string?)message.Message);
        await queue.UnsubscribeAsync();
    }
}
