using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using Npgsql;

namespace Parley.Bench;

public sealed record ClusterSettings(int Nodes, int Sessions, int Active, double Duration, int Terminations, int Breakdown, int Sources);

/// <summary>One leg of a cross-node termination, p50 and p99 over the samples that showed it.</summary>
public sealed record Leg(string Name, Percentiles Time);

public sealed record ClusterResult(
    int Nodes, int SessionsRequested, int SessionsConnected, int Refused, double ConnectSeconds, double StartSeconds,
    int ActiveSessions, double DurationSeconds, long RoundTrips, Percentiles RoundTrip, double CpuCores,
    Percentiles BotMessage, Percentiles BotMessageAnswer, Percentiles Termination, Percentiles TerminationAnswer,
    int NotifiedWrong, Percentiles PgSelect, Percentiles PgCommit, Percentiles RedisHop, double? PgTransactionsPerTermination,
    double? PgActiveMsPerTermination, List<Leg> Legs, string? RedisSequence, double RedisSequenceShare,
    double? PgTransactionsPerBotMessage, double? PgActiveMsPerBotMessage)
{
    /// <summary>Each round trip is two messages: the guest's and the bot's reply.</summary>
    public double MessagesPerSecond => DurationSeconds == 0 ? 0 : 2 * RoundTrips / DurationSeconds;
}

