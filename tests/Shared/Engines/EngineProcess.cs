using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Parley.Testing;

/// <summary>Small process helpers the private engines share: run a tool to completion, pick a free port, ask a pid to stop.</summary>
static class EngineProcess
{
    /// <summary>Runs <paramref name="file"/> to completion; a non-zero exit throws with what it wrote.</summary>
    public static async Task<string> RunAsync(string file, IEnumerable<string> args, TimeSpan timeout, string? asUser = null)
    {
        // PostgreSQL refuses to run as root: as root its tools run as the account the Debian package creates.
        var (program, arguments) = asUser is null ? (file, args.ToList()) : ("runuser", ["-u", asUser, "--", file, .. args]);
        var info = new ProcessStartInfo(program, arguments)
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout);
        try { await process.WaitForExitAsync(cts.Token); }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{Path.GetFileName(file)} did not finish within {timeout.TotalSeconds:0} s.");
        }
        var output = await stdout + await stderr;
        if (process.ExitCode != 0)
            throw new InvalidOperationException($"{Path.GetFileName(file)} {string.Join(' ', args)} exited with {process.ExitCode}:\n{output}");
        return output;
    }

    /// <summary>A loopback port nothing listens on right now (the OS's choice of an ephemeral one).</summary>
    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public static bool IsRoot => Environment.UserName == "root";

    /// <summary>SIGTERM: asks a server to shut down cleanly (its clients see their connections closed).</summary>
    public static Task TerminateAsync(int pid) => RunAsync("kill", ["-TERM", pid.ToString()], TimeSpan.FromSeconds(10));
}
