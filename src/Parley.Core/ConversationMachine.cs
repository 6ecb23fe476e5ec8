using System.Collections.Immutable;
using System.Runtime.InteropServices;

namespace Parley.Core;

/// <summary>
/// Who asked: an OAuth client on the Platform API (and the user it acts for, with a user's token), or the guest over the
/// Guest API.
/// </summary>
public sealed record Actor(string ClientId, string? UserId = null, string? UserName = null)
{
    public static readonly Actor Guest = new("guest");
}

// Commands are what somebody asks for; the machine decides whether it happens.
public abstract record Command;

/// <summary>A message (text or events) from a participant. The message id and time come from the caller.</summary>
public sealed record AddMessage(
    string MessageId,
    string ParticipantId,
    MessageKind Kind,
    string? Text,
    ImmutableArray<MessageEvent> Events,
    string? OriginatingEntity,
    ImmutableDictionary<string, string>? Metadata = null,
    string? TracingId = null,
    string? ExternalKey = null) : Command;

public sealed record DisconnectParticipant(string ParticipantId, Actor By, EndLever Lever, string? Reason) : Command;

public sealed record EndConversation(Actor By, EndLever Lever, string? Reason) : Command;

// Events are facts that happened; they are what is stored and what is fanned out.
public abstract record ConversationEvent(DateTimeOffset At);

/// <summary>A stored message. <see cref="TracingId"/> is the sender's correlation id, echoed back and never stored.</summary>
public sealed record MessageAdded(ConversationMessage Message, string? TracingId = null) : ConversationEvent(Message.Timestamp);

public sealed record ParticipantDisconnected(string ParticipantId, DisconnectType DisconnectType, DateTimeOffset At)
    : ConversationEvent(At);

public sealed record ConversationEnded(Actor By, EndLever Lever, string? Reason, string? ParticipantId, DateTimeOffset At)
    : ConversationEvent(At);

/// <summary>Why a command was refused: a stable code the endpoints map to each protocol's error form.</summary>
public enum RejectionCode { ConversationEnded, ParticipantNotFound, ParticipantDisconnected, ConversationActive }

public sealed record Rejection(RejectionCode Code, string Message);

public sealed record Decision(ImmutableArray<ConversationEvent> Events, Rejection? Rejected)
{
    public static Decision Accept(params ConversationEvent[] events) => new([.. events], null);
    public static Decision Reject(RejectionCode code, string message) => new([], new Rejection(code, message));
    /// <summary>Accepted with nothing to do, e.g. ending a conversation that already ended.</summary>
    public bool IsNoOp => Rejected is null && Events.IsEmpty;
}

/// <summary>
/// The conversation state machine: pure functions, no I/O, no clock. Decide turns a command into facts or a
/// rejection; Apply folds facts into state. Terminations are idempotent; writes to an ended conversation are refused.
/// </summary>
public static class ConversationMachine
{
    public static Decision Decide(Conversation c, Command command, DateTimeOffset now) => command switch
    {
        AddMessage m => DecideMessage(c, m, now),
        DisconnectParticipant d => DecideDisconnectParticipant(c, d, now),
        EndConversation e => c.IsEnded ? Decision.Accept() : Decision.Accept(EndAll(c, e.By, e.Lever, e.Reason, null, now)),
        _ => throw new ArgumentOutOfRangeException(nameof(command), command, "unknown command"),
    };

    static Decision DecideMessage(Conversation c, AddMessage m, DateTimeOffset now)
    {
        if (c.FindParticipant(m.ParticipantId) is not { } sender)
            return Decision.Reject(RejectionCode.ParticipantNotFound, $"Participant {m.ParticipantId} is not in conversation {c.Id}.");
        if (c.IsEnded)
            return Decision.Reject(RejectionCode.ConversationEnded, $"Conversation {c.Id} has ended; nothing can be added to it.");
        if (!sender.IsConnected)
            return Decision.Reject(RejectionCode.ParticipantDisconnected, $"Participant {sender.Id} has left conversation {c.Id}.");
        var direction = sender.Purpose == ParticipantPurpose.Customer ? MessageDirection.Inbound : MessageDirection.Outbound;
        var message = new ConversationMessage(m.MessageId, c.Id, sender.Id, direction, m.Kind, m.Text, m.Events, now,
            m.OriginatingEntity, sender.Name, c.Version, m.Metadata,
            direction == MessageDirection.Inbound ? "received" : "sent", m.ExternalKey);
        return Decision.Accept(new MessageAdded(message, m.TracingId));
    }

    static Decision DecideDisconnectParticipant(Conversation c, DisconnectParticipant d, DateTimeOffset now)
    {
        if (c.FindParticipant(d.ParticipantId) is not { } target)
            return Decision.Reject(RejectionCode.ParticipantNotFound, $"Participant {d.ParticipantId} is not in conversation {c.Id}.");
        if (!target.IsConnected) return Decision.Accept();   // idempotent: already gone, no new fact

        // The conversation ends when the customer leaves, or when nobody is left on the platform side.
        var othersRemain = c.Participants.Any(p => p.Id != target.Id && p.IsConnected && p.Purpose != ParticipantPurpose.Customer);
        if (target.Purpose == ParticipantPurpose.Customer || !othersRemain)
            return Decision.Accept(EndAll(c, d.By, d.Lever, d.Reason, target.Id, now));
        return Decision.Accept(new ParticipantDisconnected(target.Id, DisconnectType.Client, now));
    }

