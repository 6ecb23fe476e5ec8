using System.Diagnostics;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Parley.Server;

namespace Parley.E2E.Tests;

/// <summary>
/// Parley as its own process, killed with SIGKILL mid-load: every message it acknowledged is there afterwards. (A process
/// crash; power loss is what synchronous=FULL answers for, and cannot be staged here.)
/// </summary>
public sealed partial class CrashTests
{
    [GeneratedRegex(@"Parley is listening on (http://[^\s,]+)")]
    private static partial Regex Listening();

    sealed class ServerProcess(Process process, Uri baseAddress) : IAsyncDisposable
    {
        public Uri BaseAddress => baseAddress;
        public void Kill() => process.Kill();   // SIGKILL: no shutdown, no flush

        public static async Task<ServerProcess> StartAsync(string dataDir)
        {
            var info = new ProcessStartInfo("dotnet", [Path.Combine(AppContext.BaseDirectory, "parley.dll"), "--urls", "http://127.0.0.1:0"])
            {
                RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
            };
            info.Environment["PARLEY_DATA_DIR"] = dataDir;
            // Its own deployment under load from one address: the guest limits raised explicitly (docs/guest-limits.md).
            info.Environment["Parley__Demo__GuestMessagesPerSecond"] = "10000";
            info.Environment["Parley__Limits__GuestMessagesPerAddressPerSecond"] = "0";
            var process = Process.Start(info)!;
            var address = new TaskCompletionSource<Uri>(TaskCreationOptions.RunContinuationsAsynchronously);
            process.OutputDataReceived += (_, e) =>
            {
                if (e.Data is { } line && Listening().Match(line) is { Success: true } m) address.TrySetResult(new Uri(m.Groups[1].Value));
            };
            process.ErrorDataReceived += (_, _) => { };
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            return new ServerProcess(process, await address.Task.WaitAsync(TimeSpan.FromSeconds(30)));
        }

        public async ValueTask DisposeAsync()
        {
            if (!process.HasExited) process.Kill();
            await process.WaitForExitAsync();
            process.Dispose();
        }
    }

    [Fact]
    public async Task KilledMidLoad_EveryAcknowledgedMessageSurvives()
    {
        var data = Path.Combine(Path.GetTempPath(), "parley-crash-" + Guid.NewGuid().ToString("N"));
        var token = Guid.NewGuid().ToString();
        var acknowledged = new HashSet<string>();
        try
        {
            await using (var server = await ServerProcess.StartAsync(data))
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

            await using (var restarted = await ServerProcess.StartAsync(data))
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
