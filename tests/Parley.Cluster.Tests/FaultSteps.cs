using System.Diagnostics;
using System.Net.Http.Headers;
using System.Text.Json.Nodes;

namespace Parley.Cluster.Tests;

/// <summary>The steps the fault tests share: a guest on a node, a bot's message, a node's health, a guest's history.</summary>
static class FaultSteps
{
    public static async Task<TestGuest> GuestOnAsync(ParleyProcess node, string? token = null)
    {
        var guest = await TestGuest.ConnectAsync(node.BaseAddress, token ?? Guid.NewGuid().ToString(), null, ParleyServer.DeploymentId);
        return guest;
    }

    /// <summary>The bot (the workflow participant) sends a text into a conversation; returns the stored message's id.</summary>
    public static async Task<string> BotSendAsync(PlatformClient bot, string conversationId, string text)
    {
        var (response, body) = await BotSendRawAsync(bot, conversationId, text);
        Assert.True(response.IsSuccessStatusCode, $"the bot's message was refused: {(int)response.StatusCode} {body}");
        return (string)body!["id"]!;
    }

    public static async Task<(HttpResponseMessage Response, JsonNode? Body)> BotSendRawAsync(PlatformClient bot, string conversationId, string text)
    {
        var communication = await BotCommunicationAsync(bot, conversationId);
        return await bot.PostAsync($"/api/v2/conversations/messages/{conversationId}/communications/{communication}/messages", new { textBody = text });
    }

    static readonly Dictionary<string, string> Communications = [];

    /// <summary>The bot's communication id in a conversation (read once, then remembered: a test reads it before an outage).</summary>
    public static async Task<string> BotCommunicationAsync(PlatformClient bot, string conversationId)
    {
        lock (Communications) if (Communications.TryGetValue(conversationId, out var known)) return known;
        var conversation = await bot.ConversationAsync(conversationId);
        var id = (string)conversation["participants"]!.AsArray().Single(p => (string?)p!["purpose"] == "workflow")!["messages"]![0]!["id"]!;
        lock (Communications) Communications[conversationId] = id;
        return id;
    }

    /// <summary>A health endpoint's HTTP status and the overall status its body names ("Healthy", "Degraded", "Unhealthy").</summary>
    public static async Task<(int Code, string? Status, string Body)> HealthAsync(ParleyProcess node, string path)
    {
        using var http = new HttpClient { BaseAddress = node.BaseAddress, Timeout = TimeSpan.FromSeconds(5) };
        using var response = await http.GetAsync(path);
        var text = await response.Content.ReadAsStringAsync();
        string? status;
        try { status = (string?)JsonNode.Parse(text)?["status"]; }
        catch (System.Text.Json.JsonException) { status = text.Trim(); }
        return ((int)response.StatusCode, status, text);
    }

    /// <summary>
    /// Polls a health endpoint until it answers <paramref name="code"/> with <paramref name="status"/> (null: any);
    /// returns how long that took. A node's health has no push: polling it is how a load balancer learns it too.
    /// </summary>
    public static async Task<TimeSpan> WaitForHealthAsync(ParleyProcess node, string path, int code, string? status, TimeSpan? timeout = null)
    {
        var clock = Stopwatch.StartNew();
        var deadline = timeout ?? TimeSpan.FromSeconds(30);
        (int Code, string? Status, string Body) last = default;
        while (clock.Elapsed < deadline)
        {
            try
            {
                last = await HealthAsync(node, path);
                if (last.Code == code && (status is null || string.Equals(last.Status, status, StringComparison.OrdinalIgnoreCase)))
                    return clock.Elapsed;
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException) { last = (0, e.Message, ""); }
            await Task.Delay(50);
        }
        throw new TimeoutException($"{path} on {node.BaseAddress} did not answer {code} {status} within {deadline.TotalSeconds:0} s; last: {last.Code} {last.Body}");
    }

    /// <summary>Sends a text and returns the reply for it with every frame that arrived before that reply.</summary>
    public static async Task<(JsonObject Reply, List<JsonObject> Before)> SendCollectingAsync(TestGuest guest, string text)
    {
        var tracing = await guest.SendTextNoWaitAsync(text);
        var before = new List<JsonObject>();
        var reply = await guest.NextAsync(f =>
        {
            if ((string?)f["tracingId"] == tracing) return true;
            before.Add(f);
            return false;
        });
        return (reply, before);
    }

    /// <summary>The guest's whole history (GET /api/v2/webmessaging/messages with its JWT), on the given node: id → text.</summary>
    public static async Task<List<(string Id, string? Text)>> HistoryAsync(Uri node, string jwt)
    {
        using var http = new HttpClient { BaseAddress = node, Timeout = TimeSpan.FromSeconds(30) };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", jwt);
        var messages = new List<(string, string?)>();
        for (var page = 1; ; page++)
        {
            var body = (await http.GetFromJsonAsync<JsonObject>($"/api/v2/webmessaging/messages?pageSize=100&pageNumber={page}"))!;
            foreach (var m in body["entities"]!.AsArray()) messages.Add(((string)m!["id"]!, (string?)m["text"]));
            if (page >= (int)body["pageCount"]!) break;
        }
        return messages;
    }

    /// <summary>The text of a guest's frame.</summary>
    public static string? Text(JsonObject frame) => (string?)frame["body"]?["text"];
}
