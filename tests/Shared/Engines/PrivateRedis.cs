using System.Diagnostics;
using System.Security.Cryptography;

namespace Parley.Testing;

/// <summary>
/// A Redis of the test's own, so a fault test can stop it without touching the shared one other tests use: a
/// <c>redis-server</c> child process on a free loopback port, in a temp folder, with a password and no persistence
/// (it only carries events between nodes). Stopped, killed and started again on the same port, so the nodes'
/// connection string stays valid and their clients reconnect by themselves. The one copy for the engine and cluster
/// suites (linked from tests/Shared/Engines).
/// </summary>
public sealed class PrivateRedis : IAsyncDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("parley-redis-").FullName;
    readonly string _password = Convert.ToHexString(RandomNumberGenerator.GetBytes(16)).ToLowerInvariant();
    Process? _process;
    readonly Queue<string> _log = new();

    public int Port { get; } = EngineProcess.FreePort();
    /// <summary>A StackExchange.Redis configuration string (what <c>ConnectionStrings__Redis</c> holds).</summary>
    public string ConnectionString => $"127.0.0.1:{Port},password={_password}";
    public bool IsRunning => _process is { HasExited: false };

    /// <summary>A port and a password, with no server yet (nodes pointed at it find Redis away); <see cref="StartServerAsync"/> starts it.</summary>
    public PrivateRedis() { }

    public static async Task<PrivateRedis> StartAsync()
    {
        var redis = new PrivateRedis();
        try { await redis.StartServerAsync(); }
        catch { await redis.DisposeAsync(); throw; }
        return redis;
    }


    /// <summary>A clean shutdown (SIGTERM): clients see their connections closed.</summary>
    public async Task StopAsync()
    {
        if (_process is not { HasExited: false } p) return;
        await EngineProcess.TerminateAsync(p.Id);
        await p.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
    }

    /// <summary>SIGKILL: the server vanishes mid-stream, as a crashed or partitioned Redis does.</summary>
    public async Task KillAsync()
    {
        if (_process is not { HasExited: false } p) return;
        p.Kill();
        await p.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
    }

    /// <summary>Starts redis-server on this port (the first time, or again after a stop or a kill); returns once it accepts connections.</summary>
    public async Task StartServerAsync()
    {
        if (IsRunning) throw new InvalidOperationException("Redis is running.");
        var ready = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        // Everything on the command line: no config file to leave behind, the password never in a file.
        var info = new ProcessStartInfo("redis-server",
        [
            "--port", Port.ToString(), "--bind", "127.0.0.1", "--protected-mode", "yes", "--daemonize", "no",
            "--dir", _dir, "--save", "", "--appendonly", "no", "--requirepass", _password, "--logfile", "",
        ])
        { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        var process = Process.Start(info)!;
        void Line(string? line)
        {
            if (line is null) return;
            lock (_log) { _log.Enqueue(line); if (_log.Count > 30) _log.Dequeue(); }
            if (line.Contains("Ready to accept connections", StringComparison.Ordinal)) ready.TrySetResult();
        }
        process.OutputDataReceived += (_, e) => Line(e.Data);
        process.ErrorDataReceived += (_, e) => Line(e.Data);
        process.EnableRaisingEvents = true;
        process.Exited += (_, _) => ready.TrySetException(new InvalidOperationException($"redis-server exited at start:\n{Log}"));
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        _process = process;
        await ready.Task.WaitAsync(TimeSpan.FromSeconds(30));
    }

    public string Log { get { lock (_log) return string.Join('\n', _log); } }

    public async ValueTask DisposeAsync()
    {
        try { await KillAsync(); } catch (Exception e) when (e is InvalidOperationException or TimeoutException) { }
        _process?.Dispose();
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }
}
