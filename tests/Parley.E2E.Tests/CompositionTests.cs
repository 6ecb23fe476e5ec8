using Microsoft.Extensions.Configuration;
using Parley.Server;

namespace Parley.E2E.Tests;

/// <summary>
/// Issue 11 step 0, the composition root: adapters chosen by configuration, and a setting Parley does not have (a
/// provider it lacks, a misspelled key) stops the start in one line instead of being ignored. docs/configuration.md.
/// </summary>
public sealed class CompositionTests
{
    static ParleyOptions Read(Dictionary<string, string?> values) =>
        ParleyOptions.FromEnvironment(new ConfigurationBuilder().AddInMemoryCollection(values).Build());

    static void AssertOneLine(string stderr)
    {
        Assert.Single(stderr.Trim().Split('\n'));
        Assert.DoesNotContain("   at ", stderr);
        Assert.DoesNotContain("Exception", stderr);
    }

    [Theory]
    [InlineData("Parley__Storage__Provider", "mongo", "Parley:Storage:Provider", "Sqlite, Postgres", "not a provider")]
    [InlineData("Parley__Backplane__Provider", "Kafka", "Parley:Backplane:Provider", "Local, Redis", "not a provider")]
    public async Task AProviderParleyDoesNotHave_StopsTheProcess_InOneLineNamingTheSettingAndWhatIsSupported(string variable, string value,
        string key, string supported, string why)
    {
        await using var refused = ParleyProcess.Launch(new() { Environment = new Dictionary<string, string> { [variable] = value } });
        Assert.Equal(1, await refused.ExitCodeAsync());
        var stderr = refused.Stderr;
        AssertOneLine(stderr);
        Assert.Contains($"{key}={value}", stderr);
        Assert.Contains($"supported: {supported}", stderr);
        Assert.Contains(why, stderr);
        Assert.DoesNotContain("listening on", refused.Stdout);
        Assert.False(Directory.Exists(refused.DataDir), "nothing is created before the refusal");
    }

    [Fact]
    public async Task TheRedisBackplane_WithoutItsConnectionString_StopsTheProcess_NamingTheVariable()
    {
        // ParleyProcess passes no ConnectionStrings__* of the runner's environment: the variable is unset here.
        await using var refused = ParleyProcess.Launch(new() { Environment = new Dictionary<string, string> { ["Parley__Backplane__Provider"] = "Redis" } });
        Assert.Equal(1, await refused.ExitCodeAsync());
        AssertOneLine(refused.Stderr);
        Assert.Contains("Parley:Backplane:Provider=Redis needs ConnectionStrings__Redis", refused.Stderr);
        Assert.False(Directory.Exists(refused.DataDir), "nothing is created before the refusal");
    }

    [Fact]
    public async Task AMisspelledSetting_StopsTheProcess_NamingTheKeyAndTheNearestValidOne()
    {
        await using var refused = ParleyProcess.Launch(new() { Environment = new Dictionary<string, string> { ["Parley__Limits__MaxConection"] = "10" } });
        Assert.Equal(1, await refused.ExitCodeAsync());
        AssertOneLine(refused.Stderr);
        Assert.Contains("Parley:Limits:MaxConection", refused.Stderr);
        Assert.Contains("did you mean Parley:Limits:MaxConnections?", refused.Stderr);
        Assert.False(Directory.Exists(refused.DataDir), "nothing is created before the refusal");
    }

    [Fact]
    public async Task TheSupportedProviders_NamedInAnyCase_AndTheOldVariables_Start()
    {
        await using var server = ParleyProcess.Launch(new() { Environment = new Dictionary<string, string>
        {
            ["Parley__Storage__Provider"] = "sqlite", ["Parley__Backplane__Provider"] = "Local",
            ["PARLEY_MAX_GUEST_SOCKETS"] = "100", ["PARLEY_DEMO_DEPLOYMENT_ID"] = "11111111-0000-4000-8000-000000000001",
            ["Parley__Limits__MaxConnectionsPerAddress"] = "50",
        } });
        var address = await server.ListeningAsync();
        using var http = new HttpClient { BaseAddress = address };
        Assert.Equal("ok", await http.GetStringAsync("/health"));
        var config = await http.GetAsync("/webdeployments/v1/deployments/11111111-0000-4000-8000-000000000001/config.json");
        Assert.Equal(200, (int)config.StatusCode);
    }

    [Fact]
    public void Providers_DefaultToSqliteAndLocal_AndAreReadInAnyCase()
    {
        var defaults = Read([]);
        Assert.Equal(StorageProvider.Sqlite, defaults.StorageProvider);
        Assert.Equal(BackplaneProvider.Local, defaults.BackplaneProvider);
        Assert.Equal(StorageProvider.Sqlite, Read(new() { ["Parley:Storage:Provider"] = "SQLITE" }).StorageProvider);
        Assert.Equal(BackplaneProvider.Local, Read(new() { ["Parley:Backplane:Provider"] = " local " }).BackplaneProvider);
        Assert.Equal(StorageProvider.Postgres, Read(new() { ["Parley:Storage:Provider"] = "postgres" }).StorageProvider);
        Assert.Equal(StorageProvider.Postgres, Read(new() { ["Parley:Storage:Provider"] = "PostgreSQL" }).StorageProvider);
        // Not an enum's number either.
        Assert.Throws<StartupRefused>(() => Read(new() { ["Parley:Storage:Provider"] = "0" }));
    }

