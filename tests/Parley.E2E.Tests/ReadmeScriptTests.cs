using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;

namespace Parley.E2E.Tests;

/// <summary>
/// The README's runnable sections are scripts (examples/walkthrough.sh, examples/open-messaging.sh): the README's bash
/// blocks are those scripts, word for word, and each script, run by bash against a real Parley process, shows what the
/// README says it shows.
/// </summary>
public sealed partial class ReadmeScriptTests
{
    static readonly TimeSpan ScriptTimeout = TimeSpan.FromSeconds(90);

    [Theory]
    [InlineData("## Walk-through: the seed scenario", "examples/walkthrough.sh")]
    [InlineData("## Open Messaging: connect a third-party channel", "examples/open-messaging.sh")]
    public void TheReadmeBlocks_AreTheScript(string section, string script)
    {
        var readme = File.ReadAllText(Path.Combine(Repository.Root, "README.md"));
        var start = readme.IndexOf(section + "\n", StringComparison.Ordinal);
        Assert.True(start >= 0, $"README.md has no section '{section}'");
        var end = readme.IndexOf("\n## ", start + section.Length, StringComparison.Ordinal);
        var blocks = BashBlock().Matches(readme[start..(end < 0 ? readme.Length : end)]).Select(m => m.Groups[1].Value).ToList();
        Assert.NotEmpty(blocks);

        // The script is its header (shebang, what it is, set -e…: everything up to the first blank line), then the blocks.
        var text = File.ReadAllText(Path.Combine(Repository.Root, script));
        var body = text[(text.IndexOf("\n\n", StringComparison.Ordinal) + 2)..];
        Assert.Equal(body, string.Join("\n", blocks));
    }

    [Fact]
    public async Task TheWalkthrough_EndsTheGuestsSessionAndEverythingAgrees()
    {
        await using var server = await ParleyProcess.StartAsync();
        var (exit, output) = await RunScriptAsync("examples/walkthrough.sh", new() { ["PARLEY"] = Origin(server) });

        Assert.True(exit == 0, $"walkthrough.sh exited {exit}:\n{output}");
        var guest = output.Split('\n').Where(l => l.StartsWith("guest < ", StringComparison.Ordinal)).ToList();
        // The guest got the bot's message, its own answer echoed, the Disconnect in ReadOnly mode, then the 409.
        Assert.Contains(guest, l => l.Contains("\"text\":\"Your order shipped. Anything else?\"") && l.Contains("\"direction\":\"Outbound\""));
        Assert.Contains(guest, l => l.Contains("\"text\":\"No, thanks\"") && l.Contains("\"tracingId\":\"t2\""));
        Assert.Contains(guest, l => l.Contains("\"presence\":{\"type\":\"Disconnect\"}") && l.Contains("\"readOnly\":\"true\""));
        Assert.Contains(guest, l => l.Contains("\"code\":409,\"body\":\"Session is read-only, no new messages allowed\""));
        Assert.Contains("HTTP/1.1 202 Accepted", output);
        Assert.Matches(@"(?mi)^Parley-Sockets-Notified: 1\r?$", output);
        Assert.Matches("\"conversationEnd\":\"[0-9T:.Z-]+\",\"disconnectType\":\\{\"customer\":\"client\",\"workflow\":\"peer\"\\}", output);
        Assert.Contains("{\"lever\":\"ParticipantPatch\",\"client\":\"parley-demo-client\",\"reason\":\"compliance: interaction complete\",\"socketsNotified\":1}", output);
        Assert.Contains("{\"status\":404,\"code\":\"not.found\"", output);
    }

    [Fact]
    public async Task TheOpenMessagingFlow_DeliversSignedAndRefusesAfterTheEnd()
    {
        await using var server = await ParleyProcess.StartAsync(new ParleyProcessOptions
        {
            Environment = new Dictionary<string, string> { ["Parley__Webhooks__AllowPrivateNetworks"] = "true" },
        });
        var (exit, output) = await RunScriptAsync("examples/open-messaging.sh",
            new() { ["PARLEY"] = Origin(server), ["RECEIVER_PORT"] = FreePort().ToString() });

        Assert.True(exit == 0, $"open-messaging.sh exited {exit}:\n{output}");
        // The receiver verified and printed both deliveries (an unsigned or badly signed one prints "rejected: …").
        Assert.Contains("text: Your order shipped. Anything else?", output);
        Assert.Contains("events: [{\"eventType\":\"Presence\",\"presence\":{\"type\":\"Disconnect\"}}]", output);
        Assert.DoesNotContain("rejected:", output);
        Assert.Contains("HTTP/1.1 202 Accepted", output);
        Assert.Contains("\"conversation.ended\"", output);
    }

    static string Origin(ParleyProcess server) => server.BaseAddress.GetLeftPart(UriPartial.Authority);

    static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>Runs a script with bash as a person would (from the repository), and returns its exit code and output.</summary>
    static async Task<(int Exit, string Output)> RunScriptAsync(string script, Dictionary<string, string> environment)
    {
        var info = new ProcessStartInfo("bash", [script])
        {
            WorkingDirectory = Repository.Root,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var (key, value) in environment) info.Environment[key] = value;
        var output = new StringBuilder();
        using var process = new Process { StartInfo = info };
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        using var timeout = new CancellationTokenSource(ScriptTimeout);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
            lock (output) return (-1, $"timed out after {ScriptTimeout.TotalSeconds} s\n{output}");
        }
        await process.WaitForExitAsync();   // the end of both output streams
        lock (output) return (process.ExitCode, output.ToString());
    }

    [GeneratedRegex(@"^```bash\n(.*?)^```$", RegexOptions.Multiline | RegexOptions.Singleline)]
    private static partial Regex BashBlock();
}
