using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Parley.Bench;

// Load tool: opens N guest sessions on each target over its real sockets, drives guest messages with bot replies,
// measures Parley's termination latency and bulk termination, and reports Parley's figures as ratios to baselines
// measured in the same run. See BENCHMARKS.md.
var targetsOption = new Option<string>("--targets") { Description = "comma-separated: parley,raw,signalr,node", DefaultValueFactory = _ => "parley,raw,signalr,node" };
var sessionsOption = new Option<int>("--sessions") { Description = "concurrent guest sessions per target", DefaultValueFactory = _ => 2000 };
var activeOption = new Option<int>("--active") { Description = "sessions in the steady load (closed loop)", DefaultValueFactory = _ => 100 };
var durationOption = new Option<double>("--duration") { Description = "seconds of steady load", DefaultValueFactory = _ => 10 };
var terminationsOption = new Option<int>("--terminations") { Description = "single terminations timed (Parley)", DefaultValueFactory = _ => 200 };
var bulkOption = new Option<int>("--bulk") { Description = "sessions ended at once (Parley)", DefaultValueFactory = _ => 1000 };
var sourcesOption = new Option<int>("--sources") { Description = "loopback source addresses to spread client sockets over (0: one per 10k sessions)", DefaultValueFactory = _ => 0 };
var scalingOption = new Option<string?>("--scaling") { Description = "session counts for the scaling table, e.g. 1000,5000,10000,19000" };
var jsonOption = new Option<string?>("--json") { Description = "write the report as JSON to this file" };
var smokeOption = new Option<bool>("--smoke") { Description = "a small, fast run (CI): 300 sessions, 3 s of load" };
var verboseOption = new Option<bool>("--verbose") { Description = "show the servers' error output" };

var root = new RootCommand("Parley benchmark: sessions, throughput, termination latency and memory, as ratios to baselines")
{
    targetsOption, sessionsOption, activeOption, durationOption, terminationsOption, bulkOption, sourcesOption, scalingOption, jsonOption,
    smokeOption, verboseOption,
};
root.SetAction(async (parse, ct) =>
{
    var smoke = parse.GetValue(smokeOption);
    Target.Verbose = parse.GetValue(verboseOption);
    var settings = new Settings(
        parse.GetValue(targetsOption)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries),
        smoke ? 300 : parse.GetValue(sessionsOption),
        smoke ? 50 : parse.GetValue(activeOption),
        smoke ? 3 : parse.GetValue(durationOption),
        smoke ? 50 : parse.GetValue(terminationsOption),
        smoke ? 100 : parse.GetValue(bulkOption),
        parse.GetValue(sourcesOption));
    var report = new Report(Machine.Describe(), settings);

    Console.WriteLine(report.Machine);
    foreach (var name in settings.Targets)
    {
        Console.WriteLine($"-- {name}: {settings.Sessions} sessions, {settings.Active} active for {settings.Duration} s");
        report.Results.Add(await Runner.RunAsync(name, settings));
    }
    if (parse.GetValue(scalingOption) is { } scaling)
        foreach (var n in scaling.Split(',').Select(int.Parse))
            foreach (var name in settings.Targets)
            {
                Console.WriteLine($"-- scaling {name}: {n} sessions");
                var at = settings with { Sessions = n, Duration = Math.Min(settings.Duration, 5), Terminations = Math.Min(settings.Terminations, 100), Bulk = 0 };
                report.Scaling.Add(await Runner.RunAsync(name, at));
            }

    Console.WriteLine();
    Console.WriteLine(report.Table());
    if (parse.GetValue(jsonOption) is { } file)
    {
        await File.WriteAllTextAsync(file, report.Json().ToJsonString(new JsonSerializerOptions { WriteIndented = true }), ct);
        Console.WriteLine($"JSON report: {file}");
    }
    return 0;
});
return await root.Parse(args).InvokeAsync();

namespace Parley.Bench
{
    public sealed record Settings(string[] Targets, int Sessions, int Active, double Duration, int Terminations, int Bulk, int Sources);

