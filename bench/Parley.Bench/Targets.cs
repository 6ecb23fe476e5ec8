using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Parley.Bench;

/// <summary>A server under test, run as its own process so its memory and CPU can be read from /proc.</summary>
public abstract class Target : IAsyncDisposable
{
    public abstract string Name { get; }
    public Process Process { get; private set; } = null!;
    public Uri Base { get; private set; } = null!;
    protected HttpClient Http { get; private set; } = null!;
    public virtual bool CanTerminate => false;
    public virtual string DeploymentId => "bench";

    public static string RepoRoot { get; } = FindRoot();

    static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Parley.slnx"))) return dir.FullName;
        throw new InvalidOperationException("run the bench from inside the Parley repository");
    }

    public static Target Create(string name) => name switch
    {
        "parley" => new ParleyTarget(),
        "raw" => new DotnetBaseline("raw", "bench/baselines/RawRelay/bin/Release/net10.0/RawRelay.dll"),
        "signalr" => new SignalRTarget(),
        "signalr-ef" => new SignalREfTarget(),
        "node" => new NodeBaseline(),
        // The same server at the durability levels Parley:Storage:Durability offers (full is the default: "parley").
        "parley-os" => new ParleyTarget(name, new Dictionary<string, string> { ["Parley__Storage__Durability"] = "os" }),
        "parley-interval" => new ParleyTarget(name, new Dictionary<string, string> { ["Parley__Storage__Durability"] = "interval" }),
        // An A/B of a setting in one run: "parley:NAME=VALUE+NAME=VALUE" is Parley with those environment variables.
        _ when name.StartsWith("parley:", StringComparison.Ordinal) => new ParleyTarget(name, EnvironmentOf(name["parley:".Length..])),
        _ => throw new ArgumentException($"unknown target {name}: {string.Join(", ", Names)}"),
    };

    public static readonly string[] Names = ["parley", "parley-os", "parley-interval", "raw", "signalr", "signalr-ef", "node"];

    /// <summary>A known target's name, or Parley with settings of its own (<c>parley:NAME=VALUE+…</c>).</summary>
    public static bool IsKnown(string name) => Names.Contains(name) || name.StartsWith("parley:", StringComparison.Ordinal);

    static Dictionary<string, string> EnvironmentOf(string settings) =>
        settings.Split('+', StringSplitOptions.RemoveEmptyEntries).Select(s => s.Split('=', 2)).ToDictionary(
            kv => kv[0], kv => kv.Length == 2 ? kv[1] : throw new ArgumentException($"'{string.Join('=', kv)}': a setting is NAME=VALUE"));

    /// <summary>The server's commit groups so far (Parley's parley.store.commit.group_size histogram: count, sum), or null.</summary>
    public virtual Task<(double Groups, double Writes)?> CommitGroupsAsync() => Task.FromResult<(double, double)?>(null);

    protected abstract ProcessStartInfo StartInfo(int port);

    public async Task StartAsync()
    {
        var port = FreePort();
        var info = StartInfo(port);
        info.RedirectStandardOutput = true;
        info.RedirectStandardError = true;
        info.UseShellExecute = false;
        Process = Process.Start(info)!;
        Process.OutputDataReceived += (_, e) => Remember(e.Data);
        Process.ErrorDataReceived += (_, e) =>
        {
            Remember(e.Data);
            if (e.Data is { Length: > 0 } line && Verbose) Console.Error.WriteLine($"[{Name}] {line}");
        };
        Process.BeginOutputReadLine();
        Process.BeginErrorReadLine();
        Base = new Uri($"http://127.0.0.1:{port}");
        Http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 128, PooledConnectionLifetime = TimeSpan.FromMinutes(10) })
            { BaseAddress = Base, Timeout = TimeSpan.FromSeconds(60) };
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            if (Process.HasExited)
            {
                await Process.WaitForExitAsync();   // its output read to the end
                // A setting this build does not offer yet (a durability level before its branch lands): the target is skipped.
                if (LastOutput() is var output && output.Contains("is not a Parley setting", StringComparison.Ordinal))
                    throw new TargetUnavailableException($"{Name}: {output.Split(Environment.NewLine).First(l => l.Contains("is not a Parley setting"))}");
                throw new InvalidOperationException($"{Name} exited with {Process.ExitCode} at start:{Environment.NewLine}{LastOutput()}");
            }
            try
            {
                using var probe = new TcpClient();
                await probe.ConnectAsync(IPAddress.Loopback, port);
                break;
            }
            catch (SocketException) when (DateTime.UtcNow < deadline) { await Task.Delay(100); }
        }
        await AfterStartAsync();
    }

    public static bool Verbose { get; set; }

    // The server's last lines of output, shown when it fails to start.
    readonly Queue<string> _lastLines = new();

    void Remember(string? line)
    {
        if (line is not { Length: > 0 }) return;
        lock (_lastLines)
        {
            _lastLines.Enqueue(line.Length > 500 ? line[..500] : line);
            if (_lastLines.Count > 60) _lastLines.Dequeue();
        }
    }

    public string LastOutput() { lock (_lastLines) return string.Join(Environment.NewLine, _lastLines); }

    protected virtual Task AfterStartAsync() => Task.CompletedTask;

    static int FreePort()
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        var port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }

    public virtual Uri SocketUri => new($"ws://127.0.0.1:{Base.Port}/v1?deploymentId={DeploymentId}");
    public virtual BenchConnection NewConnection() => new GuestConnection();

    /// <summary>A guest connected and configured here, or null when the target refused it (the caller counts refusals).</summary>
    public async Task<BenchConnection?> TryConnectGuestAsync(int source, TimeSpan timeout)
    {
        var g = NewConnection();
        try
        {
            await g.ConnectAsync(SocketUri, source, CancellationToken.None);
            await g.ConfigureAsync(DeploymentId, timeout);
            return g;
        }
        catch (Exception)
        {
            await g.DisposeAsync();
            return null;
        }
    }

    /// <summary>Gets these guests ready for bot replies (Parley: a conversation each, and its ids).</summary>
    public virtual Task PrepareAsync(IReadOnlyList<BenchConnection> guests, bool needBotCommunication) => Task.CompletedTask;

    /// <summary>The bot's reply to a guest, as its backend would send it.</summary>
    public virtual async Task BotReplyAsync(BenchConnection guest, string text)
    {
        using var response = await Http.PostAsJsonAsync($"/send/{Uri.EscapeDataString(guest.Token)}", new { textBody = text });
        response.EnsureSuccessStatusCode();
    }

    public virtual Task<HttpResponseMessage> TerminateAsync(BenchConnection guest) => throw new NotSupportedException();

    public long RssKiB()
    {
        foreach (var line in File.ReadLines($"/proc/{Process.Id}/status"))
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal)) return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]);
        return 0;
    }

    /// <summary>User + system CPU seconds the server process has used.</summary>
    public double CpuSeconds() => CpuSecondsOf(File.ReadAllText($"/proc/{Process.Id}/stat"));

    /// <summary>User + system CPU seconds of a process's or thread's <c>/proc/…/stat</c> line.</summary>
    static double CpuSecondsOf(string stat)
    {
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return (long.Parse(fields[11]) + long.Parse(fields[12])) / 100.0;   // utime, stime in clock ticks (USER_HZ = 100)
    }

    /// <summary>
    /// CPU seconds of the server's JIT threads (the .NET runtime's tiered-compilation thread, ".NET Tiered Compilation",
    /// which the runtime ends when idle and starts again when needed), by thread id; empty for a server without one (Node).
    /// </summary>
    public Dictionary<int, double> JitThreads()
    {
        var threads = new Dictionary<int, double>();
        foreach (var task in Directory.EnumerateDirectories($"/proc/{Process.Id}/task"))
        {
            try
            {
                var stat = File.ReadAllText(Path.Combine(task, "stat"));
                var open = stat.IndexOf('(');
                var close = stat.LastIndexOf(')');
                if (!stat.AsSpan(open + 1, close - open - 1).StartsWith(".NET Tiered", StringComparison.Ordinal)) continue;
                threads[int.Parse(stat.AsSpan(0, open - 1))] = CpuSecondsOf(stat);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }   // a thread that ended meanwhile
        }
        return threads;
    }

    /// <summary>
    /// JIT CPU seconds since <paramref name="before"/> (<see cref="JitThreads"/>): each thread's growth, a thread started
    /// since counted whole. What a thread that ended in between did after <paramref name="before"/> is not seen.
    /// </summary>
    public double JitCpuSecondsSince(Dictionary<int, double> before) =>
        JitThreads().Sum(t => t.Value - before.GetValueOrDefault(t.Key));

    public virtual async ValueTask DisposeAsync()
    {
        Http?.Dispose();
        if (Process is { HasExited: false })
        {
            Process.Kill(entireProcessTree: true);
            await Process.WaitForExitAsync();
        }
    }
}

