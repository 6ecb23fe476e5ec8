using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Parley.Bench;

// Load tool: opens N guest sessions on each target over its real sockets, drives guest messages with bot replies,
// measures Parley's termination latency and bulk termination, and reports Parley's figures as ratios to baselines
// measured in the same run. See BENCHMARKS.md.
var targetsOption = new Option<string>("--targets")
{
    Description = "comma-separated: parley,raw,signalr,node,signalr-ef (also parley-os, parley-interval: Parley at a durability level; " +
                  "parley:NAME=VALUE+NAME=VALUE: Parley with those environment variables, to compare a setting in one run)",
    DefaultValueFactory = _ => "parley,raw,signalr,node,signalr-ef",
};
var levelsOption = new Option<bool>("--durability-levels") { Description = "add parley-os and parley-interval after parley (Parley:Storage:Durability = os, interval)" };
var fullOption = new Option<bool>("--full")
{
    Description = "the full run (BENCHMARKS.md): 10,000 sessions, 100 active for 10 s, 1,000 single terminations, bulk 10,000 (a fresh set), " +
                  "scaling 1000,5000,10000,19000; options given explicitly win",
};
var sessionsOption = new Option<int>("--sessions") { Description = "concurrent guest sessions per target", DefaultValueFactory = _ => 2000 };
var activeOption = new Option<int>("--active") { Description = "sessions in the steady load (closed loop)", DefaultValueFactory = _ => 100 };
var durationOption = new Option<double>("--duration") { Description = "seconds of steady load", DefaultValueFactory = _ => 10 };
var jitSettleOption = new Option<double>("--jit-settle")
{
    Description = "after --warmup, seconds more at most of the same load while the server's JIT still recompiles (above 0.03 cores): the measured phase is the steady state's",
    DefaultValueFactory = _ => 40,
};
var warmupOption = new Option<double>("--warmup") { Description = "seconds of the same load before the measured one, not counted (every target alike: the JIT's tiering settles)", DefaultValueFactory = _ => 5 };
var terminationsOption = new Option<int>("--terminations") { Description = "single terminations timed (Parley), one at a time", DefaultValueFactory = _ => 1000 };
var bulkOption = new Option<int>("--bulk")
{
    Description = "sessions ended at once by one POST /api/v2/parley/terminations (Parley); when fewer are left after the single terminations, " +
                  "the run's sockets are closed and a fresh set of this many is opened for it",
    DefaultValueFactory = _ => 1000,
};
var bulkRunsOption = new Option<int>("--bulk-runs")
{
    Description = "measured bulk terminations of --bulk sessions in one process (the same sockets, a new campaign each); each is reported, " +
                  "the median decides the verdict",
    DefaultValueFactory = _ => 3,
};
var bulkCallsOption = new Option<int>("--bulk-calls") { Description = "sessions also ended by 64 concurrent single calls, the earlier bulk figure (Parley)", DefaultValueFactory = _ => 0 };
var sourcesOption = new Option<int>("--sources") { Description = "loopback source addresses to spread client sockets over (0: one per 10k sessions)", DefaultValueFactory = _ => 0 };
var scalingOption = new Option<string?>("--scaling") { Description = "session counts for the scaling table, e.g. 1000,5000,10000,19000" };
var scalingTargetsOption = new Option<string?>("--scaling-targets") { Description = "targets of the scaling table (default: --targets)" };
var projectionSessionsOption = new Option<int>("--projection-sessions") { Description = "sessions on one node for the scale projection", DefaultValueFactory = _ => 100_000 };
var projectionRateOption = new Option<double>("--projection-rate")
{
    Description = "messages per session per minute (guest + bot) for the scale projection", DefaultValueFactory = _ => 2,
};
var jsonOption = new Option<string?>("--json") { Description = "write the report as JSON to this file" };
var smokeOption = new Option<bool>("--smoke") { Description = "a small, fast run (CI): 300 sessions, 3 s of load" };
var verboseOption = new Option<bool>("--verbose") { Description = "show the servers' error output" };
var nodesOption = new Option<int>("--nodes") { Description = "also run Parley as this many nodes on PostgreSQL + Redis (2 or more; bench/run starts the engines)", DefaultValueFactory = _ => 1 };
var crossTerminationsOption = new Option<int>("--cross-terminations") { Description = "cross-node terminations timed (--nodes)", DefaultValueFactory = _ => 1000 };
var tracedOption = new Option<int>("--traced") { Description = "cross-node terminations traced leg by leg with Redis MONITOR on (--nodes)", DefaultValueFactory = _ => 200 };