    [Theory]
    [InlineData("Parley:Limit:MaxConnections", "Parley:Limits:MaxConnections")]
    [InlineData("Parley:Webhooks:AllowPrivateNetwork", "Parley:Webhooks:AllowPrivateNetworks")]
    [InlineData("Parley:Storage:Providr", "Parley:Storage:Provider")]
    [InlineData("Parley:OAuth:SigningKeyRefreshSecond", "Parley:OAuth:SigningKeyRefreshSeconds")]
    public void AnUnknownKey_IsRefused_WithTheNearestKnownOne(string key, string nearest)
    {
        var refused = Assert.Throws<StartupRefused>(() => Read(new() { [key] = "1" }));
        Assert.Contains(key, refused.Message);
        Assert.Contains($"did you mean {nearest}?", refused.Message);
    }

    [Fact]
    public void EveryKeyParleyReads_IsKnown_WhateverElseIsSet_AndListItemsToo()
    {
        // Keys read only on some paths (the secret's two names, list items) are still known when set together.
        var options = Read(new()
        {
            ["PARLEY_DEMO_CLIENT_SECRET"] = "one-secret-of-ours", ["Parley:Demo:ClientSecret"] = "another-secret",
            ["Parley:Proxy:TrustedProxies:0"] = "10.0.0.1", ["Parley:Proxy:TrustedProxies:1"] = "10.0.0.2",
            ["Parley:PublicUrl"] = "https://chat.example.com", ["PARLEY_PUBLIC_URL"] = "https://other.example.com",
            ["Parley:Demo:GuestMessagesPerSecond"] = "5", ["Parley:Limits:MaxGuestSockets"] = "70",
            ["Parley:DataProtection:KeysPath"] = "/tmp/keys",
        });
        Assert.Equal("one-secret-of-ours", options.DemoClientSecret);
        Assert.Equal(2, options.TrustedProxies.Networks.Count);
        // Outside the Parley section nothing is judged: ASP.NET's own settings and anything else the host reads.
        Read(new() { ["Kestrel:Limits:Whatever"] = "1", ["ConnectionStrings:Postgres"] = "Host=db", ["Logging:LogLevel:Default"] = "Debug" });
    }

    [Fact]
    public void EveryKeyParleyReads_IsDocumented_InDocsConfiguration()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "docs", "configuration.md"))) dir = dir.Parent;
        Assert.NotNull(dir);
        var doc = File.ReadAllText(Path.Combine(dir.FullName, "docs", "configuration.md"));
        var missing = ParleyOptions.KnownKeys().Where(k => !doc.Contains($"`{k}`", StringComparison.Ordinal)).Order().ToList();
        Assert.True(missing.Count == 0, "docs/configuration.md does not list: " + string.Join(", ", missing));
    }

    [Fact]
    public async Task Postgres_WithoutAConnectionString_StopsTheProcess_NamingTheVariable()
    {
        // ParleyProcess passes no ConnectionStrings__* of the runner's environment: the variable is unset here.
        await using var refused = ParleyProcess.Launch(new() { Environment = new Dictionary<string, string> { ["Parley__Storage__Provider"] = "Postgres" } });
        Assert.Equal(1, await refused.ExitCodeAsync());
        AssertOneLine(refused.Stderr);
        Assert.Contains("ConnectionStrings__Postgres", refused.Stderr);
        Assert.False(Directory.Exists(refused.DataDir), "nothing is created before the refusal");
    }

    [Fact]
    public async Task Postgres_ThatDoesNotAnswer_StopsTheProcessAfterABoundedRetry_InOneLine_WithoutThePassword()
    {
        // A port nothing listens on: connection refused at every attempt.
        var closed = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        closed.Start();
        var port = ((System.Net.IPEndPoint)closed.LocalEndpoint).Port;
        closed.Stop();
        var started = System.Diagnostics.Stopwatch.StartNew();
        await using var refused = ParleyProcess.Launch(new() { Environment = new Dictionary<string, string>
        {
            ["Parley__Storage__Provider"] = "PostgreSQL", ["Parley__Storage__ConnectRetrySeconds"] = "2",
            ["ConnectionStrings__Postgres"] = $"Host=127.0.0.1;Port={port};Database=parley;Username=parley;Password=never-printed-7f3a",
        } });
        Assert.Equal(1, await refused.ExitCodeAsync());
        AssertOneLine(refused.Stderr);
        Assert.Contains("PostgreSQL cannot be reached", refused.Stderr);
        Assert.Contains($"PostgreSQL at 127.0.0.1:{port}/parley, retried", refused.Stderr);
        Assert.Contains("Parley:Storage:ConnectRetrySeconds", refused.Stderr);
        Assert.DoesNotContain("never-printed-7f3a", refused.Stderr + refused.Stdout);
        Assert.Contains("Retrying", refused.Stdout);   // it did retry, on standard output
        Assert.True(started.Elapsed < TimeSpan.FromSeconds(45), $"took {started.Elapsed}");
    }
}
