using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Text.Json.Nodes;
using Parley.E2E.Tests;

namespace Parley.Testing;

/// <summary>How the guest of a <see cref="TerminationRace"/> sends.</summary>
public sealed record RacePace
{
    /// <summary>At most this many messages in a trial.</summary>
    public required int MaxMessages { get; init; }

    /// <summary>Messages still sent once the guest holds the Disconnect frame (0: it stops sending there).</summary>
    public int SentAfterTheEnd { get; init; }

    /// <summary>From this message on, a millisecond between sends (a steadier stream after the burst); null: a burst throughout.</summary>
    public int? SteadyFrom { get; init; }
}

/// <summary>
/// One trial of the race the termination guarantee is about: a configured guest pipelines messages (without waiting for
/// answers) while the bot ends its conversation once the guest has seen a given number of its own messages echoed. It
/// reads until the Disconnect frame, checks the end was accepted (202), then collects the answer to every message sent.
/// The caller judges the outcome: on one node (E2E RaceTests) or across two (Cluster CrossNodeRaceTests).
/// </summary>
public static class TerminationRace
{
    /// <summary>A message the guest sent: its tracing id and when it left (a Stopwatch timestamp).</summary>
    public sealed record SentMessage(string TracingId, long SentAt);

    /// <summary>What a trial saw: every frame in arrival order, and the answer to each message sent.</summary>
    public sealed record Outcome(string ConversationId, IReadOnlyList<SentMessage> Sent, List<JsonObject> Frames,
        IReadOnlyDictionary<string, JsonObject> Answers, long DisconnectArrivedAt)
    {
        public int DisconnectIndex => Frames.FindIndex(Parley.E2E.Tests.Frames.IsDisconnect);

        /// <summary>The ids of the messages the guest saw echoed (acknowledged as stored).</summary>
        public HashSet<string> EchoedIds =>
            Frames.Where(Parley.E2E.Tests.Frames.IsInboundEcho).Select(f => (string)f["body"]!["id"]!).ToHashSet();
    }

    /// <param name="guest">A configured guest; the bot starts a conversation with it.</param>
    /// <param name="platform">The bot: starts the conversation, then ends it.</param>
    /// <param name="terminateAfterEchoes">The end is called once this many of the guest's messages were echoed (0: at once).</param>
    public static async Task<Outcome> RunAsync(TestGuest guest, PlatformClient platform, int trial, int terminateAfterEchoes, RacePace pace)
    {
        var conversationId = (string)(await platform.StartConversationAsync(await guest.SessionIdAsync()))["conversationId"]!;
        await guest.NextAsync(Frames.IsOutboundText);

        var sent = new ConcurrentQueue<SentMessage>();
        long endHeldAt = 0;
        var sender = Task.Run(async () =>
        {
            var afterEnd = 0;
            for (var i = 0; i < pace.MaxMessages; i++)
            {
                var at = Stopwatch.GetTimestamp();
                var ended = Volatile.Read(ref endHeldAt) != 0;
                if (ended && afterEnd >= pace.SentAfterTheEnd) break;
                sent.Enqueue(new SentMessage(await guest.SendTextNoWaitAsync($"trial {trial} message {i}"), at));
                if (ended) afterEnd++;
                if (i >= pace.SteadyFrom) await Task.Delay(1);
                else if (i % 4 == 0) await Task.Yield();
            }
        });

        var frames = new List<JsonObject>();
        Task<HttpResponseMessage>? termination = null;
        Task<HttpResponseMessage> TerminateAsync() => platform.Http.PostAsync($"/api/v2/conversations/{conversationId}/disconnect", null);
        if (terminateAfterEchoes == 0) termination = TerminateAsync();
        var echoes = 0;
        while (Volatile.Read(ref endHeldAt) == 0)
        {
            var frame = await guest.NextFrameAsync();
            frames.Add(frame);
            if (Frames.IsInboundEcho(frame)) echoes++;
            if (Frames.IsDisconnect(frame)) Volatile.Write(ref endHeldAt, guest.ArrivedAt(frame));
            if (termination is null && echoes >= terminateAfterEchoes) termination = TerminateAsync();
        }
        Assert.NotNull(termination);
        Assert.Equal(HttpStatusCode.Accepted, (await termination).StatusCode);
        await sender.WaitAsync(TimeSpan.FromSeconds(30));

        var answers = new Dictionary<string, JsonObject>();
        foreach (var f in frames) if ((string?)f["tracingId"] is { } id) answers[id] = f;
        while (answers.Count < sent.Count)
        {
            var f = await guest.NextFrameAsync();
            frames.Add(f);
            if ((string?)f["tracingId"] is { } id) answers[id] = f;
        }
        return new Outcome(conversationId, [.. sent], frames, answers, Volatile.Read(ref endHeldAt));
    }

    /// <summary>The customer's stored messages (id, time) and end time, as the Platform API reads them back.</summary>
    public static async Task<(DateTimeOffset EndTime, IReadOnlyList<(string Id, DateTimeOffset Time)> Messages)> StoredAsync(
        PlatformClient platform, string conversationId)
    {
        var (_, stored) = await platform.GetAsync($"/api/v2/conversations/messages/{conversationId}");
        var customer = stored!["participants"]!.AsArray().Single(p => (string?)p!["purpose"] == "customer")!;
        var messages = customer["messages"]!.AsArray()
            .Select(m => ((string)m!["messageId"]!, DateTimeOffset.Parse((string)m["messageTime"]!))).ToList();
        return (DateTimeOffset.Parse((string)customer["endTime"]!), messages);
    }
}
