using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Parley.Bench;

/// <summary>One issue target, the figure this run measured for it, and whether it was met (null: not measured as asked).</summary>
public sealed record TargetVerdict(string Target, string Result, bool? Met)
{
    public string Verdict => Met switch { true => "**met**", false => "**not met**", null => "not measured as asked" };
}

/// <summary>A machine the projection is checked against.</summary>
public sealed record MachineShape(string Name, int Cores, double MemoryGiB, long OpenFiles);

/// <summary>How many sessions one resource allows at the projection's message rate.</summary>
public sealed record Limit(string Resource, double Available, string Unit, double MaxSessions);

/// <summary>
/// One node at <see cref="Sessions"/> sessions, projected from this run's slopes: RSS per session (a least-squares line over
/// the scaling table's Parley rows, or the main run's single point), server CPU seconds per message and commit groups
/// under the steady load, and one descriptor per guest socket.
/// </summary>
public sealed record Projection(
    int Sessions, double MessagesPerSessionPerMinute, string RssSource, double RssKiBPerSession, double RssInterceptMiB, double CpuMicrosecondsPerMessage,
    double MeasuredMessagesPerSecond, double? MeasuredCommitGroupsPerSecond, double? WritesPerCommitGroup,
    double MessagesPerSecond, double MemoryGiB, double Cores, double? CommitsPerSecond, long Descriptors,
    MachineShape ThisMachine, List<Limit> ThisMachineLimits, string ThisMachineFirst,
    MachineShape Typical, List<Limit> TypicalLimits, string TypicalFirst);

