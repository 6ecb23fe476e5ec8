using System.Net.Sockets;
using System.Text.Json.Nodes;
using Parley.Server;
using Parley.Server.OAuth;

namespace Parley.Cli.Tests;

/// <summary>conversations list/show/tail, terminate (one), audit and receipts, and how failures read, against a live server.</summary>
public sealed class ConversationCommandTests
{
    static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task ConversationsListAndShow_AsJson_AndForPeople()
    {
        await using var s = await Scene.StartAsync();
        var (_, conversationId) = await s.LiveConversationAsync();

        var list = await s.RunAsync("conversations", "list");
        var show = await s.RunAsync("conversations", "show", conversationId, "--json");
        var human = await s.RunAsync("conversations", "show", conversationId);

        Assert.True(list.ExitCode == 0, list.ToString());
        Assert.Contains(conversationId, list.Stdout);
        Assert.Equal(0, show.ExitCode);
        var conversation = show.Json();
        Assert.Equal(conversationId, conversation.Text("id"));
        var customer = conversation["participants"]!.AsArray().Single(p => p.Text("purpose") == "customer");
        Assert.Equal("connected", customer.Text("state"));
        Assert.Equal(0, human.ExitCode);
        Assert.Contains(conversationId, human.Stdout);
        Assert.Contains("customer", human.Stdout);
        Assert.Equal("", list.Stderr + show.Stderr + human.Stderr);
    }

    [Fact]
    public async Task TerminateOne_EndsItVerified_TheGuestHoldsItsDisconnect_AndTheAuditSaysWhoAndWhy()
    {
        await using var s = await Scene.StartAsync();
        var (guest, conversationId) = await s.LiveConversationAsync();

        var ended = await s.RunAsync("terminate", conversationId, "--reason", "compliance: cli test", "--json");

        Assert.True(ended.ExitCode == 0, ended.ToString());
        var result = ended.Json();
        Assert.Equal("ended", result.Text("status"));
        Assert.Equal(conversationId, result.Text("conversationId"));
        var evidence = result["evidence"]!;
        Assert.Equal("disconnected", evidence.Text("customerState"));
        Assert.NotNull(evidence["analyticsConversationEnd"]);
        Assert.Equal(1, evidence["socketsNotified"]!.GetValue<int>());
        await guest.NextAsync(Frames.IsDisconnect, TimeSpan.FromSeconds(10));

        var again = await s.RunAsync("terminate", conversationId, "--reason", "again");
        Assert.Equal(0, again.ExitCode);
        Assert.Contains("AlreadyEnded", again.Stdout);

        var audit = await s.RunAsync("audit", "--conversation", conversationId, "--json");
        Assert.Equal(0, audit.ExitCode);
        var row = Assert.Single(audit.Json()["entities"]!.AsArray());
        Assert.Equal("compliance: cli test", row.Text("reason"));
        Assert.Equal(ParleyOptions.DefaultClientId, row!["client"].Text("id"));

    }

    [Fact]
    public async Task Receipts_ByTerminationAndByConversation_ListTheSocketThatWasTold()
    {
        await using var s = await Scene.StartAsync();
        var (guest, conversationId) = await s.LiveConversationAsync();
        var ended = await s.RunAsync("terminate", conversationId, "--reason", "receipt please", "--json");
        Assert.True(ended.ExitCode == 0, ended.ToString());
        await guest.NextAsync(Frames.IsDisconnect, TimeSpan.FromSeconds(10));

        var byConversation = await s.RunAsync("receipts", "--conversation", conversationId, "--json");

        Assert.True(byConversation.ExitCode == 0, byConversation.ToString());
        var receipt = Assert.Single(byConversation.Json()["entities"]!.AsArray());
        Assert.Equal(conversationId, receipt.Text("conversationId"));
        var socket = Assert.Single(receipt!["sockets"]!.AsArray());
        Assert.Equal("delivered", socket.Text("state"));
        var terminationId = receipt.Text("id");
        Assert.Equal(terminationId, ended.Json()["evidence"].Text("terminationId"));
        var one = await s.RunAsync("receipts", terminationId, "--json");
        Assert.True(one.ExitCode == 0, one.ToString());
        Assert.Equal(conversationId, one.Json().Text("conversationId"));
        var human = await s.RunAsync("receipts", terminationId);
        Assert.Equal(0, human.ExitCode);
        Assert.Contains("delivered", human.Stdout);
    }

    [Fact]
    public async Task UnknownIds_AreNotFound_Exit4_OneLine()
    {
        await using var s = await Scene.StartAsync();
        var missing = Guid.NewGuid().ToString();

        var terminate = await s.RunAsync("terminate", missing, "--reason", "gone", "--json");
        var show = await s.RunAsync("conversations", "show", missing);
        var receipt = await s.RunAsync("receipts", missing);
        var redeliver = await s.RunAsync("deliveries", "redeliver", missing);

        Assert.Equal(4, terminate.ExitCode);
        Assert.Equal("notFound", terminate.Json().Text("status"));   // --json: the verified outcome stays on standard output
        foreach (var run in new[] { terminate, show, receipt, redeliver })
        {
            Assert.True(run.ExitCode == 4, run.ToString());
            Output.AssertOneErrorLine(run);
        }
        Assert.Contains("(404 ", Output.AssertOneErrorLine(show));
        Assert.Equal("", show.Stdout);
    }