/// <summary>
/// Parley on several nodes: a fresh PostgreSQL database and the Redis backplane, N server processes sharing one Data
/// Protection key folder. Guests connect to every node in turn; the bot's calls go to another node than the guest's, so
/// every push and every termination crosses nodes. See BENCHMARKS.md, "Several nodes".
/// </summary>
public static class Cluster
{
    static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);
    static double Ms(long fromTicks, long toTicks) => (toTicks - fromTicks) * 1000.0 / Stopwatch.Frequency;

    public static async Task<ClusterResult> RunAsync(ClusterSettings s)
    {
        var postgres = Environment.GetEnvironmentVariable("ConnectionStrings__Postgres");
        var redis = Environment.GetEnvironmentVariable("ConnectionStrings__Redis");
        if (string.IsNullOrEmpty(postgres) || string.IsNullOrEmpty(redis))
            throw new InvalidOperationException("--nodes needs PostgreSQL and Redis: run it through bench/run, which starts them " +
                                                "(scripts/start-services), or export ConnectionStrings__Postgres and ConnectionStrings__Redis.");

        await using var database = await BenchDatabase.CreateAsync(postgres);
        var keys = Path.Combine(Path.GetTempPath(), "parley-bench-keys-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(keys);
        var prefix = $"{database.Name}:";
        var nodes = Enumerable.Range(0, s.Nodes).Select(i => new ParleyTarget($"node-{(char)('a' + i)}", new Dictionary<string, string>
        {
            ["Parley__Storage__Provider"] = "Postgres",
            // Each node's pool at Parley's default (20): two nodes stay within PostgreSQL's default max_connections (100).
            ["ConnectionStrings__Postgres"] = database.ConnectionString,
            ["Parley__Backplane__Provider"] = "Redis",
            ["ConnectionStrings__Redis"] = redis,
            ["Parley__Node__Id"] = $"bench-{(char)('a' + i)}",
            // A cluster of its own on a Redis others may share (tests, other runs): their nodes are not waited for.
            ["Parley__Backplane__Prefix"] = prefix,
            // One key ring for every node: a secret one node encrypts in the store, another decrypts.
            ["Parley__DataProtection__KeysPath"] = keys,
        })).ToList();
        var connected = new List<BenchConnection>();
        try
        {
            // Every node at once, as a rolling deployment would not but a fresh cluster does: migrations must take turns.
            var startClock = Stopwatch.StartNew();
            await Task.WhenAll(nodes.Select(n => n.StartAsync()));
            var startSeconds = startClock.Elapsed.TotalSeconds;
            Console.WriteLine($"   {s.Nodes} nodes on PostgreSQL ({database.Name}) and Redis, up in {startSeconds:0.0} s");
            await Task.Delay(1000);

            // 1. Sessions, each on node i mod N. Enough on node A for the timed terminations.
            var sessions = Math.Max(s.Sessions, s.Active + s.Nodes * (s.Terminations + s.Breakdown + 1));
            var sources = s.Sources > 0 ? s.Sources : Math.Max(1, (sessions + 9_999) / 10_000);
            var guests = new BenchConnection?[sessions];
            var refused = 0;
            var connectClock = Stopwatch.StartNew();
            await Parallel.ForEachAsync(Enumerable.Range(0, sessions), new ParallelOptions { MaxDegreeOfParallelism = 64 }, async (i, _) =>
            {
                var g = await nodes[i % s.Nodes].TryConnectGuestAsync(i % sources, Timeout);
                if (g is null) { Interlocked.Increment(ref refused); return; }
                g.Node = i % s.Nodes;
                guests[i] = g;
            });
            var connectSeconds = connectClock.Elapsed.TotalSeconds;
            connected.AddRange(guests.Where(g => g is not null).Select(g => g!));
            Console.WriteLine($"   connected {connected.Count}/{sessions} in {connectSeconds:0.0} s ({refused} refused), " +
                              string.Join(", ", nodes.Select((n, i) => $"{connected.Count(g => g.Node == i)} on {n.Name}")));

            var active = connected.Take(Math.Min(s.Active, connected.Count)).ToList();
            var onA = connected.Skip(active.Count).Where(g => g.Node == 0).Take(s.Terminations + s.Breakdown).ToList();
            var timed = onA.Take(s.Terminations).ToList();
            var traced = onA.Skip(s.Terminations).ToList();
            await nodes[0].PrepareAsync([.. active, .. onA], needBotCommunication: true);
            await Task.Delay(1000);

            // 2. Steady load, guests on every node, each bot reply through the next node.
            var rtts = new List<double>();
            var cpuBefore = nodes.Sum(n => n.CpuSeconds());
            var loadSeconds = await ClosedLoop.RunAsync(active, g => nodes[(g.Node + 1) % s.Nodes], s.Duration, Timeout, rtts);
            var cpuCores = (nodes.Sum(n => n.CpuSeconds()) - cpuBefore) / loadSeconds;
            var roundTrip = Percentiles.Of(rtts);
            Console.WriteLine($"   {rtts.Count / loadSeconds * 2:0} messages/s, round trip p50 {roundTrip.P50:0.00} ms p99 {roundTrip.P99:0.00} ms, " +
                              $"{cpuCores:0.00} cores (all nodes)");

            var meter = new PostgresMeter(database);

            // 3. Cross-node bot message: API call on B → the message on the guest socket A holds. One at a time.
            var b = nodes[1 % s.Nodes];
            Percentiles botMessage = null!, botAnswer = null!;
            var perMessage = await meter.PerOperationAsync(async () =>
            {
                (botMessage, botAnswer) = await OneAtATime.TimeAsync(onA, g => b.BotReplyAsync(g, "cross-node"),
                    f => f.Direction == "Outbound" && f.TracingId is null, Timeout);
                return onA.Count;
            });
            Console.WriteLine($"   cross-node bot message p50 {botMessage.P50:0.00} ms p99 {botMessage.P99:0.00} ms (HTTP answer p50 {botAnswer.P50:0.00} ms); " +
                              $"PostgreSQL per message: {F(perMessage.Transactions, "0.0")} transactions, {F(perMessage.ActiveMs)} ms executing");

            // 4. The engines alone, from here: a PostgreSQL round trip and durable commit, a Redis publish → subscriber hop.
            var probes = Math.Clamp(s.Terminations, 50, 500);
            var (pgSelect, pgCommit) = await database.ProbeAsync(probes);
            var redisHop = await RedisHopAsync(redis, probes);
            Console.WriteLine($"   engines alone: PostgreSQL SELECT 1 p50 {pgSelect.P50:0.00} ms, INSERT commit p50 {pgCommit.P50:0.00} ms p99 {pgCommit.P99:0.00} ms; " +
                              $"Redis publish → subscriber p50 {redisHop.P50:0.00} ms p99 {redisHop.P99:0.00} ms");

            // 5. Cross-node termination: API call on B → Disconnect on the guest socket A holds; PostgreSQL's own counters around it.
            Percentiles termination = null!, answer = null!;
            var notifiedWrong = 0;
            var (transactions, activeMs) = await meter.PerOperationAsync(async () =>
            {
                (termination, answer) = await OneAtATime.TimeAsync(timed, async g =>
                {
                    using var response = await b.TerminateAsync(g);
                    await b.EnsureSuccessAsync(response);
                    // The termination counts the socket on the other node: the guarantee, not only the timing.
                    if (!response.Headers.TryGetValues("Parley-Sockets-Notified", out var n) || n.FirstOrDefault() != "1") notifiedWrong++;
                }, f => f.IsDisconnect, Timeout);
                return timed.Count;
            });
            Console.WriteLine($"   cross-node termination p50 {termination.P50:0.00} ms p99 {termination.P99:0.00} ms over {termination.Count} " +
                              $"(HTTP answer p50 {answer.P50:0.00} ms p99 {answer.P99:0.00} ms), {notifiedWrong} answers not counting the remote socket; " +
                              $"PostgreSQL per termination: {F(transactions, "0.0")} transactions, {F(activeMs)} ms executing");

            // 6. Where the time goes: the same terminations with Redis's MONITOR on, each leg from the bench's and Redis's clocks.
            var (legs, sequence, share) = await TraceAsync(nodes, traced, redis, prefix);
            foreach (var leg in legs)
                Console.WriteLine($"   {leg.Name}: p50 {leg.Time.P50:0.00} ms p99 {leg.Time.P99:0.00} ms ({leg.Time.Count})");
            if (sequence is not null) Console.WriteLine($"   Redis commands per termination ({share:P0} of them): {sequence}");

            return new ClusterResult(s.Nodes, sessions, connected.Count, refused, connectSeconds, startSeconds, active.Count, loadSeconds,
                rtts.Count, roundTrip, cpuCores, botMessage, botAnswer, termination, answer, notifiedWrong, pgSelect, pgCommit, redisHop,
                transactions, activeMs, legs, sequence, share, perMessage.Transactions, perMessage.ActiveMs);
        }
        catch (Exception)
        {
            // What the nodes said last: a failed call's cause is usually in a node's log.
            foreach (var n in nodes.Where(n => n.Process is not null))
                Console.Error.WriteLine($"--- last output of {n.Name}:{Environment.NewLine}{n.LastOutput()}");
            throw;
        }
        finally
        {
            await Parallel.ForEachAsync(connected, new ParallelOptions { MaxDegreeOfParallelism = 64 }, async (g, _) => await g.DisposeAsync());
            foreach (var n in nodes) await n.DisposeAsync();
            try { Directory.Delete(keys, recursive: true); } catch (IOException) { }
            // The run's keys in Redis (the member set, the token throttle's), as its database is dropped.
            try { await RedisWire.DeleteByPrefixAsync(redis, prefix); }
            catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or InvalidOperationException)
            {
                Console.Error.WriteLine($"could not delete the run's Redis keys ({prefix}*): {e.Message}");
            }
        }
    }

    static string F(double? v, string format = "0.00") => v is { } x ? x.ToString(format, CultureInfo.InvariantCulture) : "—";

    /// <summary>
    /// Terminations on B of guests on A with Redis's MONITOR on. Redis stamps each command with its own clock (the same
    /// machine's), so a termination reads: the call leaves the bench (t0) → B's first Redis command (the end is
    /// committed in PostgreSQL by then) → A's first command after it (A has the delivery and has written the frame) →
    /// the Disconnect reaches the guest → the HTTP answer (B has A's count, and has stored it).
    /// </summary>
    static async Task<(List<Leg> Legs, string? Sequence, double Share)> TraceAsync(List<ParleyTarget> nodes, List<BenchConnection> guests, string redis,
        string prefix)
    {
        if (guests.Count == 0 || nodes.Count < 2) return ([], null, 0);
        var (_, redisPort, _, _) = RedisWire.Parse(redis);
        var portNode = new Dictionary<int, int>();
        for (var i = 0; i < nodes.Count; i++)
            foreach (var port in LocalPortsTo(nodes[i].Process.Id, redisPort)) portNode[port] = i;
        var samples = new List<(long T0, long B, long Frame, long Answer)>();   // µs since the epoch
        await using (var monitor = await RedisMonitor.StartAsync(redis))
        {
            await Task.Delay(200);
            foreach (var g in guests)
            {
                var wall = DateTime.UtcNow;
                var start = Stopwatch.GetTimestamp();
                using var response = await nodes[1].TerminateAsync(g);
                var answeredAt = Stopwatch.GetTimestamp();
                await nodes[1].EnsureSuccessAsync(response);
                var frame = await g.NextAsync(f => f.IsDisconnect, Timeout);
                var t0 = (wall - DateTime.UnixEpoch).Ticks / 10;
                samples.Add((t0, 0, t0 + (long)(Ms(start, frame.ReceivedTicks) * 1000), t0 + (long)(Ms(start, answeredAt) * 1000)));
            }
            await Task.Delay(200);
            var seen = monitor.Seen();
            var first = new List<double>();       // call → B's first command
            var bWork = new List<double>();       // B's first command → the publish A answers
            var toFrame = new List<double>();     // that publish → the Disconnect read on A's guest socket
            var toReply = new List<double>();     // that publish → A's answer in Redis
            var replyToAnswer = new List<double>();
            var frameAt = new List<double>();
            var answer = new List<double>();
            var sequences = new Dictionary<string, int>();
            string Name(MonitoredCommand c) =>
                $"{nodes[portNode[c.ClientPort]].Name} {c.Command}{(c.FirstArgument.StartsWith(prefix, StringComparison.Ordinal) ? " " + c.FirstArgument[prefix.Length..] : "")}";
            static double Between(long from, long to) => (to - from) / 1000.0;
            foreach (var (t0, _, frame, answered) in samples)
            {
                var window = seen.Where(c => c.UnixMicros >= t0 && c.UnixMicros <= answered && portNode.ContainsKey(c.ClientPort)).ToList();
                var key = string.Join(", ", window.Select(Name));
                sequences[key] = sequences.GetValueOrDefault(key) + 1;
                frameAt.Add(Between(t0, frame));
                answer.Add(Between(t0, answered));
                var fromB = window.FindIndex(c => portNode[c.ClientPort] == 1);
                if (fromB < 0) continue;
                first.Add(Between(t0, window[fromB].UnixMicros));
                var fromA = window.FindIndex(fromB, c => portNode[c.ClientPort] == 0);
                if (fromA < 0) continue;
                var trigger = window.FindLastIndex(fromA, c => portNode[c.ClientPort] == 1);
                bWork.Add(Between(window[fromB].UnixMicros, window[trigger].UnixMicros));
                toFrame.Add(Between(window[trigger].UnixMicros, frame));
                toReply.Add(Between(window[trigger].UnixMicros, window[fromA].UnixMicros));
                replyToAnswer.Add(Between(window[fromA].UnixMicros, answered));
            }
            var common = sequences.OrderByDescending(p => p.Value).First();
            return ([
                new Leg("call on B → B's first Redis command (HTTP in, token, load, PostgreSQL commit of the end)", Percentiles.Of(first)),
                new Leg("B's first command → B's publish that A answers", Percentiles.Of(bWork)),
                new Leg("that publish → Disconnect read on A's guest socket (Redis → A, A writes the frame, loopback, the bench reads)", Percentiles.Of(toFrame)),
                new Leg("that publish → A's answer in Redis (… and A's write confirmed, A publishes the count)", Percentiles.Of(toReply)),
                new Leg("A's answer → HTTP answer read by the bench (Redis → B, PostgreSQL commit of the count, HTTP out)", Percentiles.Of(replyToAnswer)),
                new Leg("call on B → Disconnect on A's guest socket, with MONITOR on", Percentiles.Of(frameAt)),
                new Leg("call on B → HTTP answer, with MONITOR on", Percentiles.Of(answer)),
            ], common.Key.Length == 0 ? "(none)" : common.Key, common.Value / (double)samples.Count);
        }
    }

    /// <summary>The local ports of a process's TCP connections to <paramref name="remotePort"/> (its sockets' inodes in /proc/net/tcp).</summary>
    public static HashSet<int> LocalPortsTo(int pid, int remotePort)
    {
        var inodes = new HashSet<string>();
        foreach (var fd in Directory.EnumerateFiles($"/proc/{pid}/fd"))
            try
            {
                if (new FileInfo(fd).LinkTarget is { } target && target.StartsWith("socket:[", StringComparison.Ordinal)) inodes.Add(target[8..^1]);
            }
            catch (IOException) { }
        var ports = new HashSet<int>();
        foreach (var table in new[] { "/proc/net/tcp", "/proc/net/tcp6" })
        {
            if (!File.Exists(table)) continue;
            foreach (var line in File.ReadLines(table).Skip(1))
            {
                var f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (f.Length < 10 || !inodes.Contains(f[9])) continue;
                var remote = int.Parse(f[2][(f[2].LastIndexOf(':') + 1)..], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
                if (remote == remotePort) ports.Add(int.Parse(f[1][(f[1].LastIndexOf(':') + 1)..], NumberStyles.HexNumber, CultureInfo.InvariantCulture));
            }
        }
        return ports;
    }

    /// <summary>Redis alone: PUBLISH on one connection → the message read on a subscribed one.</summary>
    public static async Task<Percentiles> RedisHopAsync(string configuration, int count)
    {
        await using var subscriber = await RedisWire.ConnectAsync(configuration);
        await using var publisher = await RedisWire.ConnectAsync(configuration);
        var channel = "parley-bench-probe-" + Guid.NewGuid().ToString("N");
        await subscriber.SendAsync("SUBSCRIBE", channel);
        await subscriber.ReadAsync();
        var hops = new List<double>();
        for (var i = 0; i < count; i++)
        {
            var start = Stopwatch.GetTimestamp();
            await publisher.SendAsync("PUBLISH", channel, i.ToString(CultureInfo.InvariantCulture));
            var message = (object?[])(await subscriber.ReadAsync())!;
            hops.Add(Ms(start, Stopwatch.GetTimestamp()));
            await publisher.ReadAsync();
            if ((string?)message[2] != i.ToString(CultureInfo.InvariantCulture)) throw new InvalidDataException("Redis probe: out of order");
        }
        return Percentiles.Of(hops);
    }
}