var root = new RootCommand("Parley benchmark: sessions, throughput, termination latency and memory, as ratios to baselines")
{
    targetsOption, levelsOption, fullOption, sessionsOption, activeOption, durationOption, warmupOption, jitSettleOption, terminationsOption, bulkOption, bulkRunsOption, bulkCallsOption, sourcesOption,
    scalingOption, scalingTargetsOption, projectionSessionsOption, projectionRateOption, jsonOption, smokeOption, verboseOption, nodesOption,
    crossTerminationsOption, tracedOption,
};
root.SetAction(async (parse, ct) =>
{
    var smoke = parse.GetValue(smokeOption);
    var full = parse.GetValue(fullOption) && !smoke;
    Target.Verbose = parse.GetValue(verboseOption);
    // --full fills in what was not given on the command line.
    T Pick<T>(Option<T> option, T fullValue) => full && parse.GetResult(option) is null or { Implicit: true } ? fullValue : parse.GetValue(option)!;
    var targets = parse.GetValue(targetsOption)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToList();
    if (parse.GetValue(levelsOption))
        targets.InsertRange(targets.IndexOf("parley") + 1, new[] { "parley-os", "parley-interval" }.Where(l => !targets.Contains(l)));
    if (targets.FirstOrDefault(t => !Target.IsKnown(t)) is { } unknown)
        throw new ArgumentException($"unknown target {unknown}: {string.Join(", ", Target.Names)}");
    var settings = new Settings(
        [.. targets],
        smoke ? 300 : Pick(sessionsOption, 10_000),
        smoke ? 50 : Pick(activeOption, 100),
        smoke ? 3 : Pick(durationOption, 10),
        smoke ? 50 : Pick(terminationsOption, 1000),
        smoke ? 100 : Pick(bulkOption, 10_000),
        parse.GetValue(sourcesOption),
        smoke ? 0 : parse.GetValue(bulkCallsOption),
        smoke ? 1 : parse.GetValue(warmupOption),
        Math.Max(1, parse.GetValue(bulkRunsOption)),
        smoke ? 0 : parse.GetValue(jitSettleOption));
    var scalingSizes = Pick(scalingOption, "1000,5000,10000,19000");
    var scalingTargets = parse.GetValue(scalingTargetsOption)?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries) ?? settings.Targets;
    var nodes = parse.GetValue(nodesOption);
    if (nodes < 1) throw new ArgumentException("--nodes is 1 (one SQLite node) or more (PostgreSQL + Redis)");
    var report = new Report(Machine.Describe(), settings, parse.GetValue(projectionSessionsOption), parse.GetValue(projectionRateOption));

    Console.WriteLine(report.Machine);
    Console.WriteLine($"load average at start: {report.LoadAtStart}");
    if (settings.Targets.Any(t => t.StartsWith("parley", StringComparison.Ordinal)) && OperatingSystem.IsLinux())
    {
        report.DiskFsync = DiskProbe.FsyncLatency(Path.GetTempPath(), smoke ? 100 : 1000);
        Console.WriteLine($"disk: fdatasync of a {3 * 4} KiB write p50 {report.DiskFsync.P50:0.00} ms p99 {report.DiskFsync.P99:0.00} ms " +
                          $"max {report.DiskFsync.Max:0.00} ms ({report.DiskFsync.Count}, one at a time, in {Path.GetTempPath()})");
    }
    foreach (var name in settings.Targets)
    {
        Console.WriteLine($"-- {name}: {settings.Sessions} sessions, {settings.Active} active for {settings.Duration} s");
        try { report.Results.Add(await Runner.RunAsync(name, settings)); }
        catch (TargetUnavailableException e)
        {
            report.Skipped.Add($"{name}: {e.Message}");
            Console.WriteLine($"   not measured: {e.Message}");
        }
    }
    if (scalingSizes is { } scaling)
        foreach (var n in scaling.Split(',').Select(int.Parse))
            foreach (var name in scalingTargets)
            {
                Console.WriteLine($"-- scaling {name}: {n} sessions");
                var at = settings with { Sessions = n, Duration = Math.Min(settings.Duration, 5), Terminations = Math.Min(settings.Terminations, 100), Bulk = 0, BulkCalls = 0 };
                try { report.Scaling.Add(await Runner.RunAsync(name, at)); }
                catch (TargetUnavailableException e) { Console.WriteLine($"   not measured: {e.Message}"); }
            }

    if (nodes > 1)
    {
        var cluster = new ClusterSettings(nodes, settings.Sessions, settings.Active, settings.Duration,
            smoke ? 50 : parse.GetValue(crossTerminationsOption), smoke ? 20 : parse.GetValue(tracedOption), settings.Sources);
        Console.WriteLine($"-- parley on {nodes} nodes (PostgreSQL + Redis): {cluster.Sessions} sessions, {cluster.Active} active for {cluster.Duration} s, " +
                          $"{cluster.Terminations} cross-node terminations");
        report.Cluster = await Cluster.RunAsync(cluster);
    }

    report.LoadAtEnd = Machine.LoadAverage();
    Console.WriteLine();
    Console.WriteLine($"load average at start: {report.LoadAtStart}; at the end: {report.LoadAtEnd}");
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
    public sealed record Settings(string[] Targets, int Sessions, int Active, double Duration, int Terminations, int Bulk, int Sources, int BulkCalls = 0, double Warmup = 0,
        int BulkRuns = 1, double JitSettle = 0);

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
        Percentiles? Termination, Percentiles? TerminationAnswer, int BulkCount, double? BulkSeconds,
        Percentiles? BotMessage = null, Percentiles? BotMessageAnswer = null, double? BulkAnswerSeconds = null, int BulkCallsCount = 0,
        double? BulkCallsSeconds = null, double? CommitGroups = null, double? CommitWrites = null, bool BulkFreshSet = false,
        double? BulkWarmupSeconds = null, double[]? BulkRunSeconds = null, double[]? BulkRunCpuSeconds = null,
        double? WarmupSeconds = null, double? WarmupJitCores = null, double JitCores = 0)
    {
        /// <summary>Commit groups per second of steady load (Parley: from its commit group histogram).</summary>
        public double? CommitGroupsPerSecond => CommitGroups is { } g && DurationSeconds > 0 ? g / DurationSeconds : null;
        public double? WritesPerGroup => CommitGroups is > 0 && CommitWrites is { } w ? w / CommitGroups : null;
        /// <summary>Server CPU seconds per message under the steady load.</summary>
        public double CpuSecondsPerMessage => MessagesPerSecond == 0 ? 0 : CpuCores / MessagesPerSecond;
        public double RssKiBPerSession => SessionsConnected == 0 ? 0 : (RssIdleKiB - RssBaseKiB) / (double)SessionsConnected;
        /// <summary>Each round trip is two messages: the guest's and the bot's reply.</summary>
        public double MessagesPerSecond => DurationSeconds == 0 ? 0 : 2 * RoundTrips / DurationSeconds;
    }

    public static partial class Runner
    {
        // Generous: the durable baseline commits one fsync per message, and a loaded disk can take seconds per round trip.
        static readonly TimeSpan Timeout = TimeSpan.FromSeconds(120);
        /// <summary>The JIT counts as done below this share of a core (its thread idles at 0; a late compile is ~0.01 s).</summary>
        const double JitQuiet = 0.03;
        static double Ms(long fromTicks, long toTicks) => (toTicks - fromTicks) * 1000.0 / Stopwatch.Frequency;

        public static async Task<Result> RunAsync(string name, Settings s)
        {
            await using var target = Target.Create(name);
            await target.StartAsync();
            await Task.Delay(1000);
            var rssBase = target.RssKiB();

            // 1. N sessions, spread over loopback sources; refusals are counted, not fatal.
            var sources = s.Sources > 0 ? s.Sources : Math.Max(1, (s.Sessions + 9_999) / 10_000);
            var connectClock = Stopwatch.StartNew();
            var (connected, refused) = await ConnectAsync(target, s.Sessions, sources);
            var connectSeconds = connectClock.Elapsed.TotalSeconds;
            Console.WriteLine($"   connected {connected.Count}/{s.Sessions} in {connectSeconds:0.0} s ({refused} refused)");
            await Task.Delay(2000);
            var rssIdle = target.RssKiB();

            try
            {
                // 2. Steady load: each active guest sends, waits for its echo, the bot replies, the guest waits for it.
                var active = connected.Take(Math.Min(s.Active, connected.Count)).ToList();
                await target.PrepareAsync(active, needBotCommunication: true);
                // A warm-up of the same loop first, not counted: a server measured seconds after its start spends a
                // quarter of its CPU in the JIT's tier-1 recompiles (perf, 2026-12-02), which a running server does not.
                // Then on, in one-second slices, while the JIT still works (perf, 2026-12-02: still at 0.21 cores in the first
                // seconds after a 5 s warm-up; Parley's settled after 6–14 s of load), up to --jit-settle seconds: the figure
                // is the steady state's.
                double? warmupSeconds = null, warmupJitCores = null;
                if (s.Warmup > 0)
                {
                    var warmClock = Stopwatch.StartNew();
                    await ClosedLoop.RunAsync(active, _ => target, s.Warmup, Timeout, []);
                    while (s.JitSettle > 0)
                    {
                        var jitBefore = target.JitThreads();
                        var slice = await ClosedLoop.RunAsync(active, _ => target, 1, Timeout, []);
                        warmupJitCores = target.JitCpuSecondsSince(jitBefore) / slice;
                        if (warmupJitCores <= JitQuiet || warmClock.Elapsed.TotalSeconds >= s.Warmup + s.JitSettle) break;
                    }
                    warmupSeconds = warmClock.Elapsed.TotalSeconds;
                    Console.WriteLine($"   warm-up {warmupSeconds:0} s" + (warmupJitCores is { } last ? $" (the JIT at {last:0.00} cores in its last second)" : ""));
                }
                var rtts = new List<double>();
                var commitsBefore = await target.CommitGroupsAsync();
                var cpuBefore = target.CpuSeconds();
                var jitCpuBefore = target.JitThreads();
                var loadSeconds = await ClosedLoop.RunAsync(active, _ => target, s.Duration, Timeout, rtts);
                var cpuCores = (target.CpuSeconds() - cpuBefore) / loadSeconds;
                var jitCores = target.JitCpuSecondsSince(jitCpuBefore) / loadSeconds;
                var commitsAfter = await target.CommitGroupsAsync();
                double? commitGroups = null, commitWrites = null;
                if (commitsBefore is { } b0 && commitsAfter is { } b1) (commitGroups, commitWrites) = (b1.Groups - b0.Groups, b1.Writes - b0.Writes);
                var roundTrip = Percentiles.Of(rtts);
                Console.WriteLine($"   {rtts.Count / loadSeconds * 2:0} messages/s, round trip p50 {roundTrip.P50:0.00} ms p99 {roundTrip.P99:0.00} ms, {cpuCores:0.00} cores (JIT {jitCores:0.00})" +
                                  (commitGroups is > 0 ? $", {commitGroups / loadSeconds:0} commit groups/s of {commitWrites / commitGroups:0.0} writes" : ""));

                Percentiles? termination = null, answer = null, botMessage = null, botAnswer = null;
                double? bulkSeconds = null, bulkAnswerSeconds = null, bulkCallsSeconds = null, bulkWarmupSeconds = null;
                double[]? bulkRunSeconds = null, bulkRunCpuSeconds = null;
                var bulkCount = 0;
                var bulkCallsCount = 0;
                var bulkFresh = false;
                // 3. A bot message on its own, for every target: API call start → the message on the guest's socket. The
                // floor of a single request's latency on this machine, beside which the termination's is read.
                var singles = connected.Skip(active.Count).Take(s.Terminations).ToList();
                if (singles.Count > 0)
                {
                    await target.PrepareAsync(singles, needBotCommunication: true);
                    // Warmed up as the steady load is, on the load's own sessions (perf, 2026-12-02: without it the JIT's
                    // tier-1 thread held a core for the first 1–2 s of each one-at-a-time phase, and its p99 was twice the rest's).
                    if (s.Warmup > 0)
                        await OneAtATime.WarmAsync(active, g => target.BotReplyAsync(g, "warm-up"), f => f.Direction == "Outbound" && f.TracingId is null,
                            s.Warmup, Timeout);
                    (botMessage, botAnswer) = await OneAtATime.TimeAsync(singles, g => target.BotReplyAsync(g, "one at a time"),
                        f => f.Direction == "Outbound" && f.TracingId is null, Timeout);
                    Console.WriteLine($"   bot message one at a time p50 {botMessage.P50:0.00} ms p99 {botMessage.P99:0.00} ms (HTTP answer p50 {botAnswer.P50:0.00} ms)");
                }
                if (target.CanTerminate)
                {
                    // Termination latency: Platform API call start → the guest's socket has the Disconnect frame. Warmed up
                    // first on the load's sessions: each ended, then the bot starts its next conversation for the next round.
                    if (s.Warmup > 0 && target is ParleyTarget warming)
                        await OneAtATime.WarmAsync(active, async g =>
                        {
                            using var response = await target.TerminateAsync(g);
                            response.EnsureSuccessStatusCode();
                        }, f => f.IsDisconnect, s.Warmup, Timeout, after: g => warming.StartTaggedAsync([g], "warm-up"));
                    (termination, answer) = await OneAtATime.TimeAsync(singles, async g =>
                    {
                        using var response = await target.TerminateAsync(g);
                        response.EnsureSuccessStatusCode();
                    }, f => f.IsDisconnect, Timeout);
                    Console.WriteLine($"   termination p50 {termination.P50:0.00} ms p99 {termination.P99:0.00} ms (HTTP answer p50 {answer.P50:0.00} ms p99 {answer.P99:0.00} ms)");

                    // 4. Bulk: K conversations (started by the bot with a campaign tag of their own) ended by one
                    // POST /api/v2/parley/terminations; wall time from the call until the last socket received its Disconnect.
                    var left = connected.Skip(active.Count + singles.Count).ToList();
                    var bulk = left.Take(s.Bulk).ToList();
                    if (left.Count < s.Bulk && target is ParleyTarget)
                    {
                        // Not enough left after the single terminations: close every socket of this run (the load tool and
                        // the server share one open-file cap) and open a fresh set of --bulk sessions for it alone.
                        await Parallel.ForEachAsync(connected, new ParallelOptions { MaxDegreeOfParallelism = 64 }, async (g, _) => await g.DisposeAsync());
                        connected.Clear();
                        await Task.Delay(2000);   // the server lets go of the closed sockets
                        var (fresh, freshRefused) = await ConnectAsync(target, s.Bulk, Math.Max(1, (s.Bulk + 9_999) / 10_000));
                        connected.AddRange(fresh);
                        (bulk, left, bulkFresh) = (fresh, fresh, true);
                        Console.WriteLine($"   a fresh set for the bulk termination: connected {fresh.Count}/{s.Bulk} ({freshRefused} refused)");
                    }
                    if (bulk.Count > 0 && target is ParleyTarget parley)
                    {
                        if (s.Warmup > 0)
                        {
                            // The bulk path runs in no other phase: its first run in a process is also its JIT's (tier-0
                            // code, then the tier-1 compiles on a core the run needs). Warm-up bulks on sessions of their
                            // own, timed and reported beside the measured one (whose starts, then its pause, follow).
                            var (warm, _) = await ConnectAsync(target, Math.Min(BulkWarmupSessions, bulk.Count), 1);
                            try
                            {
                                foreach (var part in warm.Chunk(warm.Count / BulkWarmups))
                                {
                                    var (first, _, _) = await BulkAsync(parley, part);
                                    bulkWarmupSeconds ??= first;
                                }
                            }
                            finally { await Parallel.ForEachAsync(warm, new ParallelOptions { MaxDegreeOfParallelism = 64 }, async (g, _) => await g.DisposeAsync()); }
                            Console.WriteLine($"   warm-up: {BulkWarmups} bulk terminations of {warm.Count / BulkWarmups} sessions (the first {bulkWarmupSeconds:0.000} s)");
                        }
                        // One bulk varies by ±15 % from run to run on a shared 2-core machine: several in the process (the same
                        // sockets, each with conversations of a new campaign), each reported; the median is the figure.
                        var runs = new List<(double Seconds, double AnswerSeconds, ParleyTarget.BulkCounts Job)>();
                        for (var run = 1; run <= s.BulkRuns; run++)
                        {
                            var (seconds, answered, job) = await BulkAsync(parley, bulk);
                            runs.Add((seconds, answered, job));
                            Console.WriteLine($"   bulk termination of {bulk.Count} sessions (one call): {seconds:0.000} s until every socket had its Disconnect " +
                                              $"(answered {(job.Accepted ? "202" : "200")} in {answered:0.000} s; the job ran {job.ServerSeconds:0.000} s on the server, " +
                                              $"{job.CpuSeconds:0.000} s of its CPU) [run {run} of {s.BulkRuns}]");
                        }
                        (bulkSeconds, bulkAnswerSeconds, _) = runs.OrderBy(r => r.Seconds).ElementAt(runs.Count / 2);
                        bulkRunSeconds = [.. runs.Select(r => r.Seconds)];
                        bulkRunCpuSeconds = [.. runs.Select(r => r.Job.CpuSeconds)];
                        bulkCount = bulk.Count;
                    }

                    // 4b. The earlier figure: K conversations ended by 64 concurrent single calls (POST …/disconnect).
                    var calls = left.Skip(bulk.Count).Take(s.BulkCalls).ToList();
                    if (calls.Count > 0)
                    {
                        await target.PrepareAsync(calls, needBotCommunication: false);
                        var callsClock = Stopwatch.StartNew();
                        await Parallel.ForEachAsync(calls, new ParallelOptions { MaxDegreeOfParallelism = 64 }, async (g, _) =>
                        {
                            using var response = await target.TerminateAsync(g);
                            response.EnsureSuccessStatusCode();
                            await g.NextAsync(f => f.IsDisconnect, Timeout);
                        });
                        bulkCallsSeconds = callsClock.Elapsed.TotalSeconds;
                        bulkCallsCount = calls.Count;
                        Console.WriteLine($"   bulk termination of {bulkCallsCount} sessions (64 concurrent calls): {bulkCallsSeconds:0.000} s");
                    }
                }
                return new Result(name, s.Sessions, connected.Count, refused, connectSeconds, rssBase, rssIdle, active.Count, loadSeconds, rtts.Count,
                    roundTrip, cpuCores, termination, answer, bulkCount, bulkSeconds, botMessage, botAnswer, bulkAnswerSeconds, bulkCallsCount, bulkCallsSeconds,
                    commitGroups, commitWrites, bulkFresh, bulkWarmupSeconds, bulkRunSeconds, bulkRunCpuSeconds, warmupSeconds, warmupJitCores, jitCores);
            }
            finally
            {
                await Parallel.ForEachAsync(connected, new ParallelOptions { MaxDegreeOfParallelism = 64 }, async (g, _) => await g.DisposeAsync());
            }
        }
    }

    public static partial class Runner
    {
        /// <summary>Sessions of the bulk warm-up (before the measured bulk, when <c>--warmup</c> is set; at most the bulk's), in <see cref="BulkWarmups"/> runs.</summary>
        const int BulkWarmupSessions = 1000, BulkWarmups = 2;

        /// <summary>The pause between the conversations' starts and the bulk call that ends them.</summary>
        static readonly TimeSpan BulkSettle = TimeSpan.FromSeconds(2);

        /// <summary>
        /// K conversations started by the bot with a campaign tag of their own, ended by one POST /api/v2/parley/terminations:
        /// the seconds from the call until the last socket had its Disconnect, and until the answer.
        /// </summary>
        static async Task<(double Seconds, double AnswerSeconds, ParleyTarget.BulkCounts Job)> BulkAsync(ParleyTarget parley, IReadOnlyList<BenchConnection> bulk)
        {
            var campaign = $"bench-{Guid.NewGuid():N}";
            await parley.StartTaggedAsync(bulk, campaign);
            // A campaign's conversations started before the call that ends them, not in the same second: what their starts
            // left running (the JIT's tier-1 compiles of the start path, a WAL checkpoint) is not the bulk's time.
            await Task.Delay(BulkSettle);
            var told = bulk.Select(g => g.NextAsync(f => f.IsDisconnect, Timeout)).ToList();   // listening before the call
            var cpuBefore = parley.CpuSeconds();
            var started = Stopwatch.GetTimestamp();
            var job = await parley.BulkTerminateAsync(campaign);
            var answerSeconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
            var frames = await Task.WhenAll(told);
            var seconds = Ms(started, frames.Max(f => f.ReceivedTicks)) / 1000;
            var cpuSeconds = parley.CpuSeconds() - cpuBefore;   // less noisy than the wall time on a shared machine
            var counts = await parley.AwaitTerminationAsync(job);
            if (counts.Ended != bulk.Count || counts.SocketsNotified < bulk.Count)
                throw new InvalidOperationException($"bulk termination ended {counts.Ended} of {bulk.Count} ({counts.SocketsNotified} sockets told)");
            return (seconds, answerSeconds, counts with { Accepted = job.Accepted, CpuSeconds = cpuSeconds });
        }

        static async Task<(List<BenchConnection> Connected, int Refused)> ConnectAsync(Target target, int count, int sources)
        {
            var guests = new BenchConnection?[count];
            var refused = 0;
            await Parallel.ForEachAsync(Enumerable.Range(0, count), new ParallelOptions { MaxDegreeOfParallelism = 64 }, async (i, _) =>
            {
                guests[i] = await target.TryConnectGuestAsync(i % sources, Timeout);
                if (guests[i] is null) Interlocked.Increment(ref refused);
            });
            return ([.. guests.Where(g => g is not null).Select(g => g!)], refused);
        }
    }

    public static class Machine
    {
        /// <summary>The 1, 5 and 15 minute load averages: on a shared machine, how much else ran beside the bench.</summary>
        public static string LoadAverage() => string.Join(" ", File.ReadAllText("/proc/loadavg").Split(' ').Take(3));

        public static long MemTotalKiB() => long.Parse(File.ReadLines("/proc/meminfo").First().Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]);

        /// <summary>This process's soft limit on open files (the servers inherit it).</summary>
        public static long OpenFiles() =>
            File.ReadLines("/proc/self/limits").FirstOrDefault(l => l.StartsWith("Max open files", StringComparison.Ordinal))?
                .Split(' ', StringSplitOptions.RemoveEmptyEntries)[3] is { } soft && long.TryParse(soft, out var n) ? n : 0;

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

    public sealed partial class Report(string machine, Settings settings, int projectionSessions, double projectionRate)
    {
        public string Machine => machine;
        public List<Result> Results { get; } = [];
        public List<Result> Scaling { get; } = [];
        /// <summary>Targets the server could not run (a setting it does not offer yet), with the server's words.</summary>
        public List<string> Skipped { get; } = [];
        public ClusterResult? Cluster { get; set; }
        public string LoadAtStart { get; } = Parley.Bench.Machine.LoadAverage();
        public string? LoadAtEnd { get; set; }
        /// <summary>The disk's own fsync latency before the run (<see cref="DiskProbe"/>), or null when not measured.</summary>
        public Percentiles? DiskFsync { get; set; }

        Result? Of(string name) => Results.FirstOrDefault(r => r.Target == name);

        double? Ratio(string baseline) => Ratio("parley", baseline);

        double? Ratio(string target, string baseline) =>
            Of(target) is { } p && Of(baseline) is { MessagesPerSecond: > 0 } b ? p.MessagesPerSecond / b.MessagesPerSecond : null;

        static string F(double? v, string format = "0.00") => v is { } x ? x.ToString(format, CultureInfo.InvariantCulture) : "—";

        public string Table()
        {
            var lines = new List<string>
            {
                "| target | sessions | messages/s | round trip p50 / p95 / p99 / max (ms) | one bot message at a time p50 / p99 (ms) | termination p50 / p99 (ms) | bulk termination | RSS KiB/session | server CPU (cores) | Parley msg/s ÷ this |",
                "|---|---|---|---|---|---|---|---|---|---|",
            };
            foreach (var r in Results)
                lines.Add($"| {r.Target} | {r.SessionsConnected}/{r.SessionsRequested} | {F(r.MessagesPerSecond, "0")} | " +
                          $"{F(r.RoundTrip.P50)} / {F(r.RoundTrip.P95)} / {F(r.RoundTrip.P99)} / {F(r.RoundTrip.Max)} | {P(r.BotMessage)} | " +
                          $"{(r.Termination is { } t ? $"{F(t.P50)} / {F(t.P99)}" : "—")} | " +
                          $"{(r.BulkSeconds is { } b ? $"{r.BulkCount} in {F(b, "0.000")} s" : "—")} | {F(r.RssKiBPerSession, "0.0")} | {F(r.CpuCores)} | " +
                          $"{(r.Target == "parley" ? "1.00" : F(Ratio(r.Target)))} |");
            foreach (var skipped in Skipped) lines.Add($"| {skipped.Split(':')[0]} | not measured: {skipped[(skipped.IndexOf(':') + 2)..].Replace("|", "/")} ||||||||");
            if (Scaling.Count > 0)
            {
                lines.Add("");
                lines.Add("| target | sessions | RSS KiB/session | round trip p99 (ms) | termination p50 / p99 (ms) | refused |");
                lines.Add("|---|---|---|---|---|---|");
                foreach (var r in Scaling)
                    lines.Add($"| {r.Target} | {r.SessionsConnected}/{r.SessionsRequested} | {F(r.RssKiBPerSession, "0.0")} | {F(r.RoundTrip.P99)} | " +
                              $"{(r.Termination is { } t ? $"{F(t.P50)} / {F(t.P99)}" : "—")} | {r.Refused} |");
            }
            if (Cluster is { } c) lines.AddRange(["", .. ClusterTable(Of("parley"), c)]);
            lines.AddRange(["", .. RatioTable()]);
            lines.AddRange(DurabilityTable());
            lines.AddRange(["", .. VerdictTable()]);
            lines.AddRange(["", .. ProjectionTable()]);
            return string.Join(Environment.NewLine, lines);
        }

        static string P(Percentiles? p) => p is { Count: > 0 } x ? $"{F(x.P50)} / {F(x.P99)}" : "—";

        /// <summary>One SQLite node beside N nodes on PostgreSQL + Redis, measured in the same run.</summary>
        static IEnumerable<string> ClusterTable(Result? one, ClusterResult c)
        {
            yield return $"| same load | one node, SQLite | {c.Nodes} nodes, PostgreSQL + Redis (guest on A, bot calls on B) |";
            yield return "|---|---|---|";
            yield return $"| sessions connected | {(one is null ? "—" : $"{one.SessionsConnected}")} | {c.SessionsConnected}/{c.SessionsRequested} (spread over the nodes) |";
            yield return $"| guest + bot messages/s ({c.ActiveSessions} active) | {(one is null ? "—" : F(one.MessagesPerSecond, "0"))} | " +
                         $"{F(c.MessagesPerSecond, "0")}{(one is { MessagesPerSecond: > 0 } ? $" ({F(c.MessagesPerSecond / one.MessagesPerSecond)}×)" : "")} |";
            yield return $"| round trip p50 / p99 (ms) | {P(one?.RoundTrip)} | {P(c.RoundTrip)} |";
            yield return $"| server CPU (cores, all nodes) | {(one is null ? "—" : F(one.CpuCores))} | {F(c.CpuCores)} |";
            yield return $"| bot message → guest socket p50 / p99 (ms) | {P(one?.BotMessage)} | {P(c.BotMessage)} |";
            yield return $"| bot message HTTP answer p50 / p99 (ms) | {P(one?.BotMessageAnswer)} | {P(c.BotMessageAnswer)} |";
            yield return $"| termination → Disconnect on the guest socket p50 / p99 (ms) | {P(one?.Termination)} ({one?.Termination?.Count ?? 0}) | " +
                         $"**{P(c.Termination)}** ({c.Termination.Count}) |";
            yield return $"| termination HTTP answer p50 / p99 (ms) | {P(one?.TerminationAnswer)} | {P(c.TerminationAnswer)} |";
            yield return $"| answers whose Parley-Sockets-Notified missed the remote socket | — | {c.NotifiedWrong} |";
            yield return "";
            yield return "| where a cross-node termination's time goes | p50 (ms) | p99 (ms) | samples |";
            yield return "|---|---|---|---|";
            foreach (var leg in c.Legs) yield return $"| {leg.Name} | {F(leg.Time.P50)} | {F(leg.Time.P99)} | {leg.Time.Count} |";
            yield return $"| PostgreSQL alone: SELECT 1 round trip / one-row INSERT commit | {F(c.PgSelect.P50)} / {F(c.PgCommit.P50)} | " +
                         $"{F(c.PgSelect.P99)} / {F(c.PgCommit.P99)} | {c.PgCommit.Count} |";
            yield return $"| Redis alone: PUBLISH → subscriber | {F(c.RedisHop.P50)} | {F(c.RedisHop.P99)} | {c.RedisHop.Count} |";
            yield return $"| PostgreSQL per termination (pg_stat_database): transactions, ms executing statements | " +
                         $"{F(c.PgTransactionsPerTermination, "0.0")}, {F(c.PgActiveMsPerTermination)} | | |";
            yield return $"| PostgreSQL per cross-node bot message: transactions, ms executing statements | " +
                         $"{F(c.PgTransactionsPerBotMessage, "0.0")}, {F(c.PgActiveMsPerBotMessage)} | | |";
            if (c.RedisSequence is null) yield break;
            yield return "";
            yield return $"Redis commands within one termination ({F(c.RedisSequenceShare * 100, "0")} % of samples): {c.RedisSequence}";
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
                ["bulk_terminate_answer_s"] = p?.BulkAnswerSeconds ?? 0,
                ["bulk_terminate_calls_s"] = p?.BulkCallsSeconds ?? 0,
                ["bulk_terminate_calls_count"] = p?.BulkCallsCount ?? 0,
                ["rss_kib_per_session"] = p?.RssKiBPerSession ?? 0,
                ["server_cpu_cores"] = p?.CpuCores ?? 0,
                ["ratio_vs_raw"] = Ratio("raw"),
                ["ratio_vs_signalr"] = Ratio("signalr"),
                ["ratio_vs_node_ws"] = Ratio("node"),
                ["ratio_vs_signalr_ef"] = Ratio("signalr-ef"),
                ["not_measured"] = JsonSerializer.SerializeToNode(Skipped),
                ["commit_groups_per_s"] = p?.CommitGroupsPerSecond,
                ["writes_per_commit_group"] = p?.WritesPerGroup,
                ["server_cpu_s_per_message"] = p?.CpuSecondsPerMessage,
                ["durability_levels"] = DurabilityJson(),
                ["verdicts"] = JsonSerializer.SerializeToNode(Verdicts().Select(v => new { target = v.Target, result = v.Result, verdict = v.Verdict, met = v.Met }).ToList()),
                ["projection"] = Project() is { } projection ? JsonSerializer.SerializeToNode(projection, SnakeCase) : null,
                ["machine"] = machine,
                ["load_average_start"] = LoadAtStart,
                ["disk_fdatasync_ms"] = DiskFsync is { } disk ? new JsonObject { ["p50"] = disk.P50, ["p99"] = disk.P99, ["max"] = disk.Max, ["samples"] = disk.Count } : null,
                ["load_average_end"] = LoadAtEnd,
                ["settings"] = JsonSerializer.SerializeToNode(settings),
                ["targets"] = JsonSerializer.SerializeToNode(Results.Select(Flatten).ToList()),
                ["scaling"] = JsonSerializer.SerializeToNode(Scaling.Select(Flatten).ToList()),
            };
            if (Cluster is { } c)
                json["cluster"] = new JsonObject
                {
                    ["nodes"] = c.Nodes,
                    ["sessions"] = c.SessionsConnected,
                    ["messages_per_s"] = c.MessagesPerSecond,
                    ["ratio_vs_one_node"] = p is { MessagesPerSecond: > 0 } ? c.MessagesPerSecond / p.MessagesPerSecond : null,
                    ["rtt_p50_ms"] = c.RoundTrip.P50,
                    ["rtt_p99_ms"] = c.RoundTrip.P99,
                    ["server_cpu_cores"] = c.CpuCores,
                    ["cross_termination_p50_ms"] = c.Termination.P50,
                    ["cross_termination_p99_ms"] = c.Termination.P99,
                    ["cross_termination_count"] = c.Termination.Count,
                    ["cross_termination_answer_p50_ms"] = c.TerminationAnswer.P50,
                    ["cross_termination_answer_p99_ms"] = c.TerminationAnswer.P99,
                    ["notified_wrong"] = c.NotifiedWrong,
                    ["cross_bot_message_p50_ms"] = c.BotMessage.P50,
                    ["cross_bot_message_p99_ms"] = c.BotMessage.P99,
                    ["cross_bot_message_answer_p50_ms"] = c.BotMessageAnswer.P50,
                    ["pg_select_p50_ms"] = c.PgSelect.P50,
                    ["pg_commit_p50_ms"] = c.PgCommit.P50,
                    ["pg_commit_p99_ms"] = c.PgCommit.P99,
                    ["redis_hop_p50_ms"] = c.RedisHop.P50,
                    ["redis_hop_p99_ms"] = c.RedisHop.P99,
                    ["pg_transactions_per_termination"] = c.PgTransactionsPerTermination,
                    ["pg_active_ms_per_termination"] = c.PgActiveMsPerTermination,
                    ["pg_transactions_per_bot_message"] = c.PgTransactionsPerBotMessage,
                    ["pg_active_ms_per_bot_message"] = c.PgActiveMsPerBotMessage,
                    ["legs"] = JsonSerializer.SerializeToNode(c.Legs.Select(l => new { name = l.Name, p50_ms = l.Time.P50, p99_ms = l.Time.P99, count = l.Time.Count }).ToList()),
                    ["redis_sequence"] = c.RedisSequence,
                    ["redis_sequence_share"] = c.RedisSequenceShare,
                    ["start_s"] = c.StartSeconds,
                    ["connect_s"] = c.ConnectSeconds,
                };
            return json;
        }

        static object Flatten(Result r) => new
        {
            target = r.Target, sessions = r.SessionsConnected, sessions_requested = r.SessionsRequested, refused = r.Refused,
            connect_s = r.ConnectSeconds, rss_base_kib = r.RssBaseKiB, rss_idle_kib = r.RssIdleKiB, rss_kib_per_session = r.RssKiBPerSession,
            active = r.ActiveSessions, duration_s = r.DurationSeconds, round_trips = r.RoundTrips, messages_per_s = r.MessagesPerSecond,
            rtt_p50_ms = r.RoundTrip.P50, rtt_p95_ms = r.RoundTrip.P95, rtt_p99_ms = r.RoundTrip.P99, rtt_max_ms = r.RoundTrip.Max,
            server_cpu_cores = r.CpuCores, server_jit_cores = r.JitCores, warmup_s = r.WarmupSeconds, warmup_last_second_jit_cores = r.WarmupJitCores,
            termination_p50_ms = r.Termination?.P50, termination_p99_ms = r.Termination?.P99,
            termination_answer_p50_ms = r.TerminationAnswer?.P50, termination_answer_p99_ms = r.TerminationAnswer?.P99,
            bot_message_p50_ms = r.BotMessage?.P50, bot_message_p99_ms = r.BotMessage?.P99, bulk_terminate_count = r.BulkCount, bulk_terminate_s = r.BulkSeconds,
            bulk_terminate_answer_s = r.BulkAnswerSeconds, bulk_terminate_calls_count = r.BulkCallsCount, bulk_terminate_calls_s = r.BulkCallsSeconds,
            bulk_terminate_fresh_set = r.BulkFreshSet, bulk_terminate_warmup_first_s = r.BulkWarmupSeconds,
            bulk_terminate_runs_s = r.BulkRunSeconds, bulk_terminate_runs_cpu_s = r.BulkRunCpuSeconds, termination_count = r.Termination?.Count, commit_groups_per_s = r.CommitGroupsPerSecond,
            writes_per_commit_group = r.WritesPerGroup, server_cpu_s_per_message = r.CpuSecondsPerMessage,
        };
    }
}
