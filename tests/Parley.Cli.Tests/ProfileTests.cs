using System.Text.Json.Nodes;
using Parley.Server;

namespace Parley.Cli.Tests;

/// <summary>
/// login, profiles, logout and where credentials come from: a saved profile is owner-only and used by later commands; a
/// script's environment needs no login; a secret never appears in output, and a profile file others can read is refused.
/// </summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]   // file modes are the point
public sealed class ProfileTests
{
    [Fact]
    public async Task Login_WritesAnOwnerOnlyProfile_AndLaterCommandsUseIt_WithoutTheSecretEverPrinted()
    {
        await using var s = await Scene.StartAsync();

        var login = await s.Tool.RunAsync(["login", "--url", s.Server.BaseAddress.ToString(), "--client-id", ParleyOptions.DefaultClientId,
            "--client-secret-stdin", "--json"], stdin: ParleyOptions.DefaultClientSecret + "\n");

        Assert.True(login.ExitCode == 0, login.ToString());
        var saved = login.Json();
        Assert.Equal("default", saved.Text("name"));
        Assert.True(saved["isDefault"]!.GetValue<bool>());
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(s.Tool.ProfilePath));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(Path.GetDirectoryName(s.Tool.ProfilePath)!));
        Assert.Contains(ParleyOptions.DefaultClientSecret, await File.ReadAllTextAsync(s.Tool.ProfilePath));

        // No environment: the default profile is used.
        var deployments = await s.Tool.RunAsync("deployments", "list", "--json");
        Assert.True(deployments.ExitCode == 0, deployments.ToString());
        Assert.Contains(deployments.Json()["entities"]!.AsArray(), d => d.Text("id") == ParleyServer.DeploymentId);

        var profiles = await s.Tool.RunAsync("profiles", "--json");
        Assert.Equal(0, profiles.ExitCode);
        var listed = Assert.Single(profiles.Json()["profiles"]!.AsArray());
        Assert.Equal(s.Server.BaseAddress.ToString(), listed.Text("url"));
        Assert.Equal(ParleyOptions.DefaultClientId, listed.Text("clientId"));
        foreach (var run in new[] { login, deployments, profiles, await s.Tool.RunAsync("profiles") })
        {
            Assert.DoesNotContain(ParleyOptions.DefaultClientSecret, run.Stdout);
            Assert.DoesNotContain(ParleyOptions.DefaultClientSecret, run.Stderr);
        }

        var logout = await s.Tool.RunAsync("logout");
        Assert.Equal(0, logout.ExitCode);
        Assert.DoesNotContain(ParleyOptions.DefaultClientSecret, await File.ReadAllTextAsync(s.Tool.ProfilePath));
        var afterLogout = await s.Tool.RunAsync("deployments", "list");
        Assert.Equal(2, afterLogout.ExitCode);
        Assert.Contains("parley login", Output.AssertOneErrorLine(afterLogout));
    }

    [Fact]
    public async Task SeveralProfiles_TheNamedOneIsUsed_AndAnUnknownNameIsAUsageError()
    {
        await using var s = await Scene.StartAsync();
        await using var other = await ParleyServer.StartAsync();
        foreach (var (name, url) in new[] { ("main", s.Server.BaseAddress), ("other", other.BaseAddress) })
        {
            var login = await s.Tool.RunAsync(["login", "--profile", name, "--url", url.ToString(), "--client-id", ParleyOptions.DefaultClientId,
                "--client-secret-stdin"], stdin: ParleyOptions.DefaultClientSecret);
            Assert.True(login.ExitCode == 0, login.ToString());
        }
        var created = await s.Tool.RunAsync("deployments", "create", "--profile", "other", "--name", "Only on the other server", "--json");
        Assert.True(created.ExitCode == 0, created.ToString());
        var id = created.Json().Text("id");

        var onOther = await s.Tool.RunAsync("deployments", "show", id, "--profile", "other", "--json");
        var onMain = await s.Tool.RunAsync("deployments", "show", id, "--json");   // "main" was saved first: the default

        Assert.Equal(0, onOther.ExitCode);
        Assert.Equal("Only on the other server", onOther.Json().Text("name"));
        Assert.Equal(4, onMain.ExitCode);
        Assert.Equal("", onMain.Stdout);
        var unknown = await s.Tool.RunAsync("deployments", "list", "--profile", "nope");
        Assert.Equal(2, unknown.ExitCode);
        Assert.Contains("no profile 'nope'", Output.AssertOneErrorLine(unknown));
    }

    [Fact]
    public async Task Login_WithAWrongSecret_IsOneLineWithTheServersAnswer_NonZero_AndSavesNothing()
    {
        await using var s = await Scene.StartAsync();
        const string wrong = "not-the-secret-4711";

        var login = await s.Tool.RunAsync(["login", "--url", s.Server.BaseAddress.ToString(), "--client-id", ParleyOptions.DefaultClientId,
            "--client-secret-stdin"], stdin: wrong);

        Assert.Equal(1, login.ExitCode);
        var line = Output.AssertOneErrorLine(login);
        Assert.Contains("(401 invalid_client)", line);
        Assert.DoesNotContain(wrong, login.Stderr + login.Stdout);
        Assert.False(File.Exists(s.Tool.ProfilePath), "nothing saved");
    }

    [Fact]
    public async Task AProfileFileOthersCanRead_IsRefused_WithWhatToDo()
    {
        await using var s = await Scene.StartAsync();
        var login = await s.Tool.RunAsync(["login", "--url", s.Server.BaseAddress.ToString(), "--client-id", ParleyOptions.DefaultClientId,
            "--client-secret-stdin"], stdin: ParleyOptions.DefaultClientSecret);
        Assert.True(login.ExitCode == 0, login.ToString());
        File.SetUnixFileMode(s.Tool.ProfilePath, File.GetUnixFileMode(s.Tool.ProfilePath) | UnixFileMode.GroupRead | UnixFileMode.OtherRead);

        var refused = await s.Tool.RunAsync("conversations", "list");

        Assert.Equal(2, refused.ExitCode);
        Assert.Contains("chmod 600", Output.AssertOneErrorLine(refused));
        Assert.Equal("", refused.Stdout);
    }

    [Fact]
    public async Task TheSecret_IsNeverAnArgument_AndWithoutATerminalItMustBePiped()
    {
        await using var s = await Scene.StartAsync();

        var asArgument = await s.Tool.RunAsync("login", "--url", s.Server.BaseAddress.ToString(), "--client-id", "x", "--client-secret", "s3cret");
        var noTerminal = await s.Tool.RunAsync("login", "--url", s.Server.BaseAddress.ToString(), "--client-id", "x");

        Assert.Equal(2, asArgument.ExitCode);
        Assert.Contains("--client-secret", Output.AssertOneErrorLine(asArgument));
        Assert.Equal(2, noTerminal.ExitCode);
        Assert.Contains("--client-secret-stdin", Output.AssertOneErrorLine(noTerminal));
        Assert.False(File.Exists(s.Tool.ProfilePath));
    }

    [Fact]
    public async Task EnvironmentCredentials_NeedNoLogin_AndWinOverTheDefaultProfile()
    {
        await using var s = await Scene.StartAsync();
        var (_, conversationId) = await s.LiveConversationAsync();

        var listed = await s.RunAsync("conversations", "list", "--json");

        Assert.True(listed.ExitCode == 0, listed.ToString());
        Assert.Contains(listed.Json()["entities"]!.AsArray(), c => c.Text("id") == conversationId);
        Assert.False(File.Exists(s.Tool.ProfilePath), "no login happened");
        var half = await s.Tool.RunAsync(["conversations", "list"], new Dictionary<string, string> { ["PARLEY_URL"] = s.Server.BaseAddress.ToString() });
        Assert.Equal(2, half.ExitCode);
        Assert.Contains("PARLEY_CLIENT_ID", Output.AssertOneErrorLine(half));
    }
}
