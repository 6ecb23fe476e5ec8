using System.Text.Json.Nodes;
using Parley.Server;

namespace Parley.E2E.Tests;

/// <summary>
/// Parley as its own process, killed with SIGKILL mid-load: every message it acknowledged is there afterwards. (A process
/// crash; power loss is what synchronous=FULL answers for, and cannot be staged here.)
/// </summary>
public sealed class CrashTests
{
    [Fact]
    public async Task KilledMidLoad_EveryAcknowledgedMessageSurvives()
    {
        var data = Path.Combine(Path.GetTempPath(), "parley-crash-" + Guid.NewGuid().ToString("N"));
        var token = Guid.NewGuid().ToString();
        var acknowledged = new HashSet<string>();
        try
        {
            await using (var server = await ParleyProcess.StartAsync(data, LoadProfile.ProcessEnvironment))
            {
                await using var guest = await TestGuest.ConnectAsync(server.BaseAddress, token, null, ParleyOptions.DefaultDeploymentId);
                await guest.ConfigureAsync();
                for (var i = 0; i < 300; i++) await guest.SendTextNoWaitAsync($"message {i}");
                // Take acknowledgements (stored echoes) until a good number arrived, then kill the process under load.
                while (acknowledged.Count < 100)
                {
                    var frame = await guest.NextAsync(Frames.IsInboundEcho);
                    acknowledged.Add((string)frame["body"]!["id"]!);
                }
                server.Kill();
                try
                {
                    while (true) acknowledged.Add((string)(await guest.NextAsync(Frames.IsInboundEcho, TimeSpan.FromSeconds(2)))["body"]!["id"]!);
                }
                catch (Exception e) when (e is TimeoutException or InvalidOperationException) { /* the socket died with the process */ }
            }

            await using (var restarted = await ParleyProcess.StartAsync(data, LoadProfile.ProcessEnvironment))
            {
                await using var guest = await TestGuest.ConnectAsync(restarted.BaseAddress, token, null, ParleyOptions.DefaultDeploymentId);
                Assert.False((await guest.ConfigureAsync())["body"]!["newSession"]!.GetValue<bool>());
                using var history = new HttpClient { BaseAddress = restarted.BaseAddress };
                history.DefaultRequestHeaders.Authorization = new("Bearer", await guest.JwtAsync());
                var stored = new HashSet<string>();
                for (var page = 1; ; page++)
                {
                    var body = (await history.GetFromJsonAsync<JsonObject>($"/api/v2/webmessaging/messages?pageSize=100&pageNumber={page}"))!;
                    foreach (var m in body["entities"]!.AsArray()) stored.Add((string)m!["id"]!);
                    if (page >= (int)body["pageCount"]!) break;
                }
                Assert.Empty(acknowledged.Except(stored));   // nothing acknowledged was lost
                Assert.True(acknowledged.Count >= 100);
            }
        }
        finally
        {
            try { Directory.Delete(data, true); } catch (IOException) { }
        }
    }
}
