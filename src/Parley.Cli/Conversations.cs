using System.CommandLine;
using System.Text.Json;
using Parley.Client;
using Parley.Protocol;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace Parley.Cli;

/// <summary><c>conversations list|show|tail</c>: the live message conversations, one in full, and the events as they happen.</summary>
public static class Conversations
{
    public static Command Build(Session session)
    {
        var command = new Command("conversations", "Live message conversations: list them, show one, follow their events");
        command.Subcommands.Add(List(session));
        command.Subcommands.Add(Common.Show(session, "conversation", "One conversation with its participants (GET /api/v2/conversations/{id})",
            (client, id, ct) => client.Conversations.GetAsync(id, ct), Render));
        command.Subcommands.Add(Tail(session));
        return command;
    }

    static Command List(Session session) =>
        Common.List(session, "The live message conversations (GET /api/v2/conversations/messages)",
            (client, size, number, ct) => client.Conversations.ListLiveAsync(size, number, ct), c =>
            {
                var customer = c.Participants.FirstOrDefault(p => p.Purpose == "customer");
                var queue = c.Participants.Select(p => p.Queue).FirstOrDefault(q => q is not null);
                return
                [
                    c.Id, Common.Shown(customer?.StartTime), Common.Shown(customer?.State), Common.Shown(customer?.Address ?? customer?.FromAddress?.AddressNormalized),
                    Common.Shown(queue?.Name ?? queue?.Id), c.Participants.Sum(p => p.Messages.Count).ToString(System.Globalization.CultureInfo.InvariantCulture),
                ];
            }, "CONVERSATION", "STARTED", "CUSTOMER", "ADDRESS", "QUEUE", "MESSAGES");

    public static IRenderable Render(ConversationWire c) => new Rows(
        Terminal.Fields([("Conversation", c.Id), ("State", c.State), ("Started", c.StartTime), ("Ended", c.EndTime)]),
        Terminal.Table(c.Participants.Select(p => new[]
        {
            p.Id, p.Purpose, Common.Shown(p.State), Common.Shown(p.StartTime), Common.Shown(p.EndTime),
            Common.Shown(p.Messages.FirstOrDefault()?.DisconnectType), Common.Shown(p.QueueName ?? p.QueueId),
        }), "PARTICIPANT", "PURPOSE", "STATE", "STARTED", "ENDED", "DISCONNECT", "QUEUE"));

    static Command Tail(Session session)
    {
        var queues = new Option<string[]>("--queue")
        {
            Description = "Follow this queue's conversations (v2.routing.queues.{id}.conversations); repeatable. Default: the queues of every deployment and integration",
            HelpName = "id", AllowMultipleArgumentsPerToken = false,
        };
        var conversations = new Option<string[]>("--conversation")
        {
            Description = "Follow one conversation's customer start and end (v2.detail.events.conversation.{id}.customer.*); repeatable",
            HelpName = "id",
        };
        var topics = new Option<string[]>("--topic") { Description = "Follow this notification topic as named; repeatable", HelpName = "topic" };
        var count = new Option<int?>("--count") { Description = "Stop after this many events (default: until Ctrl-C)", HelpName = "n" };
        var command = new Command("tail", "Follow conversation events on the notifications stream until Ctrl-C or --count events")
        {
            queues, conversations, topics, count,
        };
        command.SetAction(session.Action(async () =>
        {
            var limit = session.Value(count);
            if (limit is < 1) throw new CliException(ExitCodes.Usage, "--count must be at least 1");
            var client = session.Client();
            var wanted = new List<string>(session.Value(topics) ?? []);
            wanted.AddRange((session.Value(conversations) ?? []).SelectMany(c =>
                new[] { $"v2.detail.events.conversation.{c}.customer.start", $"v2.detail.events.conversation.{c}.customer.end" }));
            var queueIds = (session.Value(queues) ?? []).ToList();
            if (wanted.Count == 0 && queueIds.Count == 0) queueIds = await RoutedQueuesAsync(client, session.Cancellation);
            wanted.AddRange(queueIds.Distinct(StringComparer.Ordinal).Select(q => $"v2.routing.queues.{q}.conversations"));
            if (wanted.Count == 0) throw new CliException(ExitCodes.Usage, "nothing to follow: no deployment or integration routes to a queue; give --queue, --conversation or --topic");

            await using var stream = await client.Notifications.OpenAsync(wanted, null, session.Cancellation);
            // On standard error, so a script reading standard output sees events only; tests wait for this line.
            session.Terminal.Error.WriteLine($"Following {wanted.Count} topic{(wanted.Count == 1 ? "" : "s")}; Ctrl-C to stop", Style.Plain);
            var seen = 0;
            try
            {
                await foreach (var e in stream.WithCancellation(session.Cancellation))
                {
                    if (session.Terminal.Json) session.Terminal.WriteJsonLine(new TailEvent(e.TopicName, e.EventBody, e.CorrelationId));
                    else session.Terminal.Out.WriteLine(Describe(e), Style.Plain);
                    if (++seen == limit) break;
                }
            }
            catch (OperationCanceledException) when (session.Cancelled) { }   // Ctrl-C: the normal end of a tail
            return ExitCodes.Ok;
        }));
        return command;
    }

    /// <summary>One event as <c>--json</c> writes it, a line each.</summary>
    public sealed record TailEvent(string TopicName, JsonElement EventBody, string? CorrelationId);

    /// <summary>The queues conversations can be routed to: every deployment's and every integration's.</summary>
    static async Task<List<string>> RoutedQueuesAsync(ParleyClient client, CancellationToken ct)
    {
        var queues = new List<string>();
        for (var page = 1; ; page++)
        {
            var listing = await client.Deployments.ListAsync(100, page, ct);
            queues.AddRange(listing.Entities.Select(d => d.QueueId).OfType<string>());
            if (page >= listing.PageCount) break;
        }
        for (var page = 1; ; page++)
        {
            var listing = await client.Integrations.ListAsync(100, page, ct);
            queues.AddRange(listing.Entities.Select(i => i.QueueId).OfType<string>());
            if (page >= listing.PageCount) break;
        }
        return queues;
    }

    /// <summary>A line for people: when, which topic, and the event's conversation and participants' states when it has them.</summary>
    static string Describe(NotificationEvent e)
    {
        var body = e.EventBody;
        if (body.ValueKind != JsonValueKind.Object) return $"{DateTimeOffset.UtcNow:HH:mm:ss} {e.TopicName}";
        var conversation = Text(body, "conversationId") ?? Text(body, "id");
        var detail = Text(body, "eventType") is { } type ? $"{type} {Text(body, "disconnectType")}".Trim() : null;
        if (detail is null && body.TryGetProperty("participants", out var participants) && participants.ValueKind == JsonValueKind.Array)
            detail = string.Join(' ', participants.EnumerateArray().Select(p =>
            {
                // Queue topics put the state on the participant's message communication, not on the participant.
                var state = Text(p, "state") ?? (p.TryGetProperty("messages", out var media) && media.ValueKind == JsonValueKind.Array
                    ? media.EnumerateArray().Select(m => Text(m, "state")).FirstOrDefault(s => s is not null) : null);
                return Text(p, "purpose") is { } purpose && state is not null ? $"{purpose}={state}" : null;
            }).OfType<string>());
        return $"{DateTimeOffset.UtcNow:HH:mm:ss} {e.TopicName} {conversation ?? "-"} {detail}".TrimEnd();
    }

    static string? Text(JsonElement e, string name) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
}
