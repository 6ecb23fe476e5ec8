using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using System.Threading.Channels;

namespace Parley.Cli.Tests;

/// <summary>What one run of the tool printed and how it ended.</summary>
public sealed record CliResult(int ExitCode, string Stdout, string Stderr)
{
    /// <summary>Standard output as the one JSON document --json promises (fails the test if it is anything else).</summary>
    public JsonNode Json()
    {
        try { return JsonNode.Parse(Stdout) ?? throw new InvalidOperationException("null"); }
        catch (System.Text.Json.JsonException e) { throw new Xunit.Sdk.XunitException($"standard output is not one JSON document ({e.Message}):\n{Stdout}\nstderr:\n{Stderr}"); }
    }

    public override string ToString() => $"exit {ExitCode}\n--- stdout\n{Stdout}\n--- stderr\n{Stderr}";
}

/// <summary>
/// The built tool as its own process (<c>dotnet Parley.Cli.dll …</c>), with a home and config folder of its own (so a
/// test never reads or writes the runner's profiles) and none of the runner's PARLEY_* variables.
/// </summary>
public sealed class ParleyTool : IDisposable
{
    public static string Dll => Path.Combine(AppContext.BaseDirectory, "Parley.Cli.dll");

    /// <summary>The tool's HOME; <see cref="ConfigHome"/> (XDG_CONFIG_HOME) is inside it.</summary>
    public string Home { get; } = Path.Combine(Path.GetTempPath(), "parley-cli-" + Guid.NewGuid().ToString("N"));
    public string ConfigHome => Path.Combine(Home, "config");
    public string ProfilePath => Path.Combine(ConfigHome, "parley", "profiles.json");

    static readonly TimeSpan Limit = TimeSpan.FromSeconds(90);   // a loaded 2-core box starts a .NET process slowly

    public ParleyTool() => Directory.CreateDirectory(Home);

    ProcessStartInfo Info(IEnumerable<string> args, IReadOnlyDictionary<string, string>? environment)
    {
        var info = new ProcessStartInfo("dotnet", [Dll, .. args])
        {
            RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false,
            StandardOutputEncoding = Encoding.UTF8, StandardErrorEncoding = Encoding.UTF8,
        };
        foreach (var name in info.Environment.Keys.ToList())
            if (name.StartsWith("PARLEY_", StringComparison.OrdinalIgnoreCase) || name is "XDG_CONFIG_HOME" or "HOME") info.Environment.Remove(name);
        info.Environment["HOME"] = Home;
        info.Environment["XDG_CONFIG_HOME"] = ConfigHome;
        info.Environment["NO_COLOR"] = "1";
        foreach (var (name, value) in environment ?? new Dictionary<string, string>()) info.Environment[name] = value;
        return info;
    }

    /// <summary>Runs the tool to its end; <paramref name="stdin"/> is written to its standard input, then closed.</summary>
    public async Task<CliResult> RunAsync(string[] args, IReadOnlyDictionary<string, string>? environment = null, string? stdin = null)
    {
        using var process = Process.Start(Info(args, environment))!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (stdin is not null) await process.StandardInput.WriteAsync(stdin);
        process.StandardInput.Close();
        using var deadline = new CancellationTokenSource(Limit);
        try { await process.WaitForExitAsync(deadline.Token); }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"parley {string.Join(' ', args)} did not end within {Limit.TotalSeconds}s:\n{await stdout}\n{await stderr}");
        }
        return new CliResult(process.ExitCode, await stdout, await stderr);
    }

    public Task<CliResult> RunAsync(params string[] args) => RunAsync(args, null, null);

    /// <summary>
    /// Runs the tool on a pseudo-terminal (util-linux <c>script</c>), as a person at a terminal sees it: what it drew for
    /// people (the progress bar) is in the transcript, standard output and error together.
    /// </summary>
    public async Task<CliResult> RunInTerminalAsync(string[] args, IReadOnlyDictionary<string, string>? environment = null)
    {
        static string Quote(string s) => "'" + s.Replace("'", "'\\''", StringComparison.Ordinal) + "'";
        var command = string.Join(' ', new[] { "dotnet", Dll }.Concat(args).Select(Quote));
        var terminal = new Dictionary<string, string>(environment ?? new Dictionary<string, string>()) { ["TERM"] = "xterm", ["COLUMNS"] = "120" };
        terminal.Remove("NO_COLOR");
        using var process = Process.Start(new ProcessStartInfo("script", ["-qefc", command, "/dev/null"])
        {
            RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false,
            Environment = { },
        }.WithEnvironment(Info([], terminal).Environment))!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        process.StandardInput.Close();
        using var deadline = new CancellationTokenSource(Limit);
        await process.WaitForExitAsync(deadline.Token);
        return new CliResult(process.ExitCode, await stdout, await stderr);
    }

    /// <summary>
    /// Starts the tool and leaves it running (a tail); its output lines arrive as they are written. SIGINT is reset to its
    /// default first (coreutils <c>env --default-signal</c>), as in a terminal's foreground job: a test run started in the
    /// background by a non-interactive shell (CI's, nohup's) has SIGINT ignored, every child inherits that, and .NET then
    /// never installs its handler, so the tool could not hear the Ctrl-C a test sends it.
    /// </summary>
    public RunningTool Start(string[] args, IReadOnlyDictionary<string, string>? environment = null)
    {
        var info = Info(args, environment);
        info.ArgumentList.Insert(0, info.FileName);
        info.ArgumentList.Insert(0, "--default-signal=INT");
        info.FileName = "env";
        return new(Process.Start(info)!);
    }

    public void Dispose()
    {
        try { Directory.Delete(Home, recursive: true); } catch (IOException) { }
    }
}