    /// <summary>
    /// Ends the conversation: the participant the caller named leaves as <c>client</c>, the rest as <c>peer</c>;
    /// a whole-conversation end or a bulk end names everybody (<c>client</c>), a teardown or a policy is the platform's doing (<c>system</c>).
    /// </summary>
    static ConversationEvent[] EndAll(Conversation c, Actor by, EndLever lever, string? reason, string? named, DateTimeOffset now)
    {
        var events = new List<ConversationEvent>();
        foreach (var p in c.Participants)
        {
            if (!p.IsConnected) continue;
            var type = lever switch
            {
                EndLever.ConversationDisconnect => DisconnectType.System,
                EndLever.Inactivity => DisconnectType.Inactivity,
                EndLever.Policy => DisconnectType.System,     // the platform ended it by a rule (audit names the policy)
                EndLever.Bulk => DisconnectType.Client,       // a caller's deliberate end, as the whole-conversation PATCH
                EndLever.ConversationPatch => DisconnectType.Client,
                _ => p.Id == named ? DisconnectType.Client : DisconnectType.Peer,
            };
            events.Add(new ParticipantDisconnected(p.Id, type, now));
        }
        events.Add(new ConversationEnded(by, lever, reason, named, now));
        return [.. events];
    }

    public static Conversation Apply(Conversation c, ConversationEvent e) => e switch
    {
        // A message appends to the conversation without changing its state, so it leaves the version alone: messages
        // never conflict with each other, only with a change of state (the store guards an append with the version).
        MessageAdded => c,
        ParticipantDisconnected p => c with { Version = c.Version + 1, Participants = Disconnected(c.Participants, p) },
        ConversationEnded ended => c with { Version = c.Version + 1, State = ConversationState.Disconnected, EndTime = ended.At },
        _ => throw new ArgumentOutOfRangeException(nameof(e), e, "unknown event"),
    };

    public static Conversation ApplyAll(Conversation c, IEnumerable<ConversationEvent> events) => events.Aggregate(c, Apply);

    /// <summary>As the other overload, without boxing the array or an enumerator (the hot path's form).</summary>
    public static Conversation ApplyAll(Conversation c, ImmutableArray<ConversationEvent> events)
    {
        foreach (var e in events) c = Apply(c, e);
        return c;
    }

    /// <summary>The participants with the one named disconnected: one new array, no LINQ (per termination, per participant).</summary>
    static ImmutableArray<Participant> Disconnected(ImmutableArray<Participant> participants, ParticipantDisconnected p)
    {
        for (var i = 0; i < participants.Length; i++)
        {
            var x = participants[i];
            if (x.Id == p.ParticipantId)
                return participants.SetItem(i, x with { State = ParticipantState.Disconnected, EndTime = p.At, DisconnectType = p.DisconnectType });
        }
        return participants;
    }

    /// <summary>
    /// The events as committed: the store gave the commit's messages the sequence numbers up to
    /// <paramref name="lastSequence"/>, in the order the events list them.
    /// </summary>
    public static ImmutableArray<ConversationEvent> Sequenced(ImmutableArray<ConversationEvent> events, long lastSequence)
    {
        // Once per commit on the hot path: loops over the array, no LINQ closures or enumerators.
        var messages = 0;
        foreach (var e in events) if (e is MessageAdded) messages++;
        if (messages == 0) return events;
        var next = lastSequence - messages + 1;
        var sequenced = new ConversationEvent[events.Length];
        for (var i = 0; i < events.Length; i++)
            sequenced[i] = events[i] is MessageAdded m ? m with { Message = m.Message with { Sequence = next++ } } : events[i];
        return ImmutableCollectionsMarshal.AsImmutableArray(sequenced);
    }

    /// <summary>
    /// The events as the store stamped them: a change of state committed at <paramref name="changedAt"/> (later than
    /// decided when a message another node stamped later committed first) carries that time, so the end published, cached
    /// and answered is the stored one. Messages keep their own time.
    /// </summary>
    public static ImmutableArray<ConversationEvent> Stamped(ImmutableArray<ConversationEvent> events, DateTimeOffset changedAt) =>
        events.Select(e => e switch
        {
            ParticipantDisconnected p when p.At < changedAt => p with { At = changedAt },
            ConversationEnded ended when ended.At < changedAt => ended with { At = changedAt },
            _ => e,
        }).ToImmutableArray();

    /// <summary>A new two-party conversation: the guest (customer) and the bot (workflow) both connected.</summary>
    public static Conversation Start(string id, ChannelKind channel, string deploymentId, string guestSessionId,
        DisconnectMode mode, MessageDirection originatingDirection, string customerName, string botName,
        Func<string> newId, DateTimeOffset now, TimeSpan? inactivityTimeout = null, string? queueId = null,
        string? campaign = null, string? startedBy = null) =>
        new(id, channel, deploymentId, guestSessionId, mode, originatingDirection, ConversationState.Connected, now, null, 1,
        [
            new Participant(newId(), ParticipantPurpose.Customer, customerName, newId(), ParticipantState.Connected, now),
            new Participant(newId(), ParticipantPurpose.Workflow, botName, newId(), ParticipantState.Connected, now),
        ], inactivityTimeout, queueId, campaign, startedBy);
}
