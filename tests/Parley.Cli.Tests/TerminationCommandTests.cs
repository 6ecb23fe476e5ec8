using System.Text.Json.Nodes;
using Parley.Server;

namespace Parley.Cli.Tests;

/// <summary>terminate by filter (bulk) and by policy (dry run and apply), and policies management.</summary>
public sealed class TerminationCommandTests
{
    [Fact]
    public async Task Bulk_WithAFilter_EndsExactlyThatSet_AndTheRestKeepsWorking()
    {
        await using var s = await Scene.StartAsync();
        var created = await s.RunAsync("deployments", "create", "--name", "Spring campaign site", "--json");
        Assert.True(created.ExitCode == 0, created.ToString());
        var deploymentId = created.Json().Text("id");
        var (first, _) = await s.LiveConversationAsync(deploymentId);
        var (second, _) = await s.LiveConversationAsync(deploymentId);
        var (outside, outsideId) = await s.LiveConversationAsync();

        var bulk = await s.RunAsync("terminate", "--filter", $"deploymentId={deploymentId}", "--started-before", "0s", "--reason", "campaign over", "--json");

        Assert.True(bulk.ExitCode == 0, bulk.ToString());
        var job = bulk.Json();
        Assert.Equal("FULFILLED", job.Text("state"));
        Assert.Equal(2, job["ended"]!.GetValue<int>());
        Assert.Equal(0, job["alreadyEnded"]!.GetValue<int>());
        Assert.Equal(2, job["socketsNotified"]!.GetValue<int>());
        await first.NextAsync(Frames.IsDisconnect, TimeSpan.FromSeconds(10));
        await second.NextAsync(Frames.IsDisconnect, TimeSpan.FromSeconds(10));
        var reply = await outside.SendTextAsync("still here");
        Assert.True(Frames.IsInboundEcho(reply), reply.ToJsonString());
        var show = await s.RunAsync("conversations", "show", outsideId, "--json");
        Assert.Equal("connected", show.Json()["participants"]!.AsArray().Single(p => p.Text("purpose") == "customer").Text("state"));

        var human = await s.RunAsync("terminate", "--filter", $"deploymentId={deploymentId}", "--reason", "again");
        Assert.Equal(0, human.ExitCode);
        Assert.Contains("Ended", human.Stdout);
    }

    [Fact]
    public async Task Terminate_FilterStartedBy_IsSent_AndNarrowsTheSet()
    {
        await using var s = await Scene.StartAsync();
        var created = await s.RunAsync("deployments", "create", "--name", "Bot site", "--json");
        Assert.True(created.ExitCode == 0, created.ToString());
        var deploymentId = created.Json().Text("id");
        var (guest, _) = await s.LiveConversationAsync(deploymentId);
        var bot = Guid.NewGuid().ToString();

        // The guest started it, not that bot: nothing matches (without startedBy the filter would end it).
        var bulk = await s.RunAsync("terminate", "--filter", $"deploymentId={deploymentId},startedby={bot}", "--reason", "bot withdrawn", "--json");

        Assert.True(bulk.ExitCode == 0, bulk.ToString());
        var job = bulk.Json();
        Assert.Equal((0, bot), (job["matched"]!.GetValue<int>(), job["filter"]!.Text("startedBy")));
        var reply = await guest.SendTextAsync("still here");
        Assert.True(Frames.IsInboundEcho(reply), reply.ToJsonString());
    }

    [Fact]
    public async Task Bulk_AnsweredAsAJob_IsWaitedFor_AndItsFinalCountsPrinted()
    {
        // More than the server answers at once: a 202 and a job the tool reads until it is no longer PENDING.
        await using var s = await Scene.StartAsync(o => o with { TerminationAnswerAtOnceMax = 1 });
        var created = await s.RunAsync("deployments", "create", "--name", "Job site", "--json");
        var deploymentId = created.Json().Text("id");
        var guests = new List<TestGuest>();
        for (var i = 0; i < 3; i++) guests.Add((await s.LiveConversationAsync(deploymentId)).Guest);

        var bulk = await s.RunAsync("terminate", "--filter", $"deploymentId={deploymentId}", "--reason", "site closed");

        Assert.True(bulk.ExitCode == 0, bulk.ToString());
        Assert.Matches(@"^Job \S+ is running; waiting", bulk.Stderr);   // no terminal: a line instead of the progress bar
        Assert.Matches(@"State\s+FULFILLED", bulk.Stdout);
        Assert.Matches(@"Ended\s+3", bulk.Stdout);
        Assert.Matches(@"Sockets told\s+3", bulk.Stdout);
        foreach (var guest in guests) await guest.NextAsync(Frames.IsDisconnect, TimeSpan.FromSeconds(10));
        var audit = await s.RunAsync("audit", "--json");
        Assert.Equal(3, audit.Json()["entities"]!.AsArray().Count(a => a.Text("reason") == "site closed" && a.Text("lever") == "Bulk"));
    }

    [Fact]
    public async Task Bulk_AtATerminal_DrawsAProgressBarToTheEnd()
    {
        await using var s = await Scene.StartAsync(o => o with { TerminationAnswerAtOnceMax = 1 });
        var created = await s.RunAsync("deployments", "create", "--name", "Bar site", "--json");
        var deploymentId = created.Json().Text("id");
        for (var i = 0; i < 2; i++) await s.LiveConversationAsync(deploymentId);

        var bulk = await s.Tool.RunInTerminalAsync(["terminate", "--filter", $"deploymentId={deploymentId}", "--reason", "bar"], s.Credentials);

        Assert.True(bulk.ExitCode == 0, bulk.ToString());
        var seen = System.Text.RegularExpressions.Regex.Replace(bulk.Stdout, @"\x1b\[[0-9;?]*[A-Za-z]|\x1b[=>]", "");   // without the colours and cursor moves
        Assert.Contains("100%", seen);   // the bar, drawn to its end
        Assert.Matches(@"State\s+FULFILLED", seen);
        Assert.DoesNotContain("is running; waiting", seen);
    }