static class StartInfoExtensions
{
    public static ProcessStartInfo WithEnvironment(this ProcessStartInfo info, IDictionary<string, string?> environment)
    {
        info.Environment.Clear();
        foreach (var (name, value) in environment) info.Environment[name] = value;
        return info;
    }
}

/// <summary>A tool process still running: its output line by line, awaited with deadlines; disposed, it is killed.</summary>
public sealed class RunningTool : IAsyncDisposable
{
    readonly Process _process;
    readonly Channel<string> _stdout = Channel.CreateUnbounded<string>(), _stderr = Channel.CreateUnbounded<string>();
    readonly Task _readers;

    public RunningTool(Process process)
    {
        _process = process;
        process.StandardInput.Close();
        _readers = Task.WhenAll(Pump(process.StandardOutput, _stdout), Pump(process.StandardError, _stderr));
    }

    public int Id => _process.Id;

    static async Task Pump(StreamReader reader, Channel<string> lines)
    {
        while (await reader.ReadLineAsync() is { } line) lines.Writer.TryWrite(line);
        lines.Writer.TryComplete();
    }

    public Task<string> NextStdoutLineAsync(TimeSpan timeout) => NextAsync(_stdout, timeout, "standard output");
    public Task<string> NextStderrLineAsync(TimeSpan timeout) => NextAsync(_stderr, timeout, "standard error");

    async Task<string> NextAsync(Channel<string> lines, TimeSpan timeout, string which)
    {
        using var deadline = new CancellationTokenSource(timeout);
        try { return await lines.Reader.ReadAsync(deadline.Token); }
        catch (OperationCanceledException) { throw new TimeoutException($"no line on {which} within {timeout.TotalSeconds}s"); }
        catch (ChannelClosedException) { throw new InvalidOperationException($"the tool closed {which} (exit {(_process.HasExited ? _process.ExitCode : -1)}): {Rest(_stderr)}"); }
    }

    static string Rest(Channel<string> lines)
    {
        var rest = new StringBuilder();
        while (lines.Reader.TryRead(out var line)) rest.AppendLine(line);
        return rest.ToString();
    }

    /// <summary>Waits for the process to end by itself; its exit code.</summary>
    public async Task<int> ExitCodeAsync(TimeSpan timeout)
    {
        using var deadline = new CancellationTokenSource(timeout);
        try { await _process.WaitForExitAsync(deadline.Token); }
        catch (OperationCanceledException) { throw new TimeoutException($"the tool did not exit within {timeout.TotalSeconds}s\n{await StateAsync()}"); }
        await _readers;
        return _process.ExitCode;
    }

    /// <summary>What a tool that will not exit is doing: its state and threads (from /proc), what it wrote since, and
    /// the managed stacks when <c>dotnet-stack</c> is on the PATH (a developer's machine; CI has only /proc).</summary>
    async Task<string> StateAsync()
    {
        var state = new StringBuilder();
        var proc = $"/proc/{_process.Id}";
        try
        {
            state.AppendLine(File.ReadAllLines($"{proc}/status").FirstOrDefault(l => l.StartsWith("State:", StringComparison.Ordinal)));
            foreach (var task in Directory.GetDirectories($"{proc}/task"))
                state.AppendLine($"  thread {Path.GetFileName(task)} {File.ReadAllText($"{task}/comm").Trim()} waiting in {File.ReadAllText($"{task}/wchan")}");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { state.AppendLine($"no {proc}: {e.Message}"); }
        state.AppendLine("--- stdout since").Append(Rest(_stdout)).AppendLine("--- stderr since").Append(Rest(_stderr));
        try
        {
            using var stack = Process.Start(new ProcessStartInfo("dotnet-stack", ["report", "-p", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])
                { RedirectStandardOutput = true, RedirectStandardError = true })!;
            using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            state.AppendLine("--- managed stacks").Append(await stack.StandardOutput.ReadToEndAsync(limit.Token));
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or OperationCanceledException) { }
        return state.ToString();
    }

    /// <summary>Sends SIGINT, as Ctrl-C in a terminal does (or another signal: <c>TERM</c>, as a service manager stops it).</summary>
    public void Interrupt(string signal = "INT")
    {
        using var kill = Process.Start("kill", [$"-{signal}", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        kill.WaitForExit();
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited) _process.Kill(entireProcessTree: true);
        await _process.WaitForExitAsync();
        _process.Dispose();
    }
}