/// <summary>The server refused a setting the target needs: reported as not measured, the run goes on.</summary>
public sealed class TargetUnavailableException(string message) : Exception(message);

public class DotnetBaseline(string name, string dll) : Target
{
    public override string Name => name;
    protected override ProcessStartInfo StartInfo(int port) =>
        new("dotnet", [Path.Combine(RepoRoot, dll), "--urls", $"http://127.0.0.1:{port}"]);
}

public sealed class SignalRTarget() : DotnetBaseline("signalr", "bench/baselines/SignalRRelay/bin/Release/net10.0/SignalRRelay.dll")
{
    public override Uri SocketUri => new($"ws://127.0.0.1:{Base.Port}/hub");
    public override BenchConnection NewConnection() => new SignalRConnection();
}

/// <summary>
/// The fair durable baseline: the SignalR hub storing each message with EF Core on SQLite (WAL, synchronous=FULL, one
/// SaveChanges per message) in a fresh folder on the same disk as Parley's.
/// </summary>
public sealed class SignalREfTarget : Target
{
    readonly string _data = Path.Combine(Path.GetTempPath(), "signalr-ef-bench-" + Guid.NewGuid().ToString("N"));
    public override string Name => "signalr-ef";
    public override Uri SocketUri => new($"ws://127.0.0.1:{Base.Port}/hub");
    public override BenchConnection NewConnection() => new SignalRConnection();