/// <summary>
/// PostgreSQL's own counters for the run's database over one phase, per operation. A backend reports its counters a
/// second or more after its work (later under load), hence the waits around each phase. What the idle nodes do anyway
/// (inactivity sweeps, outbox polls: a few reads a second) is included; over a phase of a thousand operations it adds
/// well under 0.1 transaction per operation. Subtracting an idle rate measured just before proved unreliable: the
/// previous phase's counters arrived late and made the idle rate larger than the phase.
/// </summary>
public sealed class PostgresMeter(BenchDatabase database)
{
    static readonly TimeSpan Flush = TimeSpan.FromSeconds(3);

    /// <summary>Runs <paramref name="phase"/> (which answers how many operations it did): transactions and ms executing per operation.</summary>
    public async Task<(double? Transactions, double? ActiveMs)> PerOperationAsync(Func<Task<int>> phase)
    {
        await Task.Delay(Flush);
        var before = await database.StatsAsync();
        var count = await phase();
        await Task.Delay(Flush);
        var after = await database.StatsAsync();
        if (count == 0 || before is null || after is null) return (null, null);
        return ((after.Commits - before.Commits) / (double)count, (after.ActiveMs - before.ActiveMs) / count);
    }
}

/// <summary>A database of its own for one run, created by the <c>parley</c> role (it has CREATEDB) and dropped after.</summary>
public sealed class BenchDatabase : IAsyncDisposable
{
    readonly string _admin;
    public string Name { get; }
    public string ConnectionString { get; }

