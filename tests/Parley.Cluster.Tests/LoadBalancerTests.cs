using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using Parley.Server;

namespace Parley.Cluster.Tests;

/// <summary>
/// Issue 11 item 6: two nodes behind nginx configured by scripts/run-cluster (its own configuration, the one the
/// script writes), a guest and a bot pointed at the balancer's one address.
/// </summary>
public sealed class LoadBalancerTests
{
    [ClusterFact]
    public async Task AGuestAndABot_ThroughNginx_TalkAndEnd_OnBothNodes()
    {
        await using var cluster = await Cluster.StartAsync(new ClusterOptions
        {
            // The balancer connects from loopback: its X-Forwarded-* headers are believed.
            Environment = new Dictionary<string, string> { ["Parley__Proxy__TrustedProxies"] = "127.0.0.1" },
        });
        await using var nginx = await Nginx.StartAsync(cluster.Nodes.Select(n => n.BaseAddress.Authority));
        var balancer = nginx.Address;

        // config.json names the balancer (the forwarded host), not the node that answered.
        using (var http = new HttpClient { BaseAddress = balancer })
        {
            var config = (await http.GetFromJsonAsync<JsonObject>($"/webdeployments/v1/deployments/{ParleyOptions.DefaultDeploymentId}/config.json"))!;
            Assert.Equal($"http://{balancer.Authority}", (string?)config["apiEndpoint"]);
            Assert.Equal($"ws://{balancer.Authority}", (string?)config["messenger"]!["apps"]!["conversations"]!["messagingEndpoint"]);
        }

        await using var guest = await TestGuest.ConnectAsync(balancer, Guid.NewGuid().ToString(), null, ParleyOptions.DefaultDeploymentId);
        await guest.ConfigureAsync();
        using var bot = await PlatformClient.ConnectAsync(balancer);
        var conversationId = (string)(await bot.StartConversationAsync(await guest.SessionIdAsync(), "hello through nginx"))["conversationId"]!;
        Assert.Equal("hello through nginx", (string?)(await guest.NextAsync(Frames.IsOutboundText))["body"]!["text"]);
        var communication = (string)(await bot.ConversationAsync(conversationId))["participants"]!.AsArray()
            .Single(p => (string?)p!["purpose"] == "workflow")!["messages"]![0]!["id"]!;
        for (var i = 1; i <= 4; i++)
        {
            var (sent, _) = await bot.PostAsync($"/api/v2/conversations/messages/{conversationId}/communications/{communication}/messages",
                new { textBody = $"bot message {i}" });
            Assert.Equal(HttpStatusCode.OK, sent.StatusCode);
            Assert.Equal($"bot message {i}", (string?)(await guest.NextAsync(Frames.IsOutboundText))["body"]!["text"]);
            Assert.Equal("StructuredMessage", (string?)(await guest.SendTextAsync($"guest reply {i}"))["class"]);
        }

        // A notification channel through the balancer: its connectUri names the balancer, and reaches the channel's node.
        await using var channel = await NotificationChannel.OpenAsync(bot, $"v2.detail.events.conversation.{conversationId}.customer.end");
        Assert.StartsWith($"ws://{balancer.Authority}/channels/", channel.ConnectUri);

        var response = await bot.Http.PostAsync($"/api/v2/conversations/{conversationId}/disconnect", null);
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        Assert.Equal("1", response.Headers.GetValues("Parley-Sockets-Notified").Single());
        await guest.NextAsync(Frames.IsDisconnect, TimeSpan.FromSeconds(5));
        Assert.Equal(409, (int)(await guest.SendTextAsync("one more?"))["code"]!);
        Assert.Equal(conversationId, (string?)(await channel.NextAsync(f => ((string?)f["topicName"])?.EndsWith(".customer.end") == true))["eventBody"]!["conversationId"]);

        // The bot's requests were spread over both nodes (nginx's access log names the node of each).
        var log = await File.ReadAllTextAsync(nginx.AccessLog);
        foreach (var node in cluster.Nodes)
            Assert.Contains($"upstream={node.BaseAddress.Authority}", log);
    }

