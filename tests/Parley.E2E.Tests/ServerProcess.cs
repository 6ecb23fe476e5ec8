using System.Diagnostics;
using System.Text.RegularExpressions;

namespace Parley.E2E.Tests;

/// <summary>
/// Parley as its own process on a data folder: started, killed with SIGKILL (no shutdown, no flush), restarted on the
/// same folder. Its peak memory is read from /proc, and the tail of its output kept for when it dies by itself.
/// </summary>
public sealed partial class ServerProcess : IAsyncDisposable
{
    [GeneratedRegex(@"Parley is listening on (http://[^\s,]+)")]
    private static partial Regex Listening();

    readonly Process _process;
    readonly Queue<string> _tail = new();

    public Uri BaseAddress { get; private set; } = null!;
    public int Id => _process.Id;
    public bool HasExited => _process.HasExited;

    ServerProcess(Process process) => _process = process;

    public static async Task<ServerProcess> StartAsync(string dataDir, IReadOnlyDictionary<string, string>? environment = null)
    {
        var info = new ProcessStartInfo("dotnet", [Path.Combine(AppContext.BaseDirectory, "parley.dll"), "--urls", "http://127.0.0.1:0"])
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        info.Environment["PARLEY_DATA_DIR"] = dataDir;
        // Only what the test gives: a secret or listen address inherited from the runner's environment would change the outcome.
        foreach (var inherited in new[] { "PARLEY_DEMO_CLIENT_SECRET", "Parley__Demo__ClientSecret", "ASPNETCORE_URLS", "ASPNETCORE_HTTP_PORTS",
                     "ASPNETCORE_HTTPS_PORTS", "DOTNET_URLS" })
            info.Environment.Remove(inherited);
        foreach (var (key, value) in environment ?? new Dictionary<string, string>()) info.Environment[key] = value;
        var server = new ServerProcess(Process.Start(info)!);
        var address = new TaskCompletionSource<Uri>(TaskCreationOptions.RunContinuationsAsynchronously);
        server._process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is not { } line) return;
            server.Keep(line);
            if (Listening().Match(line) is { Success: true } m) address.TrySetResult(new Uri(m.Groups[1].Value));
        };
        server._process.ErrorDataReceived += (_, e) => { if (e.Data is { } line) server.Keep(line); };
        server._process.Exited += (_, _) => address.TrySetException(new InvalidOperationException($"Parley exited at start:\n{server.Tail}"));
        server._process.EnableRaisingEvents = true;
        server._process.BeginOutputReadLine();
        server._process.BeginErrorReadLine();
        try { server.BaseAddress = await address.Task.WaitAsync(TimeSpan.FromSeconds(60)); }
        catch { await server.DisposeAsync(); throw; }
        return server;
    }

    readonly List<string> _errors = [];

    void Keep(string line)
    {
        lock (_tail)
        {
            _tail.Enqueue(line);
            if (_tail.Count > 40) _tail.Dequeue();
            if (_errors.Count < 20 && (line.Contains(" fail: ") || line.Contains(" crit: "))) _errors.Add(line);
        }
    }

    /// <summary>The first errors Parley logged (fail and crit lines).</summary>
    public IReadOnlyList<string> Errors { get { lock (_tail) return [.. _errors]; } }

    /// <summary>The last lines the process wrote (stdout and stderr).</summary>
    public string Tail { get { lock (_tail) return string.Join('\n', _tail); } }

    /// <summary>SIGKILL: the process gets no chance to flush or say goodbye.</summary>
    public void Kill() => _process.Kill();

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
        try { if (!_process.HasExited) _process.Kill(); } catch (InvalidOperationException) { }
        await _process.WaitForExitAsync();
        _process.Dispose();
    }
}
