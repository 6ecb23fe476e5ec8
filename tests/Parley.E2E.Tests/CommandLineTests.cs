using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using Parley.Server;

namespace Parley.E2E.Tests;

/// <summary>
/// The command line as an operator meets it, each case a real process: --help and --version print and end before anything
/// listens; a port in use, a data folder another process holds, one that cannot be written and a setting with an invalid
/// value each end the start with exit code 1 and one line naming the problem; --in-memory leaves the disk untouched;
/// the banner's token line works when pasted into a shell. docs/configuration.md.
/// </summary>
public sealed class CommandLineTests
{
    static readonly TimeSpan Exit = TimeSpan.FromSeconds(60);

    static void AssertOneLine(string stderr, string mentions)
    {
        var lines = stderr.Trim().Split('\n');
        Assert.True(lines.Length == 1, $"one line expected on standard error, got:\n{stderr}");
        Assert.StartsWith("parley: ", lines[0]);
        Assert.Contains(mentions, lines[0]);
        Assert.DoesNotContain("   at ", stderr);
        Assert.DoesNotContain("Exception", stderr);
    }

    static string TempDir(string prefix) => Path.Combine(Path.GetTempPath(), prefix + Guid.NewGuid().ToString("N"));

    /// <summary>A loopback port held open by the test: a server that tried to listen on it would fail.</summary>
    static TcpListener HoldPort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return listener;
    }

    static int PortOf(TcpListener listener) => ((IPEndPoint)listener.LocalEndpoint).Port;

    [Theory]
    [InlineData("--help")]
    [InlineData("-h")]
    public async Task Help_PrintsTheOptions_AndExitsZero_WithoutListening(string help)
    {
        // The port is taken: a process that tried to listen there would end with exit 1 ("address in use").
        using var held = HoldPort();
        var port = PortOf(held);
        await using var process = ParleyProcess.Launch(new() { Args = [help, "--urls", $"http://127.0.0.1:{port}"] });

        Assert.Equal(0, await process.ExitCodeAsync(Exit));
        foreach (var option in new[] { "--urls", "--port", "--data", "--in-memory", "--version", "docs/configuration.md" })
            Assert.Contains(option, process.Stdout);
        Assert.DoesNotContain("listening on", process.Stdout, StringComparison.OrdinalIgnoreCase);
        Assert.Equal("", process.Stderr);
        Assert.False(Directory.Exists(process.DataDir), "nothing is created");
    }

    [Fact]
    public async Task Version_PrintsTheVersionAlone_AndExitsZero_WithoutListening()
    {
        await using var process = ParleyProcess.Launch(new() { Args = ["--version"] });

        Assert.Equal(0, await process.ExitCodeAsync(Exit));
        var version = process.Stdout.Trim();
        Assert.Equal(ParleyCommandLine.Version, version);
        Assert.Matches(@"^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$", version);   // no +commit suffix
        Assert.Equal("", process.Stderr);
        Assert.False(Directory.Exists(process.DataDir), "nothing is created");
    }

    [Fact]
    public async Task APortInUse_EndsTheStart_WithExitOne_AndOneLine()
    {
        using var held = HoldPort();
        var port = PortOf(held);
        await using var process = ParleyProcess.Launch(new() { Port = port });

        Assert.Equal(1, await process.ExitCodeAsync(Exit));
        AssertOneLine(process.Stderr, $"127.0.0.1:{port}");
        Assert.Contains("address already in use", process.Stderr, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task ADataFolderAnotherProcessHolds_EndsTheStart_NamingTheFolderAndTheHolder_UntilTheHolderStops()
    {
        var dir = TempDir("parley-locked-");
        try
        {
            await using var first = await ParleyProcess.StartAsync(new ParleyProcessOptions { DataDir = dir });

            await using (var second = ParleyProcess.Launch(new() { DataDir = dir }))
            {
                Assert.Equal(1, await second.ExitCodeAsync(Exit));
                AssertOneLine(second.Stderr, $"The data folder {dir} is in use by another Parley process (pid {first.Id})");
                Assert.DoesNotContain("listening on", second.Stdout);
            }
            // The first is untouched by the attempt, and its lock goes with it: a graceful stop frees the folder.
            using (var http = new HttpClient { BaseAddress = first.BaseAddress })
                Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/readyz")).StatusCode);
            Assert.Equal(0, await first.StopAsync(Exit));
            await using var third = await ParleyProcess.StartAsync(new ParleyProcessOptions { DataDir = dir });
        }
        finally { try { Directory.Delete(dir, recursive: true); } catch (IOException) { } }
    }

    [Fact]
    public async Task ADataFolderThatCannotBeWritten_EndsTheStart_WithExitOne_NamingIt()
    {
        // A folder beneath a plain file can never be created, whoever runs the test (root ignores permission bits).
        var file = Path.GetTempFileName();
        var dir = Path.Combine(file, "data");
        try
        {
            await using var process = ParleyProcess.Launch(new() { DataDir = dir });
            Assert.Equal(1, await process.ExitCodeAsync(Exit));
            AssertOneLine(process.Stderr, $"The data folder {dir} cannot be");
        }
        finally { File.Delete(file); }

        if (Environment.UserName == "root" || OperatingSystem.IsWindows()) return;
        var readOnly = TempDir("parley-readonly-");
        Directory.CreateDirectory(readOnly, UnixFileMode.UserRead | UnixFileMode.UserExecute);
        try
        {
            await using var process = ParleyProcess.Launch(new() { DataDir = Path.Combine(readOnly, "data") });
            Assert.Equal(1, await process.ExitCodeAsync(Exit));
            AssertOneLine(process.Stderr, "cannot be written");
        }
        finally
        {
            File.SetUnixFileMode(readOnly, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            Directory.Delete(readOnly, recursive: true);
        }
    }

    [Theory]
    [InlineData("--Parley:Limits:MaxConnections=lots", "Parley:Limits:MaxConnections must be a whole number")]
    [InlineData("--Parley:Webhooks:AllowPrivateNetworks=yes", "Parley:Webhooks:AllowPrivateNetworks must be true or false")]
    [InlineData("--Parley:Storage:Provider=mongo", "Parley:Storage:Provider=mongo is not a provider")]
    [InlineData("--Parley:Storage:InMemory=maybe", "Parley:Storage:InMemory must be true or false")]
    [InlineData("--urls=localhost-5000", "'localhost-5000' is not a listen address")]
    [InlineData("--urls=http://127.0.0.1:port", "is not a listen address")]
    [InlineData("--port=80000", "--port must be a number from 0 to 65535")]
    [InlineData("--port=abc", "--port must be a number")]
    [InlineData("-x", "Unknown option '-x'")]
    [InlineData("serve", "Unexpected argument 'serve'")]
    [InlineData("--Parley:Limits:MaxConnections", "needs a value")]
    public async Task AnInvalidSettingOrArgument_EndsTheStart_WithExitOne_AndOneLineNamingIt(string argument, string mentions)
    {
        string[] args = argument.StartsWith("--port", StringComparison.Ordinal) ? [argument] : ["--urls", "http://127.0.0.1:0", argument];
        await using var process = ParleyProcess.Launch(new() { Args = args });

        Assert.Equal(1, await process.ExitCodeAsync(Exit));
        AssertOneLine(process.Stderr, mentions);
        Assert.DoesNotContain("listening on", process.Stdout);
        Assert.False(Directory.Exists(process.DataDir), "nothing is created before the refusal");
    }

    [Fact]
    public async Task AnHttpsCertificateThatCannotBeLoaded_EndsTheStart_WithExitOne_AndOneLine()
    {
        var missing = Path.Combine(TempDir("parley-cert-"), "none.pfx");
        await using var process = ParleyProcess.Launch(new()
        {
            Args = ["--urls", "https://127.0.0.1:0"],
            Environment = new Dictionary<string, string>
            {
                ["Kestrel__Certificates__Default__Path"] = missing, ["Kestrel__Certificates__Default__Password"] = "never-printed-5c1e",
            },
        });

        Assert.Equal(1, await process.ExitCodeAsync(Exit));
        AssertOneLine(process.Stderr, "Kestrel__Certificates__Default__Path");
        Assert.DoesNotContain("never-printed-5c1e", process.Stderr + process.Stdout);
    }

    [Fact]
    public async Task InMemory_RunsAConversationAndATermination_AndLeavesTheDiskUntouched()
    {
        var root = TempDir("parley-inmemory-");
        // tmp: TMPDIR, where SQLite would spill a temporary table or sort (in memory mode: PRAGMA temp_store = MEMORY).
        var folders = new[] { "cwd", "home", "xdg-data", "xdg-config", "xdg-cache", "xdg-state", "xdg-runtime", "tmp" }
            .ToDictionary(n => n, n => Directory.CreateDirectory(Path.Combine(root, n)).FullName);
        try
        {
            await using (var server = await ParleyProcess.StartAsync(new ParleyProcessOptions
            {
                Args = ["--in-memory", "--urls", "http://127.0.0.1:0"],
                WorkingDirectory = folders["cwd"],
                Environment = new Dictionary<string, string>
                {
                    ["PARLEY_DATA_DIR"] = "",   // unset: the default, ./parley-data in the working directory, would apply
                    ["HOME"] = folders["home"], ["XDG_DATA_HOME"] = folders["xdg-data"], ["XDG_CONFIG_HOME"] = folders["xdg-config"],
                    ["XDG_CACHE_HOME"] = folders["xdg-cache"], ["XDG_STATE_HOME"] = folders["xdg-state"], ["XDG_RUNTIME_DIR"] = folders["xdg-runtime"],
                    ["DOTNET_CLI_HOME"] = folders["home"], ["TMPDIR"] = folders["tmp"],
                },
            }))
            {
                Assert.Contains("in memory (SQLite): nothing is written to disk, everything is lost at exit", server.Stdout);

                // A conversation: a guest, the bot's message, the guest's reply, a webhook-free termination.
                using var platform = await PlatformClient.ConnectAsync(server.BaseAddress);
                await using var guest = await TestGuest.ConnectAsync(server.BaseAddress, Guid.NewGuid().ToString(), null, ParleyOptions.DefaultDeploymentId);
                await guest.ConfigureAsync();
                var started = await platform.StartConversationAsync(await guest.SessionIdAsync());
                await guest.NextAsync(Frames.IsOutboundText);
                await guest.SendTextAsync("kept in memory only");
                var conversation = started["conversationId"]!.GetValue<string>();
                var (ended, _) = await platform.PostAsync($"/api/v2/conversations/{conversation}/disconnect");
                Assert.Equal(HttpStatusCode.Accepted, ended.StatusCode);
                await guest.NextAsync(Frames.IsDisconnect, TimeSpan.FromSeconds(10));
                Assert.Equal("disconnected", (string?)(await platform.ConversationAsync(conversation))["participants"]!.AsArray()
                    .First(p => (string?)p!["purpose"] == "customer")!["state"]);

                Assert.Equal(0, await server.StopAsync(Exit));
                Assert.False(Directory.Exists(server.DataDir), "the data folder the harness would have used");
            }
            foreach (var (name, path) in folders)
                Assert.True(Directory.GetFileSystemEntries(path).Length == 0,
                    $"{name} is not empty: {string.Join(", ", Directory.GetFileSystemEntries(path, "*", SearchOption.AllDirectories))}");
        }
        finally { Directory.Delete(root, recursive: true); }
    }

    [Fact]
    public async Task InMemory_StartsAfresh_EveryTime()
    {
        // Nothing of one run is there in the next: the demo client's first token works, a client created before is gone.
        var args = new[] { "--in-memory", "--urls", "http://127.0.0.1:0" };
        string clientId;
        await using (var first = await ParleyProcess.StartAsync(new ParleyProcessOptions { Args = args }))
        {
            using var platform = await PlatformClient.ConnectAsync(first.BaseAddress);
            var (created, body) = await platform.PostAsync("/api/v2/oauth/clients",
                new { name = "in memory", authorizedGrantType = "CLIENT-CREDENTIALS", permissions = new[] { "conversation:message:view" } });
            Assert.True(created.IsSuccessStatusCode, $"{created.StatusCode}: {body}");
            clientId = body!["id"]!.GetValue<string>();
            Assert.Equal(HttpStatusCode.OK, (await platform.GetAsync($"/api/v2/oauth/clients/{clientId}")).Response.StatusCode);
        }
        await using var second = await ParleyProcess.StartAsync(new ParleyProcessOptions { Args = args });
        using var again = await PlatformClient.ConnectAsync(second.BaseAddress);
        Assert.Equal(HttpStatusCode.NotFound, (await again.GetAsync($"/api/v2/oauth/clients/{clientId}")).Response.StatusCode);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task TheBannersTokenLine_PastedIntoAShell_GetsAToken(bool secretFromEnvironment)
    {
        const string secret = "a secret of 'our' own $HOME";
        var environment = secretFromEnvironment ? new Dictionary<string, string> { ["PARLEY_DEMO_CLIENT_SECRET"] = secret } : [];
        await using var server = await ParleyProcess.StartAsync(new ParleyProcessOptions { Args = ["--port", "0"], Environment = environment });

        var line = server.Stdout.Split('\n').Single(l => l.TrimStart().StartsWith("token ", StringComparison.Ordinal));
        var command = line.Trim()["token".Length..].Trim();
        Assert.DoesNotContain("<", command);
        Assert.DoesNotContain(secret, server.Stdout);   // a secret of your own is never printed
        Assert.Contains($"{server.BaseAddress.Authority}/oauth/token", command);
        if (secretFromEnvironment) Assert.Contains("$PARLEY_DEMO_CLIENT_SECRET", command);

        var shell = new ProcessStartInfo("bash", ["-c", command]) { RedirectStandardOutput = true, RedirectStandardError = true };
        shell.Environment["PARLEY_DEMO_CLIENT_SECRET"] = secretFromEnvironment ? secret : "not-the-secret";
        using var curl = Process.Start(shell)!;
        var output = await curl.StandardOutput.ReadToEndAsync();
        await curl.WaitForExitAsync().WaitAsync(Exit);
        Assert.Equal(0, curl.ExitCode);
        Assert.NotNull(JsonNode.Parse(output)!["access_token"]);
    }

    [Fact]
    public void TheBanner_NamesEveryBoundAddress_AndPastesALocalOne_ForAWildcard()
    {
        var text = Banner.Text(["http://[::]:8080", "http://0.0.0.0:8081"], new ParleyOptions(), _ => null);
        Assert.Contains("Parley is listening on http://[::]:8080, http://0.0.0.0:8081", text);
        Assert.Contains("curl -u parley-demo-client:parley-demo-secret -d grant_type=client_credentials http://localhost:8080/oauth/token", text);
        Assert.Contains("ws://localhost:8080/v1?deploymentId=", text);

        var custom = new ParleyOptions { DemoClientSecret = "from-a-file", InMemory = true };
        var fromFile = Banner.Text(["http://127.0.0.1:5000"], custom, _ => null);
        Assert.DoesNotContain("from-a-file", fromFile);
        Assert.Contains("-u \"parley-demo-client:$PARLEY_DEMO_CLIENT_SECRET\"", fromFile);
        Assert.Contains("in memory", fromFile);
        var fromVariable = Banner.Text(["http://127.0.0.1:5000"], custom, v => v == "Parley__Demo__ClientSecret" ? "from-a-file" : null);
        Assert.Contains("-u \"parley-demo-client:$Parley__Demo__ClientSecret\"", fromVariable);
    }

    [Fact]
    public async Task TheRoot_AnswersAPerson_WithAPageOfLinksThatWork_OrJsonWhenAsked()
    {
        await using var server = await ParleyServer.StartAsync();
        using var http = new HttpClient { BaseAddress = server.BaseAddress };

        using var page = await http.SendAsync(new HttpRequestMessage(HttpMethod.Get, "/") { Headers = { { "Accept", "text/html" } } });
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Equal("text/html", page.Content.Headers.ContentType!.MediaType);
        var html = await page.Content.ReadAsStringAsync();
        Assert.Contains(ParleyCommandLine.Version, html);
        Assert.Contains("href=\"/healthz\"", html);
        Assert.Contains("href=\"/readyz\"", html);
        Assert.Contains($"ws://{server.BaseAddress.Authority}/v1?deploymentId={ParleyServer.DeploymentId}", html);
        Assert.DoesNotContain(ParleyOptions.DefaultClientSecret, html);

        var request = new HttpRequestMessage(HttpMethod.Get, "/");
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
        using var json = await http.SendAsync(request);
        Assert.Equal("application/json", json.Content.Headers.ContentType!.MediaType);
        var index = JsonNode.Parse(await json.Content.ReadAsStringAsync())!;
        Assert.Equal(ParleyCommandLine.Version, (string?)index["version"]);
        Assert.DoesNotContain(ParleyOptions.DefaultClientSecret, index.ToJsonString());
        // Every link leads somewhere: GET answers (the token endpoint, POST only, answers 405 — it exists).
        foreach (var (name, link) in index["links"]!.AsObject())
        {
            using var answer = await http.GetAsync((string)link!);
            Assert.True(answer.StatusCode is HttpStatusCode.OK or HttpStatusCode.MethodNotAllowed, $"{name} {link}: {answer.StatusCode}");
        }
        // Elsewhere, an unknown path keeps the platform's error body.
        using var missing = await http.GetAsync("/nothing-here");
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        Assert.Equal("not.found", (string?)JsonNode.Parse(await missing.Content.ReadAsStringAsync())!["code"]);
    }
}
