using System.Collections.Concurrent;
using System.Net;
using System.Net.Security;
using System.Net.WebSockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Parley.Server;

namespace Parley.E2E.Tests;

/// <summary>
/// Issue 10 items 5 and 9: the well-known demo secret is refused beyond loopback (a real process), HTTPS with a configured
/// certificate, forwarded headers from trusted proxies only, AllowedHosts and a configured public URL.
/// </summary>
public sealed class DeploymentTests
{
    const string ConfigPath = $"/webdeployments/v1/deployments/{ParleyServer.DeploymentId}/config.json";

    // ------------------------------------------------------------------ item 5: the demo secret on a public address

    [Theory]
    [InlineData("http://0.0.0.0:5000", true)]
    [InlineData("http://[::]:5000", true)]
    [InlineData("http://*:5000", true)]
    [InlineData("http://+:5000", true)]
    [InlineData("http://chat.example.com:5000", true)]
    [InlineData("http://192.168.1.20:5000", true)]
    [InlineData("http://127.0.0.1:5000;http://0.0.0.0:5001", true)]
    [InlineData("http://localhost:5000", false)]
    [InlineData("http://127.0.0.1:0", false)]
    [InlineData("http://127.0.0.2:5000", false)]
    [InlineData("https://[::1]:5001", false)]
    [InlineData("http://unix:/run/parley.sock", false)]
    public void ListeningBeyondLoopback_IsRecognised(string urls, bool beyond)
    {
        var config = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["urls"] = urls }).Build();
        Assert.Equal(beyond, ListenAddresses.FirstBeyondLoopback(ListenAddresses.Configured(config)) is not null);
    }

    [Fact]
    public void TheContainerPortVariable_AndKestrelEndpoints_CountAsListening()
    {
        var ports = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["http_ports"] = "8080" }).Build();
        Assert.NotNull(ListenAddresses.FirstBeyondLoopback(ListenAddresses.Configured(ports)));
        var endpoints = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Kestrel:Endpoints:Https:Url"] = "https://0.0.0.0:443",
        }).Build();
        Assert.NotNull(ListenAddresses.FirstBeyondLoopback(ListenAddresses.Configured(endpoints)));
        Assert.Null(ListenAddresses.FirstBeyondLoopback(ListenAddresses.Configured(new ConfigurationBuilder().Build())));   // localhost:5000
    }

    [Fact]
    public async Task OnAllInterfaces_WithTheDemoSecret_TheProcessRefusesToStart_InOneLine()
    {
        await using var refused = ParleyProcess.Launch(new() { Args = ["--urls", "http://0.0.0.0:0"] });
        Assert.Equal(1, await refused.ExitCodeAsync());
        var stderr = refused.Stderr.Trim();
        Assert.Single(stderr.Split('\n'));
        Assert.Contains("PARLEY_DEMO_CLIENT_SECRET", stderr);
        Assert.DoesNotContain("   at ", stderr);
        Assert.DoesNotContain("listening on", refused.Stdout);
        Assert.False(Directory.Exists(refused.DataDir), "nothing is created before the refusal");

        // The container images' port variable binds every interface too.
        await using var container = ParleyProcess.Launch(new() { Args = [], Environment = new Dictionary<string, string> { ["ASPNETCORE_HTTP_PORTS"] = "0" } });
        Assert.Equal(1, await container.ExitCodeAsync());
    }

    [Fact]
    public async Task OnAllInterfaces_WithAConfiguredSecret_ItStarts_AndOnlyThatSecretOpensIt()
    {
        const string secret = "a-secret-of-this-deployment-only";
        await using var server = ParleyProcess.Launch(new() { Args = ["--urls", "http://0.0.0.0:0"], Environment = new Dictionary<string, string> { ["PARLEY_DEMO_CLIENT_SECRET"] = secret } });
        var listening = await server.ListeningAsync();
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{listening.Port}") };
        Assert.Equal(HttpStatusCode.OK, (await TokenAsync(http, secret)).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await TokenAsync(http, ParleyOptions.DefaultClientSecret)).StatusCode);
        Assert.DoesNotContain(secret, server.Stdout);   // the banner does not print a configured secret
    }

    [Fact]
    public async Task OnLoopback_TheZeroSetupStartStillWorks()
    {
        await using var server = ParleyProcess.Launch();
        var listening = await server.ListeningAsync();
        using var http = new HttpClient { BaseAddress = listening };
        Assert.Equal(HttpStatusCode.OK, (await TokenAsync(http, ParleyOptions.DefaultClientSecret)).StatusCode);
    }

    // ------------------------------------------------------------------ item 9: HTTPS

    [Fact]
    public async Task Https_WithAConfiguredCertificate_ServesTheApiAndGuestsOverTls()
    {
        var pfx = Path.Combine(Path.GetTempPath(), $"parley-{Guid.NewGuid():N}.pfx");
        using var certificate = SelfSigned();
        await File.WriteAllBytesAsync(pfx, certificate.Export(X509ContentType.Pfx, "pfx-password"));
        try
        {
            await using var server = await ParleyServer.StartAsync(args:
            [
                "--urls", "https://127.0.0.1:0",
                $"--Kestrel:Certificates:Default:Path={pfx}", "--Kestrel:Certificates:Default:Password=pfx-password",
            ]);
            Assert.Equal("https", server.BaseAddress.Scheme);
            bool Trusted(X509Certificate? c) => c is not null && c.GetCertHashString() == certificate.Thumbprint;
            using var http = new HttpClient(new SocketsHttpHandler
            {
                SslOptions = new SslClientAuthenticationOptions { RemoteCertificateValidationCallback = (_, c, _, _) => Trusted(c) },
            }) { BaseAddress = server.BaseAddress };

            var token = await TokenAsync(http, ParleyOptions.DefaultClientSecret);
            Assert.Equal(HttpStatusCode.OK, token.StatusCode);
            var config = (await http.GetFromJsonAsync<JsonObject>(ConfigPath))!;
            Assert.Equal($"https://{server.BaseAddress.Authority}", (string?)config["apiEndpoint"]);
            var socketUri = (string)config["messenger"]!["apps"]!["conversations"]!["messagingEndpoint"]!;
            Assert.Equal($"wss://{server.BaseAddress.Authority}", socketUri);

            // A guest over wss:// at the advertised endpoint: configureSession answers SessionResponse.
            using var socket = new ClientWebSocket();
            socket.Options.RemoteCertificateValidationCallback = (_, c, _, _) => Trusted(c);
            await socket.ConnectAsync(new Uri($"{socketUri}/v1?deploymentId={ParleyServer.DeploymentId}"), CancellationToken.None)
                .WaitAsync(TimeSpan.FromSeconds(10));
            var configure = JsonSerializer.Serialize(new
            {
                action = "configureSession", token = Guid.NewGuid().ToString(), deploymentId = ParleyServer.DeploymentId, tracingId = "tls",
            });
            await socket.SendAsync(Encoding.UTF8.GetBytes(configure), WebSocketMessageType.Text, true, CancellationToken.None);
            var buffer = new byte[16 * 1024];
            var r = await socket.ReceiveAsync(buffer, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10));
            Assert.Equal("SessionResponse", (string?)JsonNode.Parse(buffer.AsSpan(0, r.Count))!["class"]);
        }
        finally
        {
            File.Delete(pfx);
        }
    }

    static X509Certificate2 SelfSigned()
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest("CN=parley-test", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var names = new SubjectAlternativeNameBuilder();
        names.AddIpAddress(IPAddress.Loopback);
        names.AddDnsName("localhost");
        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));   // server auth
        return request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));
    }

    // ------------------------------------------------------------------ item 9: forwarded headers and the public address

    /// <summary>A server that records the client address each request was seen from (what per-address limits key on).</summary>
    static Task<ParleyServer> ObservedAsync(ConcurrentQueue<IPAddress?> seen, Func<ParleyOptions, ParleyOptions>? configure = null,
        string[]? args = null) =>
        ParleyServer.StartAsync(configure, args, app => app.Use((http, next) =>
        {
            seen.Enqueue(http.Connection.RemoteIpAddress);
            return next(http);
        }));

    static HttpRequestMessage Forwarded(string path, string forwardedFor = "198.51.100.9, 203.0.113.7")
    {
        var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Add("X-Forwarded-For", forwardedFor);
        request.Headers.Add("X-Forwarded-Proto", "https");
        request.Headers.Add("X-Forwarded-Host", "chat.example.com");
        return request;
    }

    [Theory]
    [InlineData(null)]            // no proxy configured
    [InlineData("10.0.0.0/8")]    // a proxy configured, but the request does not come from it
    public async Task ForwardedHeaders_FromAnUntrustedAddress_AreIgnored(string? trusted)
    {
        var seen = new ConcurrentQueue<IPAddress?>();
        await using var server = await ObservedAsync(seen, o => trusted is null ? o : o with { TrustedProxies = TrustedProxies.Parse([trusted]) });
        using var http = new HttpClient { BaseAddress = server.BaseAddress };

        var response = await http.SendAsync(Forwarded(ConfigPath));
        var config = (await response.Content.ReadFromJsonAsync<JsonObject>())!;
        Assert.Equal($"http://{server.BaseAddress.Authority}", (string?)config["apiEndpoint"]);
        Assert.Equal($"ws://{server.BaseAddress.Authority}", (string?)config["messenger"]!["apps"]!["conversations"]!["messagingEndpoint"]);
        Assert.Equal(IPAddress.Loopback, Unmapped(seen.Last()));
    }

    [Fact]
    public async Task ForwardedHeaders_FromATrustedProxy_GiveTheClientsAddressSchemeAndHost()
    {
        var seen = new ConcurrentQueue<IPAddress?>();
        await using var server = await ObservedAsync(seen, o => o with { TrustedProxies = TrustedProxies.Parse(["127.0.0.1", "10.0.0.0/8"]) });
        using var http = new HttpClient { BaseAddress = server.BaseAddress };

        var config = (await (await http.SendAsync(Forwarded(ConfigPath))).Content.ReadFromJsonAsync<JsonObject>())!;
        Assert.Equal("https://chat.example.com", (string?)config["apiEndpoint"]);
        Assert.Equal("wss://chat.example.com", (string?)config["messenger"]!["apps"]!["conversations"]!["messagingEndpoint"]);
        // The rightmost address not of a trusted proxy: 198.51.100.9 was written by the client itself and is not believed.
        Assert.Equal(IPAddress.Parse("203.0.113.7"), Unmapped(seen.Last()));

        // Through two trusted proxies (10.1.2.3 handed it to the loopback one), the client is still found.
        await http.SendAsync(Forwarded("/health", "203.0.113.8, 10.1.2.3"));
        Assert.Equal(IPAddress.Parse("203.0.113.8"), Unmapped(seen.Last()));

        // The notification channel's connectUri follows the same address.
        using var platform = await server.PlatformAsync();
        var create = Forwarded("/api/v2/notifications/channels");
        create.Method = HttpMethod.Post;
        var channel = (await (await platform.Http.SendAsync(create)).Content.ReadFromJsonAsync<JsonObject>())!;
        Assert.StartsWith("wss://chat.example.com/channels/", (string?)channel["connectUri"]);
    }

    [Fact]
    public void TrustedProxies_Contains_ChecksAddressesAndNetworks_AndRefusesNonsense()
    {
        var proxies = TrustedProxies.Parse(["10.0.0.0/8", "192.0.2.1", "2001:db8::/32"]);
        Assert.True(proxies.Contains(IPAddress.Parse("10.200.0.1")));
        Assert.True(proxies.Contains(IPAddress.Parse("::ffff:192.0.2.1")));   // as a dual-stack socket reports it
        Assert.True(proxies.Contains(IPAddress.Parse("2001:db8::5")));
        Assert.False(proxies.Contains(IPAddress.Parse("192.0.2.2")));
        Assert.False(TrustedProxies.None.Contains(IPAddress.Loopback));
        Assert.Throws<StartupRefused>(() => TrustedProxies.Parse(["proxy.internal"]));

        var config = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Parley:Proxy:TrustedProxies"] = "10.0.0.1, 172.16.0.0/12",
        }).Build();
        Assert.True(ParleyOptions.FromEnvironment(config).TrustedProxies.Contains(IPAddress.Parse("172.20.1.1")));
    }

    [Fact]
    public async Task APublicUrl_IsWhatConfigJsonAndConnectUriSay_WhateverTheHostHeader()
    {
        await using var server = await ParleyServer.StartAsync(o => o with { PublicUrl = new Uri("https://chat.example.com") });
        using var http = new HttpClient { BaseAddress = server.BaseAddress };
        var request = new HttpRequestMessage(HttpMethod.Get, ConfigPath);
        request.Headers.Host = "attacker.example";
        var config = (await (await http.SendAsync(request)).Content.ReadFromJsonAsync<JsonObject>())!;
        Assert.Equal("https://chat.example.com", (string?)config["apiEndpoint"]);
        Assert.Equal("wss://chat.example.com", (string?)config["messenger"]!["apps"]!["conversations"]!["messagingEndpoint"]);

        using var platform = await server.PlatformAsync();
        var (_, channel) = await platform.PostAsync("/api/v2/notifications/channels");
        Assert.StartsWith("wss://chat.example.com/channels/", (string?)channel!["connectUri"]);
    }

    [Fact]
    public async Task AllowedHosts_RefusesAnyOtherHost()
    {
        await using var server = await ParleyServer.StartAsync(args: ["--AllowedHosts=chat.example.com;127.0.0.1"]);
        using var http = new HttpClient { BaseAddress = server.BaseAddress };
        var request = new HttpRequestMessage(HttpMethod.Get, ConfigPath);
        request.Headers.Host = "attacker.example";
        Assert.Equal(HttpStatusCode.BadRequest, (await http.SendAsync(request)).StatusCode);
        var allowed = new HttpRequestMessage(HttpMethod.Get, ConfigPath);
        allowed.Headers.Host = "chat.example.com";
        var config = (await (await http.SendAsync(allowed)).Content.ReadFromJsonAsync<JsonObject>())!;
        Assert.Equal("http://chat.example.com", (string?)config["apiEndpoint"]);
    }

    static IPAddress? Unmapped(IPAddress? a) => a is { IsIPv4MappedToIPv6: true } ? a.MapToIPv4() : a;

    static Task<HttpResponseMessage> TokenAsync(HttpClient http, string secret)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/oauth/token")
        {
            Content = new FormUrlEncodedContent([new("grant_type", "client_credentials")]),
        };
        request.Headers.Authorization = new("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{ParleyOptions.DefaultClientId}:{secret}")));
        return http.SendAsync(request);
    }
}