    protected override ProcessStartInfo StartInfo(int port)
    {
        Directory.CreateDirectory(_data);
        return new("dotnet", [Path.Combine(RepoRoot, "bench/baselines/SignalREfRelay/bin/Release/net10.0/SignalREfRelay.dll"), "--urls", $"http://127.0.0.1:{port}",
            $"--ConnectionStrings:Messages=Data Source={Path.Combine(_data, "messages.db")}"]);
    }

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        try { Directory.Delete(_data, recursive: true); } catch (IOException) { }
    }
}

public sealed class NodeBaseline : Target
{
    public override string Name => "node";
    protected override ProcessStartInfo StartInfo(int port) =>
        new("node", [Path.Combine(RepoRoot, "bench/baselines/node-ws/relay.js"), port.ToString()]);
}

/// <summary>
/// Parley itself: by default the embedded SQLite store in a fresh folder, the demo deployment and OAuth client. A node of
/// a cluster (<see cref="Cluster"/>) is the same server with its store and backplane chosen by <paramref name="environment"/>.
/// </summary>
public sealed class ParleyTarget(string name = "parley", IReadOnlyDictionary<string, string>? environment = null) : Target
{
    readonly string _data = Path.Combine(Path.GetTempPath(), "parley-bench-" + Guid.NewGuid().ToString("N"));
    public override string Name => name;
    public override bool CanTerminate => true;
    public override string DeploymentId => "d1e2a3b4-0000-4000-8000-000000000001";
    public int? MaxGuestSockets { get; init; }

    protected override ProcessStartInfo StartInfo(int port)
    {
        var info = new ProcessStartInfo("dotnet", [Path.Combine(RepoRoot, "src/Parley.Server/bin/Release/net10.0/parley.dll"), "--urls", $"http://127.0.0.1:{port}"]);
        info.Environment["PARLEY_DATA_DIR"] = _data;
        // A load test: thousands of guests from one address, each faster than a person. Raised for this server only.
        info.Environment["Parley__Demo__GuestMessagesPerSecond"] = "10000";
        info.Environment["Parley__Limits__GuestMessagesPerAddressPerSecond"] = "0";
        info.Environment["Logging__LogLevel__Default"] = "Warning";
        // The load tool opens up to 10,000 guests per loopback address, far past the per-address defaults meant for strangers.
        info.Environment["Parley__Limits__MaxConnectionsPerAddress"] = "1000000";
        info.Environment["Parley__Limits__NewSessionsPerAddressPerMinute"] = "1000000";
        info.Environment["Parley__Limits__NewSessionsPerDeploymentPerMinute"] = "1000000";
        // Guests may take all but a little of the open-file budget here (the server inherits this process's limit and keeps
        // 512 of it in reserve): the bench makes few plain HTTP calls.
        info.Environment["Parley__Limits__MaxGuestSockets"] = (MaxGuestSockets ?? Math.Max(1000, OpenFileLimit() - 600)).ToString();
        foreach (var (key, value) in environment ?? new Dictionary<string, string>()) info.Environment[key] = value;
        return info;
    }

