using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;

namespace Parley.Testing;

/// <summary>How to start a <see cref="ParleyProcess"/>.</summary>
public sealed record ParleyProcessOptions
{
    /// <summary>The data folder (<c>PARLEY_DATA_DIR</c>). Unset: a fresh temporary folder, deleted when the process is disposed.</summary>
    public string? DataDir { get; init; }

    /// <summary>Environment for the process. Nothing Parley reads is inherited from the test runner: only what is given here.</summary>
    public IReadOnlyDictionary<string, string>? Environment { get; init; }

    /// <summary>The loopback port to listen on; 0 (the default) lets the system choose one, read back from the banner.</summary>
    public int Port { get; init; }

    /// <summary>Command-line arguments. Unset: <c>--urls http://127.0.0.1:{Port}</c>.</summary>
    public IReadOnlyList<string>? Args { get; init; }

    /// <summary>A program that starts Parley, e.g. <c>["prlimit", "--nofile=1024:1024"]</c>; empty: dotnet itself.</summary>
    public IReadOnlyList<string> Wrapper { get; init; } = [];

    /// <summary>After the banner, poll this path until it answers 200 (/readyz: store and backplane ready; null: the banner is enough).</summary>
    public string? ReadyPath { get; init; } = "/readyz";

    /// <summary>The process's working directory (where Parley's default data folder would be); unset: the runner's.</summary>
    public string? WorkingDirectory { get; init; }

    /// <summary>How long a start may take before it is a failure (a node on PostgreSQL migrates first; the box is loaded).</summary>
    public TimeSpan StartTimeout { get; init; } = TimeSpan.FromSeconds(60);
}

/// <summary>
/// Parley as its own process, from the built entry point (parley.dll beside the tests): started with a given environment,
/// waited for (the banner's address, then the ready path), stopped (SIGTERM, a graceful shutdown) or killed (SIGKILL, no
/// flush, no goodbye). Its output is kept: all of it up to a bound, the last lines, and the first errors it logged.
/// The one copy of this code for every test project that needs a real process (linked from tests/Shared).
/// </summary>
public sealed partial class ParleyProcess : IAsyncDisposable
{
    [GeneratedRegex(@"Parley is listening on ((?:http|https)://[^\s,]+)")]
    private static partial Regex Listening();

    /// <summary>Variables of the runner's environment that would change a test's outcome if inherited.</summary>
    static bool Inheritable(string name) =>
        !name.StartsWith("PARLEY_", StringComparison.OrdinalIgnoreCase)
        && !name.StartsWith("Parley__", StringComparison.OrdinalIgnoreCase)
        && !name.StartsWith("ConnectionStrings__", StringComparison.OrdinalIgnoreCase)
        && name is not ("ASPNETCORE_URLS" or "ASPNETCORE_HTTP_PORTS" or "ASPNETCORE_HTTPS_PORTS" or "DOTNET_URLS" or "ASPNETCORE_ENVIRONMENT");

    const int OutputBound = 1 << 20;   // characters kept of each stream

    readonly Process _process;
    readonly bool _ownsDataDir;
    readonly ParleyProcessOptions _options;
    readonly StringBuilder _stdout = new(), _stderr = new();
    readonly Queue<string> _tail = new();
    readonly List<string> _errors = [];
    readonly TaskCompletionSource<Uri> _listening = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public string DataDir { get; }
    /// <summary>The address from the banner (after <see cref="StartAsync"/> or <see cref="ListeningAsync"/>).</summary>
    public Uri BaseAddress { get; private set; } = null!;
    public int Id => _process.Id;
    public bool HasExited => _process.HasExited;

