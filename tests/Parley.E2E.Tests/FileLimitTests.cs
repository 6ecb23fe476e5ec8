using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json.Nodes;
using Parley.Server;

namespace Parley.E2E.Tests;

/// <summary>
/// Parley as its own process with an open-file limit of 1,024, driven past it by clients that hold every connection open
/// (issue 10, item 1b). It must stay up, keep serving what it holds, and admit new guests again when others leave.
/// </summary>
[Collection(Alone.Name)]   // a flood of 1,500 connections: alone, so neither its timings nor its neighbours' suffer
public sealed class FileLimitTests
{
    const int FileLimit = 1024;

    [Fact]
    public async Task PastTheOpenFileLimit_TheProcessStaysUp_HeldGuestsAreServed_AndNewGuestsAreAdmittedWhenOthersLeave()
    {
        // prlimit sets the limit for the process it starts, as `ulimit -n 1024` would.
        await using var parley = await ParleyProcess.StartAsync(new ParleyProcessOptions { Wrapper = ["prlimit", $"--nofile={FileLimit}:{FileLimit}"] });
        var flood = new List<RawConnection>();
        var held = new List<TestGuest>();
        try
        {
            var server = parley.BaseAddress;
            var token = await TokenAsync(server);

            // Guests the server holds before the flood; the bot talks to each, so each has a conversation.
            for (var i = 0; i < 4; i++)
            {
                var guest = await TestGuest.ConnectAsync(server, Guid.NewGuid().ToString(), null, ParleyOptions.DefaultDeploymentId);
                held.Add(guest);
                await guest.ConfigureAsync();
            }
            var conversations = new List<string>();
            using (var platform = Platform(server, token))
                foreach (var guest in held)
                {
                    var started = await platform.StartConversationAsync(await guest.SessionIdAsync());
                    conversations.Add(started["conversationId"]!.GetValue<string>());
                    await guest.NextAsync(Frames.IsOutboundText);
                }

            // The flood, past the file limit, holding everything: guest sockets and refused upgrades from two
            // addresses, idle plain connections from a third.
            var answers = new Dictionary<string, int>();
            async Task OpenAsync(Func<Task<RawConnection>> open)
            {
                try
                {
                    var connection = await open();
                    lock (flood) flood.Add(connection);
                }
                catch (SocketException e)
                {
                    // closed by the server as it was being opened (the process is full): counted, not fatal
                    lock (answers) answers[e.SocketErrorCode.ToString()] = answers.GetValueOrDefault(e.SocketErrorCode.ToString()) + 1;
                }
            }
            var refusedButHeld = new List<RawConnection>();
            async Task<RawConnection> UpgradeAsync(int from)
            {
                var (connection, head) = await RawConnection.TryUpgradeAsync(RawConnection.Loopback(from), server);
                var status = head.Length >= 12 ? head[..12] : "closed unanswered";
                lock (answers) answers[status] = answers.GetValueOrDefault(status) + 1;
                if (status == "HTTP/1.1 503") lock (refusedButHeld) refusedButHeld.Add(connection);
                return connection;
            }
            // Guests first, so that they reach their cap before idle connections fill what is left.
            await Parallel.ForEachAsync(Enumerable.Range(0, 1200), new ParallelOptions { MaxDegreeOfParallelism = 20 }, async (i, _) =>
                await OpenAsync(() => UpgradeAsync(2 + i % 2)));
            await Parallel.ForEachAsync(Enumerable.Range(0, 300), new ParallelOptions { MaxDegreeOfParallelism = 20 }, async (_, _) =>
                await OpenAsync(() => RawConnection.ConnectAsync(RawConnection.Loopback(4), server)));
            var accepted = answers.GetValueOrDefault("HTTP/1.1 101");
            Assert.True(answers.GetValueOrDefault("HTTP/1.1 503") > 0, $"the flood never reached the guest limit: {Describe(answers)}");
            Assert.InRange(accepted, 1, FileLimit);
            Assert.False(parley.HasExited, $"the server exited during the flood:\n{parley.Tail}");
            // The server closed every connection it refused with 503, though the clients kept them open.
            using (var closing = new CancellationTokenSource(TimeSpan.FromSeconds(10)))
                await Task.WhenAll(refusedButHeld.Select(c => c.WaitForServerCloseAsync(closing.Token)));
            Console.WriteLine($"Flood of 1,500 past a file limit of {FileLimit}: {Describe(answers)}");

            // The Platform API answers, on a new connection, while all of that is held. The process is full: a new
            // connection gets the place of an idle one that has sent nothing for a second; one made sooner is closed, and
            // the client tries again (a few times at most). A connection closed that way fails in the client in one of
            // two forms: HttpRequestException, or a bare SocketException (ENOTCONN) when the server's reset lands between
            // connect() and the RemoteEndPoint that SocketsHttpHandler reads after it, outside its own exception wrapping.
            using (var platform = Platform(server, token))
            {
                var retryUntil = DateTime.UtcNow.AddSeconds(5);
                var failures = new List<string>();
                HttpResponseMessage? response = null;
                while (response is null)
                {
                    try { (response, _) = await platform.GetAsync($"/api/v2/conversations/{conversations[0]}"); }
                    catch (Exception e) when ((e is HttpRequestException or SocketException) && DateTime.UtcNow < retryUntil)
                    {
                        failures.Add(e is SocketException s ? $"SocketException {s.SocketErrorCode}" : e.GetType().Name);
                        await Task.Delay(200);
                    }
                }
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
                Console.WriteLine($"Platform API answered at attempt {failures.Count + 1} (before: {string.Join(", ", failures)})");

                // Held guests get their messages and their terminations.
                var bot = (await platform.ConversationAsync(conversations[0]))["participants"]!.AsArray().Single(p => (string?)p!["purpose"] == "workflow")!;
                var (sent, _) = await platform.PostAsync(
                    $"/api/v2/conversations/messages/{conversations[0]}/communications/{bot["messages"]![0]!["id"]}/messages", new { textBody = "still here" });
                Assert.Equal(HttpStatusCode.OK, sent.StatusCode);
                Assert.Equal("still here", (string?)(await held[0].NextAsync(f => Frames.IsOutboundText(f) && (string?)f["body"]!["text"] == "still here"))["body"]!["text"]);
                var (ended, _) = await platform.PostAsync($"/api/v2/conversations/{conversations[1]}/disconnect");
                Assert.Equal(HttpStatusCode.Accepted, ended.StatusCode);
                await held[1].NextAsync(Frames.IsDisconnect);
            }

            // Full: a new guest is refused (503). When flood guests leave, new guests are admitted again.
            var refused = await Assert.ThrowsAsync<WebSocketException>(() => TestGuest.ConnectAsync(server, Guid.NewGuid().ToString(), null, ParleyOptions.DefaultDeploymentId));
            Assert.Contains("503", refused.Message);
            foreach (var c in flood) await c.DisposeAsync();
            flood.Clear();
            var deadline = DateTime.UtcNow.AddSeconds(15);
            while (true)
            {
                try
                {
                    var again = await TestGuest.ConnectAsync(server, Guid.NewGuid().ToString(), null, ParleyOptions.DefaultDeploymentId);
                    held.Add(again);
                    Assert.True((await again.ConfigureAsync())["body"]!["connected"]!.GetValue<bool>());
                    break;
                }
                catch (WebSocketException) when (DateTime.UtcNow < deadline) { await Task.Delay(100); }   // places free as the server sees the closes
            }
            Assert.Equal("StructuredMessage", (string?)(await held[2].SendTextAsync("and still served"))["class"]);
            Assert.False(parley.HasExited, $"the server exited:\n{parley.Tail}");
            Assert.DoesNotContain("Out of memory", parley.Stdout + parley.Stderr);
        }
        finally
        {
            foreach (var c in flood) await c.DisposeAsync();
            foreach (var g in held) await g.DisposeAsync();
        }
    }

    static string Describe(Dictionary<string, int> answers) => string.Join(", ", answers.Select(a => $"{a.Key}: {a.Value}"));

    static async Task<string> TokenAsync(Uri server)
    {
        using var http = new HttpClient { BaseAddress = server };
        var request = new HttpRequestMessage(HttpMethod.Post, "/oauth/token") { Content = new FormUrlEncodedContent([new("grant_type", "client_credentials")]) };
        request.Headers.Authorization = new AuthenticationHeaderValue("Basic",
            Convert.ToBase64String(Encoding.UTF8.GetBytes($"{ParleyOptions.DefaultClientId}:{ParleyOptions.DefaultClientSecret}")));
        var response = await http.SendAsync(request);
        response.EnsureSuccessStatusCode();
        return (await response.Content.ReadFromJsonAsync<JsonObject>())!["access_token"]!.GetValue<string>();
    }

    static PlatformClient Platform(Uri server, string token)
    {
        var http = new HttpClient { BaseAddress = server, Timeout = TimeSpan.FromSeconds(10) };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return new PlatformClient(http);
    }
}