    static int OpenFileLimit()
    {
        var line = File.Exists("/proc/self/limits") ? File.ReadLines("/proc/self/limits").FirstOrDefault(l => l.StartsWith("Max open files")) : null;
        return line?.Split(' ', StringSplitOptions.RemoveEmptyEntries)[3] is { } soft && int.TryParse(soft, out var limit) ? limit : 20_000;
    }

    protected override async Task AfterStartAsync()
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/oauth/token")
            { Content = new FormUrlEncodedContent([new("grant_type", "client_credentials")]) };
        request.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String("parley-demo-client:parley-demo-secret"u8.ToArray()));
        using var response = await Http.SendAsync(request);
        response.EnsureSuccessStatusCode();
        var token = (await response.Content.ReadFromJsonAsync<JsonObject>())!["access_token"]!.GetValue<string>();
        Http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
    }

    public override async Task PrepareAsync(IReadOnlyList<BenchConnection> guests, bool needBotCommunication)
    {
        var timeout = TimeSpan.FromSeconds(30);
        await Parallel.ForEachAsync(guests, new ParallelOptions { MaxDegreeOfParallelism = 32 }, async (g, _) =>
        {
            var t = await g.SendTextAsync("hello");
            await g.NextAsync(f => f.TracingId == t, timeout);
            g.SessionId = await g.JwtSubjectAsync(timeout);
        });
        var bySession = new Dictionary<string, string>();
        // The session listing is paged (at most 100 a page): read every page.
        for (var page = 1; ; page++)
        {
            using var doc = JsonDocument.Parse(await Http.GetStringAsync(
                $"/api/v2/parley/webmessaging/sessions?deploymentId={DeploymentId}&pageSize=100&pageNumber={page}"));
            foreach (var s in doc.RootElement.GetProperty("entities").EnumerateArray())
                if (s.TryGetProperty("conversationId", out var c) && c.ValueKind == JsonValueKind.String)
                    bySession[s.GetProperty("id").GetString()!] = c.GetString()!;
            if (page >= doc.RootElement.GetProperty("pageCount").GetInt32()) break;
        }
        foreach (var g in guests) g.ConversationId = bySession[g.SessionId!];
        if (!needBotCommunication) return;
        await Parallel.ForEachAsync(guests, new ParallelOptions { MaxDegreeOfParallelism = 32 }, async (g, _) =>
        {
            using var doc = JsonDocument.Parse(await Http.GetStringAsync($"/api/v2/conversations/{g.ConversationId}"));
            foreach (var p in doc.RootElement.GetProperty("participants").EnumerateArray())
                if (p.GetProperty("purpose").GetString() == "workflow") g.BotCommunicationId = p.GetProperty("messages")[0].GetProperty("id").GetString();
        });
    }

    public override async Task BotReplyAsync(BenchConnection guest, string text)
    {
        using var response = await Http.PostAsJsonAsync(
            $"/api/v2/conversations/messages/{guest.ConversationId}/communications/{guest.BotCommunicationId}/messages", new { textBody = text });
        await EnsureSuccessAsync(response);
    }

    /// <summary>A failed call stops the run with what the server said (its error body, clipped), not only the status.</summary>
    public async Task EnsureSuccessAsync(HttpResponseMessage response)
    {
        if (response.IsSuccessStatusCode) return;
        var body = await response.Content.ReadAsStringAsync();
        throw new HttpRequestException($"{Name}: {response.RequestMessage?.Method} {response.RequestMessage?.RequestUri?.AbsolutePath} answered " +
                                       $"{(int)response.StatusCode}: {(body.Length > 500 ? body[..500] + "…" : body)}");
    }

    /// <summary>The bot starts a conversation with each guest, tagged with <paramref name="campaign"/> (what a bulk termination selects).</summary>
    public async Task StartTaggedAsync(IReadOnlyList<BenchConnection> guests, string campaign)
    {
        var timeout = TimeSpan.FromSeconds(30);
        await Parallel.ForEachAsync(guests, new ParallelOptions { MaxDegreeOfParallelism = 32 }, async (g, _) =>
        {
            g.SessionId = await g.JwtSubjectAsync(timeout);
            using var response = await Http.PostAsJsonAsync("/api/v2/conversations/messages/agentless", new
            {
                fromAddress = DeploymentId, toAddress = g.SessionId, toAddressMessengerType = "webmessaging", textBody = "campaign", campaign,
            });
            await EnsureSuccessAsync(response);
            using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
            g.ConversationId = doc.RootElement.GetProperty("conversationId").GetString();
            await g.NextAsync(f => f.Direction == "Outbound" && f.TracingId is null, timeout);
        });
    }

    public sealed record BulkJob(string Id, bool Accepted, JsonElement Answer);
    /// <param name="ServerSeconds">From the job's creation to its completion as the server stamped them (millisecond times).</param>
    public sealed record BulkCounts(int Matched, int Ended, int AlreadyEnded, int Failed, int SocketsNotified, int ChannelsNotified, double ServerSeconds)
    {
        /// <summary>Answered 202 (run as a job) rather than 200.</summary>
        public bool Accepted { get; init; }

        /// <summary>The server's CPU seconds (all its threads) from the call until every socket had its Disconnect.</summary>
        public double CpuSeconds { get; init; }
    }

    /// <summary>One <c>POST /api/v2/parley/terminations</c> for every live conversation of the campaign.</summary>
    public async Task<BulkJob> BulkTerminateAsync(string campaign)
    {
        using var response = await Http.PostAsJsonAsync("/api/v2/parley/terminations", new { filter = new { campaign }, reason = "bench" });
        await EnsureSuccessAsync(response);
        var answer = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.Clone();
        return new BulkJob(answer.GetProperty("id").GetString()!, (int)response.StatusCode == 202, answer);
    }

    /// <summary>The final counts: the 200 answer's, or the job's once it is no longer PENDING.</summary>
    public async Task<BulkCounts> AwaitTerminationAsync(BulkJob job)
    {
        var answer = job.Answer;
        for (var deadline = Stopwatch.StartNew(); answer.GetProperty("state").GetString() == "PENDING"; )
        {
            if (deadline.Elapsed > TimeSpan.FromSeconds(60)) throw new TimeoutException($"bulk termination {job.Id} still PENDING after 60 s");
            await Task.Delay(100);
            answer = JsonDocument.Parse(await Http.GetStringAsync($"/api/v2/parley/terminations/{job.Id}")).RootElement.Clone();
        }
        if (answer.GetProperty("state").GetString() != "FULFILLED") throw new InvalidOperationException($"bulk termination {job.Id}: {answer}");
        int N(string name) => answer.TryGetProperty(name, out var v) ? v.GetInt32() : 0;
        var server = (DateTimeOffset.Parse(answer.GetProperty("dateCompleted").GetString()!, System.Globalization.CultureInfo.InvariantCulture)
            - DateTimeOffset.Parse(answer.GetProperty("dateCreated").GetString()!, System.Globalization.CultureInfo.InvariantCulture)).TotalSeconds;
        return new BulkCounts(N("matched"), N("ended"), N("alreadyEnded"), N("failed"), N("socketsNotified"), N("channelsNotified"), server);
    }

    public override Task<HttpResponseMessage> TerminateAsync(BenchConnection guest) =>
        Http.PostAsync($"/api/v2/conversations/{guest.ConversationId}/disconnect", null);

    /// <summary>
    /// Sums the commit group histogram's <c>_count</c> and <c>_sum</c> series from <c>GET /metrics</c> (Prometheus text, on
    /// by default); null when the scrape endpoint is off or does not have it.
    /// </summary>
    public override async Task<(double Groups, double Writes)?> CommitGroupsAsync()
    {
        try
        {
            using var response = await Http.GetAsync("/metrics");
            if (!response.IsSuccessStatusCode) return null;
            double groups = 0, writes = 0;
            var found = false;
            foreach (var line in (await response.Content.ReadAsStringAsync()).Split('\n'))
            {
                if (!line.StartsWith("parley_store_commit_group_size", StringComparison.Ordinal)) continue;
                var name = line[..line.IndexOfAny(['{', ' '])];
                // name{labels} value [timestamp]
                var rest = line[(line.LastIndexOf('}') is var brace and >= 0 ? brace + 1 : name.Length)..].Trim();
                var value = double.Parse(rest.Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture);
                if (name.EndsWith("_count", StringComparison.Ordinal)) { groups += value; found = true; }
                else if (name.EndsWith("_sum", StringComparison.Ordinal)) writes += value;
            }
            return found ? (groups, writes) : null;
        }
        catch (HttpRequestException) { return null; }
    }

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        try { Directory.Delete(_data, recursive: true); } catch (IOException) { }
    }
}
