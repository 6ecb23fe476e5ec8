using System.Net.Sockets;
using System.Text.Json.Nodes;
using Parley.Server;

namespace Parley.Cli.Tests;

/// <summary>deployments, integrations and deliveries: create, list, change, delete, redeliver, as scripts drive them.</summary>
public sealed class ManagementCommandTests
{
    [Fact]
    public async Task Deployments_CreateListUpdateDelete()
    {
        await using var s = await Scene.StartAsync();

        var created = await s.RunAsync("deployments", "create", "--name", "Support site", "--allowed-origin", "https://support.example.com",
            "--inactivity-timeout", "30m", "--disconnect-notice", "false", "--json");
        Assert.True(created.ExitCode == 0, created.ToString());
        var deployment = created.Json();
        var id = deployment.Text("id");
        Assert.Equal(1800, deployment["inactivityTimeoutSeconds"]!.GetValue<int>());
        Assert.False(deployment["conversationDisconnect"]!["enabled"]!.GetValue<bool>());

        var updated = await s.RunAsync("deployments", "update", id, "--name", "Support site (EU)", "--json");
        Assert.True(updated.ExitCode == 0, updated.ToString());
        var after = updated.Json();
        Assert.Equal("Support site (EU)", after.Text("name"));
        Assert.Equal(1800, after["inactivityTimeoutSeconds"]!.GetValue<int>());   // what the update did not name is kept
        Assert.Equal("https://support.example.com", after["allowedOrigins"]![0]!.GetValue<string>());
        Assert.False(after["conversationDisconnect"]!["enabled"]!.GetValue<bool>());

        var list = await s.RunAsync("deployments", "list");
        Assert.Equal(0, list.ExitCode);
        Assert.Contains("Support site (EU)", list.Stdout);

        var deleted = await s.RunAsync("deployments", "delete", id, "--json");
        Assert.Equal(0, deleted.ExitCode);
        Assert.True(deleted.Json()["deleted"]!.GetValue<bool>());
        var gone = await s.RunAsync("deployments", "show", id);
        Assert.Equal(4, gone.ExitCode);
        Output.AssertOneErrorLine(gone);
    }

    [Fact]
    public async Task Integrations_CreateWithAPipedSecret_ListUpdateDelete_TheSecretNeverShown()
    {
        await using var s = await Scene.StartAsync(o => o with { WebhooksAllowPrivateNetworks = true });
        const string secret = "a-webhook-signing-secret-of-some-length";

        var created = await s.Tool.RunAsync(["integrations", "create", "--name", "Partner", "--webhook-url", "http://127.0.0.1:9/webhook",
            "--webhook-secret-stdin", "--header", "X-Partner-Key=partner-1", "--json"], s.Credentials, secret + "\n");
        Assert.True(created.ExitCode == 0, created.ToString());
        var id = created.Json().Text("id");
        Assert.DoesNotContain(secret, created.Stdout);

        var updated = await s.RunAsync("integrations", "update", id, "--name", "Partner (renamed)", "--json");
        Assert.True(updated.ExitCode == 0, updated.ToString());
        Assert.Equal("Partner (renamed)", updated.Json().Text("name"));
        Assert.Equal("http://127.0.0.1:9/webhook", updated.Json().Text("outboundNotificationWebhookUrl"));

        var list = await s.RunAsync("integrations", "list", "--json");
        Assert.Contains(list.Json()["entities"]!.AsArray(), i => i.Text("id") == id);
        var shown = await s.RunAsync("integrations", "show", id);
        Assert.Equal(0, shown.ExitCode);
        Assert.Contains("Partner (renamed)", shown.Stdout);
        Assert.DoesNotContain(secret, shown.Stdout);
        Assert.DoesNotContain("partner-1", shown.Stdout);   // header values may be credentials: names only

        var deleted = await s.RunAsync("integrations", "delete", id);
        Assert.Equal(0, deleted.ExitCode);
        Assert.Equal(4, (await s.RunAsync("integrations", "show", id)).ExitCode);
    }

    [Fact]
    public async Task Deliveries_ListTheDeadLetters_AndRedeliverOne()
    {
        // One attempt, then dead: the webhook points at a loopback port nothing listens on.
        await using var s = await Scene.StartAsync(o => o with
        {
            WebhooksAllowPrivateNetworks = true, WebhookMaxAttempts = 1, WebhookTimeout = TimeSpan.FromSeconds(2),
        });
        using var closed = new TcpListener(System.Net.IPAddress.Loopback, 0);
        closed.Start();
        var port = ((System.Net.IPEndPoint)closed.LocalEndpoint).Port;
        closed.Stop();
        var created = await s.Tool.RunAsync(["integrations", "create", "--name", "Dead end", "--webhook-url", $"http://127.0.0.1:{port}/webhook",
            "--webhook-secret-stdin", "--json"], s.Credentials, "a-webhook-signing-secret-of-some-length");
        Assert.True(created.ExitCode == 0, created.ToString());
        var integrationId = created.Json().Text("id");
        var (sent, body) = await s.Platform.PostAsync("/api/v2/conversations/messages/agentless", new
        {
            fromAddress = integrationId, toAddress = "+4930123456", toAddressMessengerType = "open", textBody = "Your order shipped",
        });
        Assert.True(sent.IsSuccessStatusCode, body?.ToJsonString());

        // The relay works in the background: read the dead letters until it shows (bounded), as an operator would.
        JsonNode? dead = null;
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (dead is null)
        {
            var list = await s.RunAsync("deliveries", "--state", "dead", "--integration", integrationId, "--json");
            Assert.True(list.ExitCode == 0, list.ToString());
            dead = list.Json()["entities"]!.AsArray().FirstOrDefault();
            Assert.True(dead is not null || DateTime.UtcNow < deadline, "the delivery never became dead");
        }
        Assert.Equal("Dead", dead.Text("state"));

        var redelivered = await s.RunAsync("deliveries", "redeliver", dead.Text("id"), "--json");
        Assert.True(redelivered.ExitCode == 0, redelivered.ToString());
        Assert.Equal(dead.Text("id"), redelivered.Json().Text("id"));
        Assert.NotEqual("Dead", redelivered.Json().Text("state"));
        var human = await s.RunAsync("deliveries", "--state", "DEAD");
        Assert.Equal(0, human.ExitCode);
    }
}