    BenchDatabase(string admin, string name)
    {
        _admin = admin;
        Name = name;
        ConnectionString = new NpgsqlConnectionStringBuilder(admin) { Database = name }.ConnectionString;
    }

    public static async Task<BenchDatabase> CreateAsync(string admin)
    {
        var name = $"parley_bench_{DateTime.UtcNow:yyyyMMdd_HHmmss}_{Guid.NewGuid().ToString("N")[..6]}";
        await using var connection = new NpgsqlConnection(admin);
        await connection.OpenAsync();
        await using var create = new NpgsqlCommand($"CREATE DATABASE {name}", connection);
        await create.ExecuteNonQueryAsync();
        return new BenchDatabase(admin, name);
    }

    /// <summary>From the bench: a round trip (SELECT 1) and a durable one-row commit, the floor under each of Parley's commits.</summary>
    public async Task<(Percentiles Select, Percentiles Commit)> ProbeAsync(int count)
    {
        await using var connection = new NpgsqlConnection(ConnectionString);
        await connection.OpenAsync();
        await using (var create = new NpgsqlCommand("CREATE TABLE bench_probe (id bigserial PRIMARY KEY, payload text NOT NULL)", connection))
            await create.ExecuteNonQueryAsync();
        await using var select = new NpgsqlCommand("SELECT 1", connection);
        await using var insert = new NpgsqlCommand("INSERT INTO bench_probe (payload) VALUES ($1)", connection) { Parameters = { new() { Value = "probe" } } };
        await select.PrepareAsync();
        await insert.PrepareAsync();
        var selects = new List<double>();
        var commits = new List<double>();
        for (var i = 0; i < count; i++)
        {
            var start = Stopwatch.GetTimestamp();
            await select.ExecuteScalarAsync();
            var mid = Stopwatch.GetTimestamp();
            await insert.ExecuteNonQueryAsync();   // autocommit: its own transaction, flushed to the WAL before the answer
            var end = Stopwatch.GetTimestamp();
            selects.Add((mid - start) * 1000.0 / Stopwatch.Frequency);
            commits.Add((end - mid) * 1000.0 / Stopwatch.Frequency);
        }
        return (Percentiles.Of(selects), Percentiles.Of(commits));
    }

    public sealed record Stats(long Commits, double ActiveMs);

    /// <summary>The database's committed transactions and time spent executing statements (pg_stat_database), or null if unreadable.</summary>
    public async Task<Stats?> StatsAsync()
    {
        try
        {
            await using var connection = new NpgsqlConnection(ConnectionString);
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand(
                "SELECT xact_commit, active_time FROM pg_stat_database WHERE datname = current_database()", connection);
            await using var reader = await command.ExecuteReaderAsync();
            if (!await reader.ReadAsync()) return null;
            return new Stats(reader.GetInt64(0), reader.GetDouble(1));
        }
        catch (NpgsqlException) { return null; }
    }

    public async ValueTask DisposeAsync()
    {
        NpgsqlConnection.ClearAllPools();
        try
        {
            await using var connection = new NpgsqlConnection(_admin);
            await connection.OpenAsync();
            await using var drop = new NpgsqlCommand($"DROP DATABASE IF EXISTS {Name} WITH (FORCE)", connection);
            await drop.ExecuteNonQueryAsync();
        }
        catch (NpgsqlException e) { Console.Error.WriteLine($"could not drop the bench database {Name}: {e.Message}"); }
    }
}