    /// <summary>nginx as its own process (daemon), with the configuration scripts/run-cluster writes, on a free loopback port.</summary>
    sealed class Nginx : IAsyncDisposable
    {
        readonly string _dir;
        public Uri Address { get; }
        public string AccessLog => Path.Combine(_dir, "access.log");

        Nginx(string dir, int port) => (_dir, Address) = (dir, new Uri($"http://127.0.0.1:{port}"));

        public static async Task<Nginx> StartAsync(IEnumerable<string> nodes)
        {
            var program = new[] { "/usr/sbin/nginx", "/usr/bin/nginx" }.FirstOrDefault(File.Exists)
                ?? throw new InvalidOperationException("nginx is not installed: run scripts/run-cluster install (.ci/run does).");
            // Its workers run as an unprivileged account when the tests run as root: the folder must be theirs to enter.
            var dir = Directory.CreateTempSubdirectory("parley-nginx-").FullName;
            if (OperatingSystem.IsWindows()) throw new PlatformNotSupportedException("nginx runs on Linux here.");
            File.SetUnixFileMode(dir, (UnixFileMode)0b111_101_101);
            Directory.CreateDirectory(Path.Combine(dir, "tmp"), (UnixFileMode)0b111_111_111);
            var port = FreePort();
            var config = await RunAsync("bash", [Path.Combine(RepositoryRoot(), "scripts", "run-cluster"), "nginx-config", dir, $"127.0.0.1:{port}", .. nodes]);
            await File.WriteAllTextAsync(Path.Combine(dir, "nginx.conf"), config);
            await RunAsync(program, ["-p", dir, "-c", Path.Combine(dir, "nginx.conf")]);
            var nginx = new Nginx(dir, port);
            using var http = new HttpClient { BaseAddress = nginx.Address, Timeout = TimeSpan.FromSeconds(5) };
            for (var attempt = 0; ; attempt++)
            {
                try
                {
                    if ((await http.GetAsync("/health")).IsSuccessStatusCode) return nginx;
                }
                catch (HttpRequestException) when (attempt < 100) { }
                await Task.Delay(50);   // polling nginx's own start, not synchronising a test
            }
        }

        static int FreePort()
        {
            using var listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
            return ((IPEndPoint)listener.LocalEndpoint).Port;
        }

        static string RepositoryRoot()
        {
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
                if (File.Exists(Path.Combine(dir.FullName, "scripts", "run-cluster"))) return dir.FullName;
            throw new InvalidOperationException("scripts/run-cluster not found above the test's folder.");
        }

        static async Task<string> RunAsync(string program, string[] args)
        {
            var info = new ProcessStartInfo(program, args) { RedirectStandardOutput = true, RedirectStandardError = true };
            using var process = Process.Start(info)!;
            var output = process.StandardOutput.ReadToEndAsync();
            var errors = process.StandardError.ReadToEndAsync();
            await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
            if (process.ExitCode != 0) throw new InvalidOperationException($"{program} failed ({process.ExitCode}): {await errors}");
            return await output;
        }

        public async ValueTask DisposeAsync()
        {
            // Only the nginx this test started: its master's pid, from its own pid file.
            var pidFile = Path.Combine(_dir, "nginx.pid");
            if (File.Exists(pidFile) && int.TryParse((await File.ReadAllTextAsync(pidFile)).Trim(), out var pid))
            {
                try
                {
                    using var master = Process.GetProcessById(pid);
                    // SIGTERM: nginx's fast shutdown, the master stops its workers and exits.
                    using (var term = Process.Start("kill", ["-TERM", pid.ToString()])) await term.WaitForExitAsync();
                    await master.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
                }
                catch (Exception e) when (e is ArgumentException or InvalidOperationException or TimeoutException) { }
            }
            try { Directory.Delete(_dir, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }
}