public sealed partial class Report
{
    static readonly JsonSerializerOptions SnakeCase = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };
    static readonly string[] Levels = ["parley", "parley-os", "parley-interval"];
    /// <summary>What the server keeps back from its open-file cap for files and plain HTTP (ParleyOptions' reserve).</summary>
    const int DescriptorReserve = 512;
    /// <summary>A typical server to project onto: stated, not measured.</summary>
    static readonly MachineShape TypicalMachine = new("typical node (assumed: 8 cores, 32 GiB, 1,048,576 open files)", 8, 32, 1_048_576);

    static string F2(double? v, string format = "0.00") => v is { } x ? x.ToString(format, CultureInfo.InvariantCulture) : "—";

    IEnumerable<string> RatioTable()
    {
        yield return "| Parley messages/s ÷ baseline (same run) | ÷ raw Kestrel | ÷ SignalR | ÷ Node `ws` | ÷ SignalR + EF Core (durable) |";
        yield return "|---|---|---|---|---|";
        foreach (var level in Levels.Where(l => Of(l) is not null))
            yield return $"| {level} | {F2(Ratio(level, "raw"))} | {F2(Ratio(level, "signalr"))} | {F2(Ratio(level, "node"))} | {F2(Ratio(level, "signalr-ef"))} |";
    }

    static string Meaning(string level) => level switch
    {
        "parley-os" => "`os`: acknowledged once the commit's write reached the OS (no fsync per commit)",
        "parley-interval" => "`interval`: as `os`, plus an fsync of the WAL at most every `FsyncIntervalMs` (10 ms)",
        _ => "`full` (default): acknowledged after the WAL is fsynced",
    };

    IEnumerable<string> DurabilityTable()
    {
        if (!Levels.Skip(1).Any(l => Of(l) is not null)) yield break;
        yield return "";
        yield return "| Parley:Storage:Durability | messages/s | × full | ÷ raw | ÷ signalr-ef | round trip p50 / p99 (ms) | server CPU (cores) | commit groups/s | writes per group |";
        yield return "|---|---|---|---|---|---|---|---|---|";
        var full = Of("parley");
        foreach (var level in Levels)
            if (Of(level) is { } r)
                yield return $"| {Meaning(level)} | {F2(r.MessagesPerSecond, "0")} | " +
                             $"{F2(full is { MessagesPerSecond: > 0 } ? r.MessagesPerSecond / full.MessagesPerSecond : null)} | {F2(Ratio(level, "raw"))} | " +
                             $"{F2(Ratio(level, "signalr-ef"))} | {F2(r.RoundTrip.P50)} / {F2(r.RoundTrip.P99)} | {F2(r.CpuCores)} | " +
                             $"{F2(r.CommitGroupsPerSecond, "0")} | {F2(r.WritesPerGroup, "0.0")} |";
    }

    JsonObject? DurabilityJson()
    {
        var full = Of("parley");
        var levels = new JsonObject();
        foreach (var level in Levels)
            if (Of(level) is { } r)
                levels[level] = new JsonObject
                {
                    ["messages_per_s"] = r.MessagesPerSecond,
                    ["ratio_vs_full"] = full is { MessagesPerSecond: > 0 } ? r.MessagesPerSecond / full.MessagesPerSecond : null,
                    ["ratio_vs_raw"] = Ratio(level, "raw"),
                    ["ratio_vs_signalr"] = Ratio(level, "signalr"),
                    ["ratio_vs_signalr_ef"] = Ratio(level, "signalr-ef"),
                    ["rtt_p99_ms"] = r.RoundTrip.P99,
                    ["server_cpu_cores"] = r.CpuCores,
                    ["commit_groups_per_s"] = r.CommitGroupsPerSecond,
                    ["writes_per_commit_group"] = r.WritesPerGroup,
                };
        return levels.Count > 0 ? levels : null;
    }

    /// <summary>Issue 15's targets, each judged from this run's numbers.</summary>
    public List<TargetVerdict> Verdicts()
    {
        var p = Of("parley");
        var list = new List<TargetVerdict>();

        // 1. Memory at 19,000 sessions (this machine's file cap): the scaling table's row, or the main run at that size.
        var at19k = Scaling.Concat(Results).Where(r => r.Target == "parley" && r.SessionsRequested >= 19_000).MaxBy(r => r.SessionsConnected);
        list.Add(at19k is null
            ? new("≤ 10 KiB per idle guest session at 19,000 sessions", "needs `--scaling …,19000` (or `--sessions 19000`)", null)
            : new("≤ 10 KiB per idle guest session at 19,000 sessions",
                $"{F2(at19k.RssKiBPerSession, "0.0")} KiB at {at19k.SessionsConnected} sessions" +
                (RssSlope() is { Points: > 1 } fit ? $" (marginal {F2(fit.Slope, "0.0")} KiB over the scaling table)" : ""),
                at19k.SessionsConnected >= 19_000 ? at19k.RssKiBPerSession <= 10 : null));

        // 2-4. Throughput ratios, same run, Parley durable (the default level).
        foreach (var (baseline, label, target) in new[] { ("raw", "raw Kestrel relay", 0.5), ("signalr", "SignalR hub", 1.5), ("signalr-ef", "SignalR + EF Core (durable)", 3.0) })
        {
            var ratio = Ratio(baseline);
            list.Add(new($"throughput ≥ {target:0.0#}× the {label}, durable",
                ratio is { } x ? $"{F2(x)}× ({F2(p!.MessagesPerSecond, "0")} vs {F2(Of(baseline)!.MessagesPerSecond, "0")} messages/s)" : $"needs targets parley and {baseline}",
                ratio is { } y ? y >= target : null));
        }

        // 5. Single termination p99 at 10,000 connected sessions, over at least 1,000 terminations.
        if (p?.Termination is { Count: > 0 } t)
        {
            var asked = t.Count >= 1000 && p.SessionsConnected >= 10_000;
            // The other levels beside (no fsync per acknowledgement), and the disk's own fsync, the floor at `full`.
            var levels = string.Concat(Levels.Skip(1).Select(l => Of(l)?.Termination is { Count: > 0 } lt ? $"; `{l["parley-".Length..]}`: p99 {F2(lt.P99)} ms" : ""));
            var floor = DiskFsync is { } disk ? $"; this disk's fdatasync alone: p50 {F2(disk.P50)} / p99 {F2(disk.P99)} ms" : "";
            list.Add(new("termination p99 ≤ 2 ms at 10,000 sessions, ≥ 1,000 terminations",
                $"p50 {F2(t.P50)} ms, p99 {F2(t.P99)} ms over {t.Count} at {p.SessionsConnected} sessions{levels}{floor}", asked ? t.P99 <= 2 : null));
        }
        else list.Add(new("termination p99 ≤ 2 ms at 10,000 sessions, ≥ 1,000 terminations", "needs target parley", null));

        // 6. Bulk termination of 10,000 sessions: the call until every socket had its Disconnect.
        list.Add(p is { BulkSeconds: { } bulk }
            ? new("bulk termination of 10,000 sessions < 1 s (every socket told)",
                $"{p.BulkCount} in {F2(bulk, "0.000")} s{(p.BulkRunSeconds is { Length: > 1 } runs ? $" (median of {runs.Length} in one process: {string.Join(", ", runs.Select(r => F2(r, "0.000")))})" : "")}" +
                $"{(p.BulkFreshSet ? " (a fresh set)" : "")}" +
                (p.BulkWarmupSeconds is { } first ? $"; the process's first (a warm-up of a few hundred): {F2(first, "0.000")} s" : ""), p.BulkCount >= 10_000 ? bulk < 1 : null)
            : new("bulk termination of 10,000 sessions < 1 s (every socket told)", "needs `--bulk 10000`", null));
        return list;
    }

    IEnumerable<string> VerdictTable()
    {
        yield return "| issue 15 target | this run | verdict |";
        yield return "|---|---|---|";
        foreach (var v in Verdicts()) yield return $"| {v.Target} | {v.Result} | {v.Verdict} |";
    }

    /// <summary>Least squares over Parley's (sessions, idle RSS) points of the scaling table: KiB per session and KiB at zero.</summary>
    (double Slope, double InterceptKiB, int Points)? RssSlope()
    {
        var points = Scaling.Where(r => r.Target == "parley" && r.SessionsConnected > 0).Select(r => (X: (double)r.SessionsConnected, Y: (double)r.RssIdleKiB)).ToList();
        if (points.Count < 2) return null;
        var (mx, my) = (points.Average(q => q.X), points.Average(q => q.Y));
        var sxx = points.Sum(q => (q.X - mx) * (q.X - mx));
        if (sxx == 0) return null;
        var slope = points.Sum(q => (q.X - mx) * (q.Y - my)) / sxx;
        return (slope, my - slope * mx, points.Count);
    }

    public Projection? Project()
    {
        if (Of("parley") is not { MessagesPerSecond: > 0, SessionsConnected: > 0 } p) return null;
        var (slope, interceptKiB, source) = RssSlope() is { } fit
            ? (fit.Slope, fit.InterceptKiB, $"least squares over {fit.Points} scaling sizes")
            : (p.RssKiBPerSession, (double)p.RssBaseKiB, $"the main run ({p.SessionsConnected} sessions)");
        var n = projectionSessions;
        var perSessionPerSecond = projectionRate / 60;
        var messagesPerSecond = n * perSessionPerSecond;
        var cpuPerMessage = p.CpuSecondsPerMessage;

        List<Limit> Limits(MachineShape m) =>
        [
            new("memory (RSS)", m.MemoryGiB, "GiB", slope > 0 ? (m.MemoryGiB * 1024 * 1024 - interceptKiB) / slope : double.PositiveInfinity),
            new("CPU", m.Cores, "cores", cpuPerMessage > 0 ? m.Cores / (perSessionPerSecond * cpuPerMessage) : double.PositiveInfinity),
            // The durable message rate this run's closed loop reached: a lower bound on capacity (one writer; not scaled to
            // the other machine's cores).
            new("durable message rate (commits; this run's rate, a lower bound)", p.MessagesPerSecond, "messages/s", p.MessagesPerSecond / perSessionPerSecond),
            new("descriptors (one per guest socket)", m.OpenFiles, "open files", m.OpenFiles - DescriptorReserve),
        ];
        static string First(List<Limit> limits) => limits.MinBy(l => l.MaxSessions)!.Resource;

        var here = new MachineShape("this machine", Environment.ProcessorCount, Math.Round(Parley.Bench.Machine.MemTotalKiB() / 1024.0 / 1024, 1), Parley.Bench.Machine.OpenFiles());
        var hereLimits = Limits(here);
        var typicalLimits = Limits(TypicalMachine);
        return new Projection(n, projectionRate, source, slope, interceptKiB / 1024, cpuPerMessage * 1e6, p.MessagesPerSecond, p.CommitGroupsPerSecond, p.WritesPerGroup,
            messagesPerSecond, (interceptKiB + slope * n) / 1024 / 1024, messagesPerSecond * cpuPerMessage,
            p.WritesPerGroup is > 0 and var w ? messagesPerSecond / w : null, n + DescriptorReserve,
            here, hereLimits, First(hereLimits), TypicalMachine, typicalLimits, First(typicalLimits));
    }

    IEnumerable<string> ProjectionTable()
    {
        if (Project() is not { } j) yield break;
        yield return $"Scale projection: {j.Sessions:N0} sessions on one node, {F2(j.MessagesPerSessionPerMinute, "0.##")} messages per session per minute " +
                     $"(guest + bot) = {F2(j.MessagesPerSecond, "0")} messages/s; slopes from this run (RSS: {j.RssSource}).";
        yield return "";
        yield return "| resource | slope measured | needed at the projection |";
        yield return "|---|---|---|";
        yield return $"| memory | {F2(j.RssKiBPerSession, "0.0")} KiB per session + {F2(j.RssInterceptMiB, "0")} MiB | {F2(j.MemoryGiB, "0.00")} GiB |";
        yield return $"| CPU | {F2(j.CpuMicrosecondsPerMessage, "0.0")} µs of server CPU per message (steady load) | {F2(j.Cores, "0.00")} cores |";
        yield return $"| commits | {F2(j.MeasuredCommitGroupsPerSecond, "0")} groups/s of {F2(j.WritesPerCommitGroup, "0.0")} writes at {F2(j.MeasuredMessagesPerSecond, "0")} messages/s | " +
                     $"{F2(j.MessagesPerSecond, "0")} messages/s: ≈ {F2(j.CommitsPerSecond, "0")} commits/s at the measured group size (at most one per message) |";
        yield return $"| descriptors | one per guest socket + {DescriptorReserve} reserved | {j.Descriptors:N0} open files |";
        yield return "";
        yield return $"| sessions one node holds, by resource | {j.ThisMachine.Name} ({j.ThisMachine.Cores} cores, {F2(j.ThisMachine.MemoryGiB, "0.0")} GiB, {j.ThisMachine.OpenFiles:N0} files) | {j.Typical.Name} |";
        yield return "|---|---|---|";
        for (var i = 0; i < j.ThisMachineLimits.Count; i++)
            yield return $"| {j.ThisMachineLimits[i].Resource} | {Sessions(j.ThisMachineLimits[i].MaxSessions)} | {Sessions(j.TypicalLimits[i].MaxSessions)} |";
        yield return $"| **runs out first** | **{j.ThisMachineFirst}** | **{j.TypicalFirst}** |";
    }

    static string Sessions(double n) => double.IsInfinity(n) ? "∞" : n.ToString("N0", CultureInfo.InvariantCulture);
}
