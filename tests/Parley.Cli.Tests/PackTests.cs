using System.Diagnostics;
using System.Reflection;

namespace Parley.Cli.Tests;

/// <summary>
/// The tool as people get it: <c>dotnet pack</c> makes the package, <c>dotnet tool install</c> installs it from that
/// folder alone (no other feed: offline), and the installed <c>parley</c> command runs.
/// </summary>
public sealed class PackTests
{
    static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Parley.slnx"))) return dir.FullName;
        throw new InvalidOperationException("Parley.slnx not found above the test folder");
    }

    static async Task<(int Exit, string Output)> RunAsync(string file, IEnumerable<string> args, IReadOnlyDictionary<string, string> environment)
    {
        var info = new ProcessStartInfo(file, args) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var (name, value) in environment) info.Environment[name] = value;
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var deadline = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        await process.WaitForExitAsync(deadline.Token);
        return (process.ExitCode, await stdout + await stderr);
    }

    [Fact]
    public async Task Pack_ThenToolInstallFromTheFolderAlone_GivesAWorkingParleyCommand()
    {
        var work = Path.Combine(Path.GetTempPath(), "parley-pack-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(work);
        try
        {
            var packages = Path.Combine(work, "packages");
            // Only the folder as a feed, and a package cache of its own (a cached older build of the same version must not answer).
            await File.WriteAllTextAsync(Path.Combine(work, "nuget.config"),
                $"""<?xml version="1.0" encoding="utf-8"?><configuration><packageSources><clear /><add key="local" value="{packages}" /></packageSources></configuration>""");
            var environment = new Dictionary<string, string>
            {
                ["NUGET_PACKAGES"] = Path.Combine(work, "cache"), ["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1", ["DOTNET_NOLOGO"] = "1",
            };
            var configuration = typeof(PackTests).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration ?? "Release";

            // --no-build: the tool is already built (this project references it), in this test's configuration.
            var pack = await RunAsync("dotnet", ["pack", Path.Combine(RepositoryRoot(), "src", "Parley.Cli"), "-c", configuration, "--no-build",
                "-o", packages, "-nologo"], environment);
            Assert.True(pack.Exit == 0, pack.Output);
            var package = Assert.Single(Directory.GetFiles(packages, "Parley.Cli.*.nupkg"));
            var version = Path.GetFileNameWithoutExtension(package)["Parley.Cli.".Length..];

            var install = await RunAsync("dotnet", ["tool", "install", "--tool-path", Path.Combine(work, "tools"), "--configfile",
                Path.Combine(work, "nuget.config"), "--add-source", packages, "Parley.Cli", "--version", version], environment);
            Assert.True(install.Exit == 0, install.Output);

            var parley = await RunAsync(Path.Combine(work, "tools", "parley"), ["--version"], environment);
            Assert.Equal(0, parley.Exit);
            Assert.Equal(version, parley.Output.Trim());
            var help = await RunAsync(Path.Combine(work, "tools", "parley"), ["--help"], environment);
            Assert.Contains("terminate", help.Output);
        }
        finally
        {
            try { Directory.Delete(work, recursive: true); } catch (IOException) { }
        }
    }
}
