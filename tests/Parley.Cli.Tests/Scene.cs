using System.Text.Json.Nodes;
using Parley.Server;

namespace Parley.Cli.Tests;

/// <summary>A live server, the Platform API client the tests arrange with, and the tool pointed at the server.</summary>
public sealed class Scene : IAsyncDisposable
{
    public required ParleyServer Server { get; init; }
    public required PlatformClient Platform { get; init; }
    public ParleyTool Tool { get; } = new();
    readonly List<TestGuest> _guests = [];

    public static async Task<Scene> StartAsync(Func<ParleyOptions, ParleyOptions>? configure = null)
    {
        var server = await ParleyServer.StartAsync(configure);
        return new Scene { Server = server, Platform = await server.PlatformAsync() };
    }

    /// <summary>The demo client's credentials as a script gives them: the environment, no login.</summary>
    public IReadOnlyDictionary<string, string> Credentials => new Dictionary<string, string>
    {
        ["PARLEY_URL"] = Server.BaseAddress.ToString(),
        ["PARLEY_CLIENT_ID"] = ParleyOptions.DefaultClientId,
        ["PARLEY_CLIENT_SECRET"] = ParleyOptions.DefaultClientSecret,
    };

    /// <summary>Runs the tool with the environment's credentials.</summary>
    public Task<CliResult> RunAsync(params string[] args) => Tool.RunAsync(args, Credentials);

    /// <summary>A guest with a live conversation the bot started (the guest has seen the bot's message).</summary>
    public async Task<(TestGuest Guest, string ConversationId)> LiveConversationAsync(string deploymentId = ParleyServer.DeploymentId)
    {
        var guest = await Server.GuestAsync(deploymentId: deploymentId);
        _guests.Add(guest);
        await guest.ConfigureAsync();
        var started = await Platform.StartConversationAsync(await guest.SessionIdAsync(), deploymentId: deploymentId);
        await guest.NextAsync(Frames.IsOutboundText);
        return (guest, started["conversationId"]!.GetValue<string>());
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var guest in _guests) await guest.DisposeAsync();
        Platform.Dispose();
        await Server.DisposeAsync();
        Tool.Dispose();
    }
}

public static class Output
{
    /// <summary>Standard error is one line, <c>parley: …</c>, and no stack trace; the line.</summary>
    public static string AssertOneErrorLine(CliResult result)
    {
        var lines = result.Stderr.TrimEnd('\n').Split('\n');
        Assert.True(lines.Length == 1, $"one line expected on standard error:\n{result}");
        Assert.StartsWith("parley: ", lines[0]);
        Assert.DoesNotContain("   at ", result.Stderr);
        Assert.DoesNotContain("Exception", result.Stderr);
        return lines[0];
    }

    public static string Text(this JsonNode? node, string name) => node?[name]?.GetValue<string>() ?? throw new Xunit.Sdk.XunitException($"no '{name}' in {node?.ToJsonString()}");
}