    public sealed record Percentiles(double P50, double P95, double P99, double Max, int Count)
    {
        public static Percentiles Of(List<double> values)
        {
            if (values.Count == 0) return new(0, 0, 0, 0, 0);
            values.Sort();
            double At(double p) => values[Math.Min(values.Count - 1, (int)Math.Ceiling(p * values.Count) - 1)];
            return new(At(0.50), At(0.95), At(0.99), values[^1], values.Count);
        }
    }

    public sealed record Result(
        string Target, int SessionsRequested, int SessionsConnected, int Refused, double ConnectSeconds, long RssBaseKiB, long RssIdleKiB,
        int ActiveSessions, double DurationSeconds, long RoundTrips, Percentiles RoundTrip, double CpuCores,
        Percentiles? Termination, Percentiles? TerminationAnswer, int BulkCount, double? BulkSeconds)
    {
        public double RssKiBPerSession => SessionsConnected == 0 ? 0 : (RssIdleKiB - RssBaseKiB) / (double)SessionsConnected;
        /// <summary>Each round trip is two messages: the guest's and the bot's reply.</summary>
        public double MessagesPerSecond => DurationSeconds == 0 ? 0 : 2 * RoundTrips / DurationSeconds;
    }

    public static class Runner
    {
        static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);
        static double Ms(long fromTicks, long toTicks) => (toTicks - fromTicks) * 1000.0 / Stopwatch.Frequency;

