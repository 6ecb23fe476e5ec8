using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;

namespace Parley.E2E.Tests;

/// <summary>The per-conversation message sequence on the wire: a Parley extension on Platform API message answers only.</summary>
public sealed class SequenceTests
{
    [Fact]
    public async Task Sequence_NumbersEveryMessageOfTheConversation_OnPlatformAnswers_NeverOnTheGuestApi()
    {
        await using var server = await ParleyServer.StartAsync();
        using var platform = await server.PlatformAsync();
        await using var guest = await server.GuestAsync();
        await guest.ConfigureAsync();
        var echoes = new List<JsonNode> { await guest.SendTextAsync("one"), await guest.SendTextAsync("two") };
        var conversationId = (await platform.GetAsync("/api/v2/conversations/messages")).Body!["entities"]!.AsArray().Single()!["id"]!.GetValue<string>();
        var conversation = await platform.ConversationAsync(conversationId);
        var communicationId = conversation["participants"]!.AsArray().Single(p => (string?)p!["purpose"] == "workflow")!["messages"]![0]!["id"]!.GetValue<string>();

        var sent = new List<JsonObject>();
        foreach (var text in new[] { "three", "four", "five" })
        {
            var (response, body) = await platform.PostAsync(
                $"/api/v2/conversations/messages/{conversationId}/communications/{communicationId}/messages", new { textBody = text });
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            sent.Add(body!.AsObject());
        }

        Assert.Equal([3L, 4L, 5L], sent.Select(m => (long)m["sequence"]!));
        var (_, read) = await platform.GetAsync($"/api/v2/conversations/messages/{conversationId}/messages/{sent[1]["id"]}");
        Assert.Equal(4L, (long)read!["sequence"]!);
        var (_, messageConversation) = await platform.GetAsync($"/api/v2/conversations/messages/{conversationId}");
        var listed = messageConversation!["participants"]!.AsArray().SelectMany(p => p!["messages"]!.AsArray())
            .Select(m => ((long)m!["sequence"]!, m["messageTime"]!.GetValue<string>())).OrderBy(m => m.Item1).ToList();
        Assert.Equal([1L, 2L, 3L, 4L, 5L], listed.Select(m => m.Item1));

        // The Guest API has no place for it: its frames and history stay exactly the platform's shape, newest first.
        Assert.All(echoes, e => Assert.Null(e["body"]!["sequence"]));
        var jwt = await guest.JwtAsync();
        using var history = new HttpClient { BaseAddress = server.BaseAddress };
        history.DefaultRequestHeaders.Authorization = new("bearer", jwt);
        var page = await history.GetFromJsonAsync<JsonObject>("/api/v2/webmessaging/messages?pageSize=25&pageNumber=1");
        Assert.Equal(["five", "four", "three", "two", "one"], page!["entities"]!.AsArray().Select(e => (string)e!["text"]!));
        Assert.All(page["entities"]!.AsArray(), e => Assert.Null(e!["sequence"]));
    }
}
