using System.Net;
using System.Text;
using Parley.Protocol;

namespace Parley.Client.Tests;

/// <summary>
/// The recipe's decisions in a state Parley cannot produce: on Parley a customer who leaves ends the conversation, on
/// Genesys Cloud the customer can be disconnected while the agent's side runs on. Genesys Cloud cannot be reached from a
/// test, so a recorded handler stands for it (it answers the reads and the two levers as the platform would); the rest of
/// the client's tests run against the real server.
/// </summary>
public sealed class RecipeDecisionTests
{
    const string Id = "c0ffee00-0000-4000-8000-000000000001";
    static readonly TerminationVerification Quick = new() { Attempts = 2, FirstDelay = TimeSpan.FromMilliseconds(5), MaxDelay = TimeSpan.FromMilliseconds(5) };

    /// <summary>A conversation whose customer has left, with an agent still connected until the teardown.</summary>
    sealed class GenesysCloud(int patchStatus) : HttpMessageHandler
    {
        public bool TornDown;
        public bool CustomerLeft;
        public readonly List<string> Calls = [];

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken ct)
        {
            var path = request.RequestUri!.AbsolutePath;
            lock (Calls) Calls.Add($"{request.Method} {path}");
            (HttpStatusCode status, string? body) answer = (request.Method.Method, path) switch
            {
                ("GET", $"/api/v2/conversations/messages/{Id}") => (HttpStatusCode.OK, Conversation()),
                ("GET", $"/api/v2/analytics/conversations/{Id}/details") => (HttpStatusCode.OK, Analytics()),
                ("PATCH", $"/api/v2/conversations/messages/{Id}/participants/customer-1") => Patch(),
                ("POST", $"/api/v2/conversations/{Id}/disconnect") => TearDown(),
                _ => (HttpStatusCode.NotFound, """{"code":"not.found","status":404,"message":"no"}"""),
            };
            var response = new HttpResponseMessage(answer.status) { RequestMessage = request };
            if (answer.body is not null) response.Content = new StringContent(answer.body, Encoding.UTF8, "application/json");
            return Task.FromResult(response);
        }

        (HttpStatusCode, string?) Patch()
        {
            if (patchStatus == 409) { CustomerLeft = true; return (HttpStatusCode.Conflict, """{"code":"conflict","status":409,"message":"The participant is disconnected."}"""); }
            CustomerLeft = true;
            return (HttpStatusCode.Accepted, null);
        }

        (HttpStatusCode, string?) TearDown() { TornDown = true; return (HttpStatusCode.Accepted, null); }

        static string Participant(string id, string purpose, bool left) =>
            $$"""{"id":"{{id}}","purpose":"{{purpose}}","state":"{{(left ? "disconnected" : "connected")}}"{{(left ? ""","endTime":"2026-12-01T20:00:00.000Z","disconnectType":"client" """ : "")}}}""";

        string Conversation() =>
            $$"""{"id":"{{Id}}","participants":[{{Participant("customer-1", "customer", CustomerLeft || TornDown)}},{{Participant("agent-1", "agent", TornDown)}}]}""";

        string Analytics() =>
            $$"""{"conversationId":"{{Id}}","conversationStart":"2026-12-01T19:00:00.000Z"{{(TornDown ? ""","conversationEnd":"2026-12-01T20:00:01.000Z" """ : "")}},"participants":[]}""";
    }

    static ParleyClient Client(GenesysCloud cloud) => new(new ParleyClientOptions
    {
        BaseAddress = new Uri("https://api.mypurecloud.example"), AccessToken = "recorded", Verification = Quick,
    }, new HttpClient(cloud));

    [Fact]
    public async Task ACustomerWhoLeft_WhileTheConversationRunsOn_IsNotAlreadyEnded_TheTeardownEndsIt()
    {
        var cloud = new GenesysCloud(patchStatus: 202) { CustomerLeft = true };
        using var client = Client(cloud);

        var result = await client.TerminateAsync(Id, "customer gone, agent still on");

        Assert.Equal(TerminationStatus.Ended, result.Status);
        Assert.Equal(TerminationLever.ConversationDisconnect, result.Lever);
        Assert.True(cloud.TornDown);
        Assert.DoesNotContain(cloud.Calls, c => c.StartsWith("PATCH", StringComparison.Ordinal));   // the customer already left
        Assert.Equal("disconnected", result.Evidence.ConversationState);
        Assert.NotNull(result.Evidence.AnalyticsConversationEnd);
    }

    [Fact]
    public async Task A409OnThePatch_WhileTheConversationRunsOn_GoesOnToTheTeardown()
    {
        var cloud = new GenesysCloud(patchStatus: 409);
        using var client = Client(cloud);

        var result = await client.TerminateAsync(Id);

        Assert.Equal(TerminationStatus.Ended, result.Status);
        Assert.Equal(TerminationLever.ConversationDisconnect, result.Lever);
        var calls = result.Evidence.Calls.Select(c => $"{c.Method} {c.Status}").ToList();
        Assert.Equal("PATCH 409", calls[1]);
        Assert.Contains("POST 202", calls);
    }

    [Fact]
    public async Task AConversationEndedEverywhere_IsAlreadyEnded_AndNoLeverIsSent()
    {
        var cloud = new GenesysCloud(patchStatus: 202) { CustomerLeft = true, TornDown = true };
        using var client = Client(cloud);

        var result = await client.TerminateAsync(Id);

        Assert.Equal(TerminationStatus.AlreadyEnded, result.Status);
        Assert.All(cloud.Calls, c => Assert.StartsWith("GET", c, StringComparison.Ordinal));
    }
}