    [Fact]
    public async Task AnUnreachableServer_IsExit3_OneLine_AndARefusingOneExit1()
    {
        await using var s = await Scene.StartAsync();
        using var closed = new TcpListener(System.Net.IPAddress.Loopback, 0);
        closed.Start();
        var port = ((System.Net.IPEndPoint)closed.LocalEndpoint).Port;
        closed.Stop();   // the port is free again: nothing listens there
        var nowhere = new Dictionary<string, string>(s.Credentials) { ["PARLEY_URL"] = $"http://127.0.0.1:{port}" };
        var wrongSecret = new Dictionary<string, string>(s.Credentials) { ["PARLEY_CLIENT_SECRET"] = "wrong-secret-0815" };

        var unreachable = await s.Tool.RunAsync(["conversations", "list", "--json"], nowhere);
        var refused = await s.Tool.RunAsync(["conversations", "list", "--json"], wrongSecret);

        Assert.Equal(3, unreachable.ExitCode);
        Assert.Contains($"cannot reach http://127.0.0.1:{port}", Output.AssertOneErrorLine(unreachable));
        Assert.Equal("", unreachable.Stdout);
        Assert.Equal(1, refused.ExitCode);
        Assert.Contains("(401 invalid_client)", Output.AssertOneErrorLine(refused));
        Assert.DoesNotContain("wrong-secret-0815", refused.Stderr);
        Assert.Equal("", refused.Stdout);
    }

    [Fact]
    public async Task AClientWithoutThePermission_IsRefused_Exit1_WithTheServersMessage()
    {
        await using var s = await Scene.StartAsync();
        var (_, conversationId) = await s.LiveConversationAsync();
        var (id, secret) = await OAuthHelpers.CreateClientAsync(s.Platform, "read only", Permissions.ConversationView);
        var readOnly = new Dictionary<string, string>(s.Credentials) { ["PARLEY_CLIENT_ID"] = id, ["PARLEY_CLIENT_SECRET"] = secret };

        var list = await s.Tool.RunAsync(["conversations", "list", "--json"], readOnly);
        var terminate = await s.Tool.RunAsync(["terminate", conversationId, "--reason", "not allowed", "--json"], readOnly);

        Assert.True(list.ExitCode == 0, list.ToString());
        Assert.Equal(1, terminate.ExitCode);
        Assert.Contains("(403 ", Output.AssertOneErrorLine(terminate));
        Assert.Equal("", terminate.Stdout);
        Assert.DoesNotContain(secret, terminate.Stderr);
    }

    [Theory]
    [InlineData(new[] { "terminate", "c0ffee00-0000-4000-8000-000000000000" }, "--reason is required")]
    [InlineData(new[] { "terminate", "--filter", "deploymentid=x,colour=red", "--reason", "r" }, "colour=red")]
    [InlineData(new[] { "terminate", "--filter", "", "--reason", "r" }, "empty filter")]
    [InlineData(new[] { "terminate", "c0ffee00-0000-4000-8000-000000000000", "--dry-run" }, "--dry-run goes with --filter or --policy")]
    [InlineData(new[] { "terminate", "--filter", "colour=red", "--dry-run" }, "colour=red")]
    [InlineData(new[] { "terminate", "--filter", "campaign=a", "--started-before", "yesterday", "--reason", "r" }, "--started-before")]
    [InlineData(new[] { "terminate", "c0ffee00-0000-4000-8000-000000000000", "--policy", "p", "--reason", "r" }, "one of the three")]
    [InlineData(new[] { "conversations", "lst" }, "'lst'")]
    [InlineData(new[] { "deliveries", "--state", "lost" }, "--state")]
    public async Task UsageErrors_AreExit2_OneLine_AndCallNothing(string[] args, string mentions)
    {
        // No server at all: a usage error must be found before anything is called.
        using var tool = new ParleyTool();
        var env = new Dictionary<string, string> { ["PARLEY_URL"] = "http://127.0.0.1:9", ["PARLEY_CLIENT_ID"] = "x", ["PARLEY_CLIENT_SECRET"] = "y" };

        var run = await tool.RunAsync(args, env);

        Assert.Equal(2, run.ExitCode);
        Assert.Contains(mentions, Output.AssertOneErrorLine(run));
        Assert.Equal("", run.Stdout);
    }

    [Fact]
    public async Task Tail_FollowsTheStream_AsJsonLines_UntilCount()
    {
        await using var s = await Scene.StartAsync();
        // No --queue: the tool follows the queues of every deployment and integration (the demo deployment's among them).
        await using var tail = s.Tool.Start(["conversations", "tail", "--count", "1", "--json"], s.Credentials);
        Assert.StartsWith("Following ", await tail.NextStderrLineAsync(Wait));

        var (_, conversationId) = await s.LiveConversationAsync();

        var line = JsonNode.Parse(await tail.NextStdoutLineAsync(Wait))!;
        Assert.StartsWith("v2.routing.queues.", line.Text("topicName"));
        Assert.Equal(conversationId, line["eventBody"].Text("id"));
        Assert.Equal(0, await tail.ExitCodeAsync(Wait));
    }

    [Theory]
    [InlineData("INT")]    // Ctrl-C
    [InlineData("TERM")]   // a service manager, or kill, stopping it
    public async Task Tail_EndsCleanly_OnCtrlC_OrSigterm(string signal)
    {
        await using var s = await Scene.StartAsync();
        var (_, conversationId) = await s.LiveConversationAsync();
        await using var tail = s.Tool.Start(["conversations", "tail", "--conversation", conversationId], s.Credentials);
        Assert.StartsWith("Following 2 topics", await tail.NextStderrLineAsync(Wait));

        await s.RunAsync("terminate", conversationId, "--reason", "end of tail test");
        var line = await tail.NextStdoutLineAsync(Wait);
        tail.Interrupt(signal);

        Assert.Contains($"v2.detail.events.conversation.{conversationId}.customer.end", line);
        Assert.Equal(0, await tail.ExitCodeAsync(Wait));
    }
}