    ParleyProcess(ParleyProcessOptions options)
    {
        _options = options;
        _ownsDataDir = options.DataDir is null;
        DataDir = options.DataDir ?? Path.Combine(Path.GetTempPath(), "parley-proc-" + Guid.NewGuid().ToString("N"));
        var parley = Path.Combine(AppContext.BaseDirectory, "parley.dll");
        string[] args = [.. options.Args ?? ["--urls", $"http://127.0.0.1:{options.Port}"]];
        var info = options.Wrapper.Count == 0
            ? new ProcessStartInfo("dotnet", [parley, .. args])
            : new ProcessStartInfo(options.Wrapper[0], [.. options.Wrapper.Skip(1), "dotnet", parley, .. args]);
        info.RedirectStandardOutput = info.RedirectStandardError = true;
        info.UseShellExecute = false;
        if (options.WorkingDirectory is { } cwd) info.WorkingDirectory = cwd;
        foreach (var name in info.Environment.Keys.Where(k => !Inheritable(k)).ToList()) info.Environment.Remove(name);
        info.Environment["PARLEY_DATA_DIR"] = DataDir;
        foreach (var (key, value) in options.Environment ?? new Dictionary<string, string>()) info.Environment[key] = value;

        _process = new Process { StartInfo = info, EnableRaisingEvents = true };
        _process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is not { } line) return;
            Keep(_stdout, line);
            if (Listening().Match(line) is { Success: true } m) _listening.TrySetResult(new Uri(m.Groups[1].Value));
        };
        _process.ErrorDataReceived += (_, e) => { if (e.Data is { } line) Keep(_stderr, line); };
        _process.Exited += (_, _) => _listening.TrySetException(new InvalidOperationException(
            $"Parley exited before it listened (exit code {SafeExitCode()}):\n{Tail}"));
        _process.Start();
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    /// <summary>Starts the process and returns at once (a test that expects it to refuse to start reads its exit code).</summary>
    public static ParleyProcess Launch(ParleyProcessOptions? options = null) => new(options ?? new());

    /// <summary>Starts the process with these arguments and environment and returns at once (<see cref="Launch"/>).</summary>
    public static Task<ParleyProcess> RunAsync(string[] args, Dictionary<string, string>? environment = null) =>
        Task.FromResult(Launch(new ParleyProcessOptions { Args = args, Environment = environment }));

    /// <summary>Starts the process and waits until it listens and its ready path answers; throws with its output if it does not.</summary>
    public static async Task<ParleyProcess> StartAsync(ParleyProcessOptions? options = null)
    {
        var process = Launch(options);
        try { await process.ReadyAsync(); }
        catch { await process.DisposeAsync(); throw; }
        return process;
    }

    /// <summary>The common case: a process on <paramref name="dataDir"/> with <paramref name="environment"/>.</summary>
    public static Task<ParleyProcess> StartAsync(string dataDir, IReadOnlyDictionary<string, string>? environment = null) =>
        StartAsync(new ParleyProcessOptions { DataDir = dataDir, Environment = environment });

    /// <summary>The address Parley says it listens on; throws (with its output) if it exits first.</summary>
    public async Task<Uri> ListeningAsync()
    {
        BaseAddress = await _listening.Task.WaitAsync(_options.StartTimeout);
        return BaseAddress;
    }

    async Task ReadyAsync()
    {
        var address = await ListeningAsync();
        if (_options.ReadyPath is not { } path) return;
        using var http = new HttpClient { BaseAddress = address, Timeout = TimeSpan.FromSeconds(5) };
        var deadline = DateTime.UtcNow + _options.StartTimeout;
        while (true)
        {
            if (_process.HasExited) throw new InvalidOperationException($"Parley exited while starting:\n{Tail}");
            try
            {
                using var response = await http.GetAsync(path);
                if (response.IsSuccessStatusCode) return;
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException) { }
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"Parley did not answer {path} within {_options.StartTimeout}:\n{Tail}");
            await Task.Delay(50);   // polling the process's own readiness, not synchronising a test on an event
        }
    }

    void Keep(StringBuilder stream, string line)
    {
        lock (_tail)
        {
            if (stream.Length < OutputBound) stream.AppendLine(line);
            _tail.Enqueue(line);
            if (_tail.Count > 60) _tail.Dequeue();
            if (_errors.Count < 20 && (line.Contains(" fail: ") || line.Contains(" crit: ") || line.StartsWith("fail: ") || line.StartsWith("crit: ")))
                _errors.Add(line);
        }
    }

    public string Stdout { get { lock (_tail) return _stdout.ToString(); } }
    public string Stderr { get { lock (_tail) return _stderr.ToString(); } }
    /// <summary>The last lines the process wrote (both streams, in arrival order).</summary>
    public string Tail { get { lock (_tail) return string.Join('\n', _tail); } }
    /// <summary>The first errors Parley logged (fail and crit lines).</summary>
    public IReadOnlyList<string> Errors { get { lock (_tail) return [.. _errors]; } }

    /// <summary>SIGKILL: the process gets no chance to flush or say goodbye.</summary>
    public void Kill()
    {
        try { _process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
    }

    /// <summary>SIGTERM, as a service manager stops it: a graceful shutdown. Returns the exit code.</summary>
    public async Task<int> StopAsync(TimeSpan? timeout = null)
    {
        if (!_process.HasExited)
            using (var kill = Process.Start("kill", ["-TERM", _process.Id.ToString()])) await kill.WaitForExitAsync();
        return await ExitCodeAsync(timeout);
    }

    /// <summary>Waits for the process to end (its output drained) and returns its exit code.</summary>
    public async Task<int> ExitCodeAsync(TimeSpan? timeout = null)
    {
        await _process.WaitForExitAsync().WaitAsync(timeout ?? TimeSpan.FromSeconds(60));
        _process.WaitForExit();   // drains the redirected output
        return _process.ExitCode;
    }

    int? SafeExitCode()
    {
        try { return _process.ExitCode; } catch (InvalidOperationException) { return null; }
    }

    /// <summary>Peak resident memory so far (VmHWM), in bytes.</summary>
    public long PeakRssBytes => ReadStatus("VmHWM:");

    /// <summary>Resident memory now (VmRSS), in bytes.</summary>
    public long RssBytes => ReadStatus("VmRSS:");

    long ReadStatus(string field)
    {
        var line = File.ReadLines($"/proc/{_process.Id}/status").First(l => l.StartsWith(field, StringComparison.Ordinal));
        return long.Parse(line[field.Length..].Trim().Split(' ')[0]) * 1024;   // "VmHWM:   123456 kB"
    }

    public async ValueTask DisposeAsync()
    {
        Kill();
        try { await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30)); } catch (TimeoutException) { }
        _process.Dispose();
        if (_ownsDataDir) try { Directory.Delete(DataDir, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