        public static async Task<Result> RunAsync(string name, Settings s)
        {
            await using var target = Target.Create(name);
            await target.StartAsync();
            await Task.Delay(1000);
            var rssBase = target.RssKiB();

            // 1. N sessions, spread over loopback sources; refusals are counted, not fatal.
            var sources = s.Sources > 0 ? s.Sources : Math.Max(1, (s.Sessions + 9_999) / 10_000);
            var guests = new BenchConnection?[s.Sessions];
            var refused = 0;
            var connectClock = Stopwatch.StartNew();
            await Parallel.ForEachAsync(Enumerable.Range(0, s.Sessions), new ParallelOptions { MaxDegreeOfParallelism = 64 }, async (i, _) =>
            {
                var g = target.NewConnection();
                try
                {
                    await g.ConnectAsync(target.SocketUri, i % sources, CancellationToken.None);
                    await g.ConfigureAsync(target.DeploymentId, Timeout);
                    guests[i] = g;
                }
                catch (Exception)
                {
                    Interlocked.Increment(ref refused);
                    await g.DisposeAsync();
                }
            });
            var connectSeconds = connectClock.Elapsed.TotalSeconds;
            var connected = guests.Where(g => g is not null).Select(g => g!).ToList();
            Console.WriteLine($"   connected {connected.Count}/{s.Sessions} in {connectSeconds:0.0} s ({refused} refused)");
            await Task.Delay(2000);
            var rssIdle = target.RssKiB();

            try
            {
                // 2. Steady load: each active guest sends, waits for its echo, the bot replies, the guest waits for it.
                var active = connected.Take(Math.Min(s.Active, connected.Count)).ToList();
                await target.PrepareAsync(active, needBotCommunication: true);
                var rtts = new List<double>();
                var cpuBefore = target.CpuSeconds();
                var loadClock = Stopwatch.StartNew();
                var deadline = TimeSpan.FromSeconds(s.Duration);
                await Task.WhenAll(active.Select(async g =>
                {
                    var local = new List<double>();
                    var n = 0;
                    while (loadClock.Elapsed < deadline)
                    {
                        var start = Stopwatch.GetTimestamp();
                        var t = await g.SendTextAsync($"guest message {n}");
                        await g.NextAsync(f => f.TracingId == t, Timeout);
                        await target.BotReplyAsync(g, $"bot reply {n++}");
                        var reply = await g.NextAsync(f => f.Direction == "Outbound" && f.TracingId is null, Timeout);
                        local.Add(Ms(start, reply.ReceivedTicks));
                    }
                    lock (rtts) rtts.AddRange(local);
                }));
                var loadSeconds = loadClock.Elapsed.TotalSeconds;
                var cpuCores = (target.CpuSeconds() - cpuBefore) / loadSeconds;
                var roundTrip = Percentiles.Of(rtts);
                Console.WriteLine($"   {rtts.Count / loadSeconds * 2:0} messages/s, round trip p50 {roundTrip.P50:0.00} ms p99 {roundTrip.P99:0.00} ms, {cpuCores:0.00} cores");

                Percentiles? termination = null, answer = null;
                double? bulkSeconds = null;
                var bulkCount = 0;
                if (target.CanTerminate)
                {
                    // 3. Termination latency: Platform API call start → the guest's socket has the Disconnect frame.
                    var singles = connected.Skip(active.Count).Take(s.Terminations).ToList();
                    await target.PrepareAsync(singles, needBotCommunication: false);
                    var told = new List<double>();
                    var answered = new List<double>();
                    foreach (var g in singles)
                    {
                        var start = Stopwatch.GetTimestamp();
                        using var response = await target.TerminateAsync(g);
                        var answeredAt = Stopwatch.GetTimestamp();
                        response.EnsureSuccessStatusCode();
                        var frame = await g.NextAsync(f => f.IsDisconnect, Timeout);
                        told.Add(Ms(start, frame.ReceivedTicks));
                        answered.Add(Ms(start, answeredAt));
                    }
                    termination = Percentiles.Of(told);
                    answer = Percentiles.Of(answered);
                    Console.WriteLine($"   termination p50 {termination.P50:0.00} ms p99 {termination.P99:0.00} ms (HTTP answer p50 {answer.P50:0.00} ms)");

                    // 4. Bulk: K conversations ended at once; wall time until every socket has its Disconnect.
                    var bulk = connected.Skip(active.Count + singles.Count).Take(s.Bulk).ToList();
                    if (bulk.Count > 0)
                    {
                        await target.PrepareAsync(bulk, needBotCommunication: false);
                        var bulkClock = Stopwatch.StartNew();
                        await Parallel.ForEachAsync(bulk, new ParallelOptions { MaxDegreeOfParallelism = 64 }, async (g, _) =>
                        {
                            using var response = await target.TerminateAsync(g);
                            response.EnsureSuccessStatusCode();
                            await g.NextAsync(f => f.IsDisconnect, Timeout);
                        });
                        bulkSeconds = bulkClock.Elapsed.TotalSeconds;
                        bulkCount = bulk.Count;
                        Console.WriteLine($"   bulk termination of {bulkCount} sessions: {bulkSeconds:0.000} s");
                    }
                }
                return new Result(name, s.Sessions, connected.Count, refused, connectSeconds, rssBase, rssIdle, active.Count, loadSeconds, rtts.Count,
                    roundTrip, cpuCores, termination, answer, bulkCount, bulkSeconds);
            }
            finally
            {
                await Parallel.ForEachAsync(connected, new ParallelOptions { MaxDegreeOfParallelism = 64 }, async (g, _) => await g.DisposeAsync());
            }
        }
    }

    public static class Machine
    {
        public static string Describe()
        {
            var cpu = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':')[1].Trim() ?? "?";
            var memKiB = long.Parse(File.ReadLines("/proc/meminfo").First().Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]);
            var files = File.ReadLines("/proc/self/limits").FirstOrDefault(l => l.StartsWith("Max open files", StringComparison.Ordinal))?
                .Split(' ', StringSplitOptions.RemoveEmptyEntries)[3] ?? "?";
            return $"{Environment.ProcessorCount} cores ({cpu}), {memKiB / 1024 / 1024.0:0.0} GiB, {Environment.OSVersion}, .NET {Environment.Version}, " +
                   $"open files per process {files}";
        }
    }

    public sealed class Report(string machine, Settings settings)
    {
        public string Machine => machine;
        public List<Result> Results { get; } = [];
        public List<Result> Scaling { get; } = [];

        Result? Of(string name) => Results.FirstOrDefault(r => r.Target == name);

        double? Ratio(string baseline) =>
            Of("parley") is { } p && Of(baseline) is { MessagesPerSecond: > 0 } b ? p.MessagesPerSecond / b.MessagesPerSecond : null;

        static string F(double? v, string format = "0.00") => v is { } x ? x.ToString(format, CultureInfo.InvariantCulture) : "—";

        public string Table()
        {
            var lines = new List<string>
            {
                "| target | sessions | messages/s | round trip p50 / p95 / p99 / max (ms) | termination p50 / p99 (ms) | bulk termination | RSS KiB/session | server CPU (cores) | Parley msg/s ÷ this |",
                "|---|---|---|---|---|---|---|---|---|",
            };
            foreach (var r in Results)
                lines.Add($"| {r.Target} | {r.SessionsConnected}/{r.SessionsRequested} | {F(r.MessagesPerSecond, "0")} | " +
                          $"{F(r.RoundTrip.P50)} / {F(r.RoundTrip.P95)} / {F(r.RoundTrip.P99)} / {F(r.RoundTrip.Max)} | " +
                          $"{(r.Termination is { } t ? $"{F(t.P50)} / {F(t.P99)}" : "—")} | " +
                          $"{(r.BulkSeconds is { } b ? $"{r.BulkCount} in {F(b, "0.000")} s" : "—")} | {F(r.RssKiBPerSession, "0.0")} | {F(r.CpuCores)} | " +
                          $"{(r.Target == "parley" ? "1.00" : F(Ratio(r.Target)))} |");
            if (Scaling.Count > 0)
            {
                lines.Add("");
                lines.Add("| target | sessions | RSS KiB/session | round trip p99 (ms) | termination p50 / p99 (ms) | refused |");
                lines.Add("|---|---|---|---|---|---|");
                foreach (var r in Scaling)
                    lines.Add($"| {r.Target} | {r.SessionsConnected}/{r.SessionsRequested} | {F(r.RssKiBPerSession, "0.0")} | {F(r.RoundTrip.P99)} | " +
                              $"{(r.Termination is { } t ? $"{F(t.P50)} / {F(t.P99)}" : "—")} | {r.Refused} |");
            }
            return string.Join(Environment.NewLine, lines);
        }

        public JsonObject Json()
        {
            var p = Of("parley");
            var json = new JsonObject
            {
                ["sessions"] = p?.SessionsConnected ?? 0,
                ["messages_per_s"] = p?.MessagesPerSecond ?? 0,
                ["rtt_p50_ms"] = p?.RoundTrip.P50 ?? 0,
                ["rtt_p95_ms"] = p?.RoundTrip.P95 ?? 0,
                ["rtt_p99_ms"] = p?.RoundTrip.P99 ?? 0,
                ["rtt_max_ms"] = p?.RoundTrip.Max ?? 0,
                ["termination_p50_ms"] = p?.Termination?.P50 ?? 0,
                ["termination_p99_ms"] = p?.Termination?.P99 ?? 0,
                ["bulk_terminate_s"] = p?.BulkSeconds ?? 0,
                ["bulk_terminate_count"] = p?.BulkCount ?? 0,
                ["rss_kib_per_session"] = p?.RssKiBPerSession ?? 0,
                ["server_cpu_cores"] = p?.CpuCores ?? 0,
                ["ratio_vs_raw"] = Ratio("raw"),
                ["ratio_vs_signalr"] = Ratio("signalr"),
                ["ratio_vs_node_ws"] = Ratio("node"),
                ["machine"] = machine,
                ["settings"] = JsonSerializer.SerializeToNode(settings),
                ["targets"] = JsonSerializer.SerializeToNode(Results.Select(Flatten).ToList()),
                ["scaling"] = JsonSerializer.SerializeToNode(Scaling.Select(Flatten).ToList()),
            };
            return json;
        }

        static object Flatten(Result r) => new
        {
            target = r.Target, sessions = r.SessionsConnected, sessions_requested = r.SessionsRequested, refused = r.Refused,
            connect_s = r.ConnectSeconds, rss_base_kib = r.RssBaseKiB, rss_idle_kib = r.RssIdleKiB, rss_kib_per_session = r.RssKiBPerSession,
            active = r.ActiveSessions, duration_s = r.DurationSeconds, round_trips = r.RoundTrips, messages_per_s = r.MessagesPerSecond,
            rtt_p50_ms = r.RoundTrip.P50, rtt_p95_ms = r.RoundTrip.P95, rtt_p99_ms = r.RoundTrip.P99, rtt_max_ms = r.RoundTrip.Max,
            server_cpu_cores = r.CpuCores, termination_p50_ms = r.Termination?.P50, termination_p99_ms = r.Termination?.P99,
            termination_answer_p50_ms = r.TerminationAnswer?.P50, bulk_terminate_count = r.BulkCount, bulk_terminate_s = r.BulkSeconds,
        };
    }
}