    [Fact]
    public async Task Policy_CreateShowList_DryRunListsWhatItWouldEnd_WithoutEndingIt_ThenDelete()
    {
        await using var s = await Scene.StartAsync();
        var (guest, conversationId) = await s.LiveConversationAsync();

        // Switched off, so the sweeper leaves it alone; a dry run still says what it would end, and when.
        var created = await s.RunAsync("policies", "create", "--name", "One hour at most", "--type", "maxDuration",
            "--deployment", ParleyServer.DeploymentId, "--max-duration", "1h", "--disabled", "--json");
        Assert.True(created.ExitCode == 0, created.ToString());
        var policyId = created.Json().Text("id");
        Assert.Equal(3600, created.Json()["maxDurationSeconds"]!.GetValue<int>());

        var dryRun = await s.RunAsync("terminate", "--policy", policyId, "--dry-run", "--json");
        Assert.True(dryRun.ExitCode == 0, dryRun.ToString());
        var entry = Assert.Single(dryRun.Json()["entities"]!.AsArray(), e => e.Text("conversationId") == conversationId);
        var startTime = DateTimeOffset.Parse(entry.Text("startTime"), System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal(startTime.AddHours(1), DateTimeOffset.Parse(entry.Text("endsAt"), System.Globalization.CultureInfo.InvariantCulture));
        var table = await s.RunAsync("policies", "preview", policyId);
        Assert.Equal(0, table.ExitCode);
        Assert.Contains(conversationId, table.Stdout);
        Assert.Contains("nothing was ended", table.Stdout);
        // Due in an hour: applying the policy now ends none of it, and the dry run says so rather than counting it as ended.
        var human = await s.RunAsync("terminate", "--policy", policyId, "--dry-run");
        Assert.True(human.ExitCode == 0, human.ToString());
        Assert.Contains("0 conversations would be ended now", human.Stdout);
        Assert.Contains("1 conversation due later, not ended by applying it now", human.Stdout);
        Assert.Contains(conversationId, human.Stdout);
        var unsaved = await s.RunAsync("policies", "preview", "--name", "draft", "--type", "maxDuration", "--deployment", ParleyServer.DeploymentId,
            "--max-duration", "7200", "--json");
        Assert.True(unsaved.ExitCode == 0, unsaved.ToString());
        Assert.Contains(unsaved.Json()["entities"]!.AsArray(), e => e.Text("conversationId") == conversationId);

        var echo = await guest.SendTextAsync("not ended by a dry run");
        Assert.True(Frames.IsInboundEcho(echo), echo.ToJsonString());
        Assert.Equal(0, (await s.RunAsync("policies", "show", policyId)).ExitCode);
        var listed = await s.RunAsync("policies", "list", "--deployment", ParleyServer.DeploymentId, "--json");
        Assert.Contains(listed.Json()["entities"]!.AsArray(), p => p.Text("id") == policyId);

        Assert.Equal(0, (await s.RunAsync("policies", "delete", policyId)).ExitCode);
        var gone = await s.RunAsync("terminate", "--policy", policyId, "--dry-run");
        Assert.Equal(4, gone.ExitCode);
        Output.AssertOneErrorLine(gone);
    }

    [Fact]
    public async Task Bulk_DryRun_ListsExactlyWhatTheFilterMatchesNow_EndsNothing_AndABadFilterIsRefused()
    {
        await using var s = await Scene.StartAsync();
        var created = await s.RunAsync("deployments", "create", "--name", "Preview site", "--json");
        Assert.True(created.ExitCode == 0, created.ToString());
        var deploymentId = created.Json().Text("id");
        var (first, firstId) = await s.LiveConversationAsync(deploymentId);
        var (second, secondId) = await s.LiveConversationAsync(deploymentId);
        var (_, outsideId) = await s.LiveConversationAsync();

        var json = await s.RunAsync("terminate", "--filter", $"deploymentId={deploymentId}", "--dry-run", "--json");

        Assert.True(json.ExitCode == 0, json.ToString());
        var preview = json.Json();
        Assert.Equal(2, preview["total"]!.GetValue<long>());
        var listed = preview["entities"]!.AsArray().Select(e => e.Text("conversationId")).ToList();
        Assert.Equal(new[] { firstId, secondId }.Order(StringComparer.Ordinal), listed.Order(StringComparer.Ordinal));
        Assert.DoesNotContain(outsideId, listed);
        Assert.All(preview["entities"]!.AsArray(), e => Assert.Equal(preview.Text("evaluatedAt"), e.Text("endsAt")));   // a bulk ends at once
        var human = await s.RunAsync("terminate", "--filter", $"deploymentId={deploymentId}", "--dry-run");
        Assert.True(human.ExitCode == 0, human.ToString());
        Assert.Contains("2 conversations would be ended now", human.Stdout);
        Assert.Contains("nothing was ended", human.Stdout);
        Assert.DoesNotContain("later", human.Stdout);
        foreach (var guest in new[] { first, second })
        {
            var echo = await guest.SendTextAsync("not ended by a dry run");
            Assert.True(Frames.IsInboundEcho(echo), echo.ToJsonString());
        }

        var bad = await s.RunAsync("terminate", "--filter", "deploymentId=no-such-deployment", "--dry-run");
        Assert.Equal(1, bad.ExitCode);
        Assert.Contains("(400 ", Output.AssertOneErrorLine(bad));
        Assert.Equal("", bad.Stdout);
    }
}
