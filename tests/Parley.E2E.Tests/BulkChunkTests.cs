using System.Net;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Parley.Core;

namespace Parley.E2E.Tests;

/// <summary>
/// A bulk termination ends its conversations in chunks (<c>Parley:Terminations:Chunk</c>): one store write for the chunk,
/// each end still decided under its own lock and guarded by its own version. These race a chunk against a guest's message
/// and against another node's end, over real sockets and the real SQLite store.
/// </summary>
public sealed class BulkChunkTests
{
    const string Terminations = "/api/v2/parley/terminations";

    static async Task<TestGuest> GuestAsync(ParleyServer server)
    {
        var guest = await TestGuest.ConnectAsync(server, Guid.NewGuid().ToString(), null, ParleyServer.DeploymentId);
        await guest.ConfigureAsync();
        return guest;
    }

    static async Task<string> StartAsync(PlatformClient platform, string campaign, TestGuest guest)
    {
        var (response, body) = await platform.PostAsync("/api/v2/conversations/messages/agentless", new
        {
            fromAddress = ParleyServer.DeploymentId, toAddress = await guest.SessionIdAsync(), toAddressMessengerType = "webmessaging",
            textBody = "Hello from the campaign", campaign,
        });
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"agentless: {(int)response.StatusCode} {body?.ToJsonString()}");
        await guest.NextAsync(Frames.IsOutboundText);
        return body!["conversationId"]!.GetValue<string>();
    }

    static async Task<JsonArray> AuditAsync(PlatformClient platform, string conversationId) =>
        (await platform.GetAsync($"/api/v2/parley/audit/terminations?conversationId={conversationId}")).Body!["entities"]!.AsArray();

    /// <summary>
    /// A guest's message sent while its conversation's chunk is committing: exactly one wins. The chunk holds the
    /// conversation's lock, so the end wins; the guest hears the Disconnect first, then its message is refused in the
    /// Guest API's form (read-only), and nothing of it is stored in the ended conversation.
    /// </summary>
    [Fact]
    public async Task AGuestMessageRacingItsChunk_LosesCleanly_AfterTheDisconnect()
    {
        var gate = new CommitGate();
        await using var server = await ParleyServer.StartAsync(services: s =>
            s.AddSingleton<IConversationStore>(sp => new GatedCommits(sp.GetRequiredService<StoragePorts>().Conversations, gate)));
        using var platform = await server.PlatformAsync();
        await using var racing = await GuestAsync(server);
        await using var other = await GuestAsync(server);
        var racingId = await StartAsync(platform, "race", racing);
        await StartAsync(platform, "race", other);

        var bulk = platform.PostAsync(Terminations, new { filter = new { campaign = "race" }, reason = "chunk" });
        await gate.Held.WaitAsync(TimeSpan.FromSeconds(10));   // the chunk is decided and its write is about to run
        var tracing = await racing.SendTextNoWaitAsync("one last thing");
        gate.Release();

        var first = await racing.NextAsync(f => Frames.IsDisconnect(f) || (string?)f["tracingId"] == tracing);
        Assert.True(Frames.IsDisconnect(first), first.ToJsonString());
        var refused = await racing.NextAsync(f => (string?)f["tracingId"] == tracing);
        Assert.Equal((409, "Session is read-only, no new messages allowed"), ((int)refused["code"]!, (string?)refused["body"]));
        await other.NextAsync(Frames.IsDisconnect);

        var (response, body) = await bulk.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal((2, 2, 0, 0, 2), ((int)body!["matched"]!, (int)body["ended"]!, (int)body["alreadyEnded"]!, (int)body["failed"]!,
            (int)body["socketsNotified"]!));
        var stored = await server.Services.GetRequiredService<StoragePorts>().Conversations.ListMessagesAsync(racingId, 100, 1, default);
        Assert.Equal(["Hello from the campaign"], stored.Entities.Select(m => m.Text));
        Assert.Equal("Bulk", (string?)(await AuditAsync(platform, racingId)).Single()!["lever"]);
    }

    /// <summary>
    /// Another node ends one conversation of a chunk after the chunk was decided (this node's cache still holds it live):
    /// that end's version guard refuses it alone, it is decided again on what is stored and counted as already ended,
    /// with one audit row (the other node's); the rest of the chunk is ended and told.
    /// </summary>
    [Fact]
    public async Task AChunkWhereAnotherNodeEndedOneFirst_EndsTheRest_AndCountsThatOneAlreadyEnded()
    {
        var gate = new CommitGate();
        await using var server = await ParleyServer.StartAsync(services: s =>
            s.AddSingleton<IConversationStore>(sp => new GatedCommits(sp.GetRequiredService<StoragePorts>().Conversations, gate)));
        using var platform = await server.PlatformAsync();
        var store = server.Services.GetRequiredService<StoragePorts>().Conversations;
        await using var first = await GuestAsync(server);
        await using var second = await GuestAsync(server);
        await using var third = await GuestAsync(server);
        var firstId = await StartAsync(platform, "other-node", first);
        var secondId = await StartAsync(platform, "other-node", second);
        await StartAsync(platform, "other-node", third);

        var bulk = platform.PostAsync(Terminations, new { filter = new { campaign = "other-node" }, reason = "chunk" });
        await gate.Held.WaitAsync(TimeSpan.FromSeconds(10));
        // What another node does: decide the end on the stored state and commit it guarded, straight to the shared store.
        var stored = (await store.LoadAsync(secondId, default))!;
        var elsewhere = new Actor("another-node-client");
        var decision = ConversationMachine.Decide(stored, new EndConversation(elsewhere, EndLever.ConversationDisconnect, "elsewhere"), DateTimeOffset.UtcNow);
        var after = ConversationMachine.ApplyAll(stored, decision.Events);
        var audit = new TerminationAudit(Guid.NewGuid().ToString(), secondId, null, EndLever.ConversationDisconnect, elsewhere.ClientId, "elsewhere",
            decision.Events[^1].At, 0, null, null);
        Assert.True((await store.CommitAsync(new Commit(after, stored.Version, decision.Events, Audit: audit), default)).Stored);
        gate.Release();

        var (response, body) = await bulk.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal((3, 2, 1, 0, 2), ((int)body!["matched"]!, (int)body["ended"]!, (int)body["alreadyEnded"]!, (int)body["failed"]!,
            (int)body["socketsNotified"]!));
        await first.NextAsync(Frames.IsDisconnect);
        await third.NextAsync(Frames.IsDisconnect);
        Assert.Equal("ConversationDisconnect", (string?)(await AuditAsync(platform, secondId)).Single()!["lever"]);
        Assert.Equal("Bulk", (string?)(await AuditAsync(platform, firstId)).Single()!["lever"]);
    }

    /// <summary>
    /// The chunks of a page of the listing share no lock stripe, so the chunks in flight together never wait for each
    /// other's locks; every conversation is in exactly one chunk, and a chunk is cut at the configured size, or after
    /// the rest of its last stripe.
    /// </summary>
    [Theory]
    [InlineData(1000, 256)]
    [InlineData(1000, 1000)]
    [InlineData(37, 8)]
    public void AListingPage_IsCutIntoChunksOfDisjointLockStripes(int count, int size)
    {
        var locks = new StripedLock(1024);
        var page = Enumerable.Range(0, count).Select(_ => Live(Guid.CreateVersion7().ToString())).ToList();

        var chunks = Parley.Server.Terminations.BulkTerminator.StripeChunks(page, locks.StripeOf, size).ToList();

        Assert.Equal(page.Select(r => r.Id).Order(), chunks.SelectMany(c => c).Select(r => r.Id).Order());
        var stripeSets = chunks.Select(c => c.Select(r => locks.StripeOf(r.Id)).ToHashSet()).ToList();
        for (var i = 0; i < stripeSets.Count; i++)
            for (var j = i + 1; j < stripeSets.Count; j++)
                Assert.False(stripeSets[i].Overlaps(stripeSets[j]), $"chunks {i} and {j} share a lock stripe");
        Assert.All(chunks.SkipLast(1), c => Assert.True(c.Length >= size, $"a chunk of {c.Length} before the last"));
        // Longer than the size only by the rest of the stripe it was cut in.
        Assert.All(chunks.Where(c => c.Length > size), c => Assert.Single(c[(size - 1)..].Select(r => locks.StripeOf(r.Id)).Distinct()));
    }

    /// <summary>Rows of one stripe only: cut anyway at twice the size (neighbours then wait, but no chunk grows without bound).</summary>
    [Fact]
    public void AStripeHoldingMoreThanTwoChunks_IsCutAtTwiceTheSize()
    {
        var page = Enumerable.Range(0, 1000).Select(i => Live($"c-{i}")).ToList();

        var chunks = Parley.Server.Terminations.BulkTerminator.StripeChunks(page, _ => 7, 256).ToList();

        Assert.Equal([512, 488], chunks.Select(c => c.Length));
    }

    static LiveConversation Live(string id) => new(id, ChannelKind.WebMessaging, "deployment", DateTimeOffset.UnixEpoch, null, null, null);

    /// <summary>Holds the first chunk write (<see cref="IConversationStore.CommitManyAsync"/>) until released.</summary>
    sealed class CommitGate
    {
        int _calls;
        readonly TaskCompletionSource _held = new(TaskCreationOptions.RunContinuationsAsynchronously);
        readonly TaskCompletionSource _release = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public Task Held => _held.Task;
        public void Release() => _release.TrySetResult();

        public async Task PassAsync()
        {
            if (Interlocked.Increment(ref _calls) != 1) return;
            _held.TrySetResult();
            await _release.Task;
        }
    }

    /// <summary>The real store, its chunk writes passing through a <see cref="CommitGate"/> first.</summary>
    sealed class GatedCommits(IConversationStore inner, CommitGate gate) : DelegatingConversationStore(inner)
    {
        public override async Task<IReadOnlyList<CommitResult>> CommitManyAsync(IReadOnlyList<Commit> commits, CancellationToken ct)
        {
            await gate.PassAsync();
            return await Inner.CommitManyAsync(commits, ct);
        }
    }
}
