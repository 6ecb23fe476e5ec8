using System.Collections.Immutable;

namespace Parley.Core;

/// <summary>What a termination policy ends (docs/ending-sessions.md "Policies").</summary>
public enum PolicyType
{
    /// <summary>Every live conversation of the channel ends once it has lasted <see cref="TerminationPolicy.MaxDuration"/>.</summary>
    MaxDuration,
    /// <summary>Every live conversation a campaign tag and/or a bot (OAuth client) started before <see cref="TerminationPolicy.EndAt"/> ends then.</summary>
    Campaign,
    /// <summary>At each closing time (local, in a time zone), every live conversation started before it ends.</summary>
    BusinessHours,
}

/// <summary>
/// A rule that ends the live conversations of one channel — a web messaging deployment (<see cref="ChannelKind.WebMessaging"/>)
/// or an open messaging integration (<see cref="ChannelKind.Open"/>), named by <see cref="ChannelId"/> — without anyone
/// calling. Which fields apply depends on <see cref="Type"/>; <see cref="PolicySchedule"/> says what is due and when.
/// A policy belongs to its channel: deleting the deployment or integration deletes its policies.
/// </summary>
public sealed record TerminationPolicy(
    string Id,
    string Name,
    ChannelKind Channel,
    string ChannelId,
    PolicyType Type,
    bool Enabled,
    string? Reason,
    DateTimeOffset DateCreated,
    DateTimeOffset DateModified,
    string CreatedBy)
{
    /// <summary>maxDuration: the longest a conversation may last.</summary>
    public TimeSpan? MaxDuration { get; init; }
    /// <summary>campaign: the campaign tag the conversations carry (<see cref="Conversation.Campaign"/>).</summary>
    public string? Campaign { get; init; }
    /// <summary>campaign: the OAuth client whose agentless requests started them (<see cref="Conversation.StartedBy"/>).</summary>
    public string? StartedBy { get; init; }
    /// <summary>campaign: the instant its conversations end (those it starts later are not touched).</summary>
    public DateTimeOffset? EndAt { get; init; }
    /// <summary>businessHours: the local closing time.</summary>
    public TimeOnly? CloseAt { get; init; }
    /// <summary>businessHours: the IANA time zone of <see cref="CloseAt"/> (e.g. <c>Europe/Paris</c>).</summary>
    public string? TimeZone { get; init; }
    /// <summary>businessHours: the local days it closes on; empty: every day.</summary>
    public ImmutableArray<DayOfWeek> Days { get; init; } = [];

    /// <summary>Bounds of <see cref="MaxDuration"/>: a minute (a sweep period is a second; shorter is a typo) to a year.</summary>
    public static readonly TimeSpan MinMaxDuration = TimeSpan.FromMinutes(1), MaxMaxDuration = TimeSpan.FromDays(365);
    public const int MaxNameLength = 200;
    public const int MaxReasonLength = 500;

    /// <summary>The actor a policy's ends are recorded under (audit client id).</summary>
    public Actor Actor => new($"parley:policy:{Id}");

    /// <summary>The reason its ends carry: its own, or <c>policy '&lt;name&gt;'</c>.</summary>
    public string EndReason => Reason ?? $"policy '{Name}'";
}

/// <summary>
/// Termination policies, per channel. Each method is one atomic step. A policy names an existing channel:
/// <see cref="CreateAsync"/> and <see cref="UpdateAsync"/> answer false, storing nothing, when the deployment or integration
/// it names is not there (checked in the same statement), and deleting a deployment or an integration deletes its policies
/// in the same transaction. Adapters: SQLite, PostgreSQL (the storage contract suite checks both).
/// </summary>
public interface ITerminationPolicyStore
{
    /// <summary>Policies oldest first (then by id); optionally only one channel's.</summary>
    Task<IReadOnlyList<TerminationPolicy>> ListAsync(ChannelKind? channel, string? channelId, CancellationToken ct);
    /// <summary>Every enabled policy, oldest first (what a sweep evaluates).</summary>
    Task<IReadOnlyList<TerminationPolicy>> ListEnabledAsync(CancellationToken ct);
    Task<TerminationPolicy?> GetAsync(string id, CancellationToken ct);
    /// <summary>Stores a new policy; false when its channel does not exist.</summary>
    Task<bool> CreateAsync(TerminationPolicy policy, CancellationToken ct);
    /// <summary>Replaces the policy's fields (not its id, creation time or creator); false when there is no such policy or its channel does not exist.</summary>
    Task<bool> UpdateAsync(TerminationPolicy policy, CancellationToken ct);
    /// <summary>False when there was no such policy.</summary>
    Task<bool> DeleteAsync(string id, CancellationToken ct);
}

/// <summary>
/// When a policy ends what (pure: no clock, no I/O). <see cref="Due"/> is the filter a sweep at <c>now</c> ends;
/// <see cref="EndsAt"/> is when a given live conversation will end (the dry-run preview). Both agree: a conversation is due
/// at <c>now</c> exactly when its <see cref="EndsAt"/> is at or before <c>now</c>.
/// <para>Business hours: each closing instant is the local <see cref="TerminationPolicy.CloseAt"/> on an allowed day, in
/// the policy's time zone. A closing time that does not exist that day (skipped by a daylight-saving jump) happens at the
/// first instant after the gap; one that occurs twice (the clocks go back) happens once, at the first. Only closing instants
/// at or after the policy's creation count: a policy does not end conversations for closings before it existed.</para>
/// </summary>
public static class PolicySchedule
{
    /// <summary>The live conversations the policy can ever end (its channel; for a campaign policy, its campaign and bot).</summary>
    public static LiveFilter Scope(TerminationPolicy p) => p.Type == PolicyType.Campaign
        ? new LiveFilter(ChannelId: p.ChannelId, Channel: p.Channel, Campaign: p.Campaign, StartedBy: p.StartedBy)
        : new LiveFilter(ChannelId: p.ChannelId, Channel: p.Channel);

    /// <summary>The live conversations the policy ends at <paramref name="now"/>; null when nothing is due (or it is disabled).</summary>
    public static LiveFilter? Due(TerminationPolicy p, DateTimeOffset now)
    {
        if (!p.Enabled) return null;
        DateTimeOffset? before = p.Type switch
        {
            // start + max ≤ now ⇔ start ≤ now − max; starts are stored to the millisecond, and the bound is exclusive.
            PolicyType.MaxDuration => AtOrBefore(now - p.MaxDuration!.Value),
            PolicyType.Campaign => p.EndAt is { } endAt && endAt <= now ? endAt : null,
            PolicyType.BusinessHours => LastClose(p, now),
            _ => null,
        };
        return before is { } b ? Scope(p) with { StartedBefore = b } : null;
    }

    /// <summary>
    /// When the policy ends a live conversation of its channel that started at <paramref name="start"/> (and carries
    /// <paramref name="campaign"/>, <paramref name="startedBy"/>): the rule's instant, or <paramref name="now"/> when that
    /// is already past (the next sweep ends it). Null when the policy never ends it.
    /// </summary>
    public static DateTimeOffset? EndsAt(TerminationPolicy p, DateTimeOffset start, string? campaign, string? startedBy, DateTimeOffset now)
    {
        DateTimeOffset? at = p.Type switch
        {
            PolicyType.MaxDuration => start + p.MaxDuration!.Value,
            PolicyType.Campaign => (p.Campaign is null || p.Campaign == campaign) && (p.StartedBy is null || p.StartedBy == startedBy)
                && p.EndAt is { } endAt && start < endAt ? endAt : null,
            // The first closing after it started (and not before the policy existed).
            PolicyType.BusinessHours => NextCloseAfter(p, Max(start, p.DateCreated - TimeSpan.FromTicks(1))),
            _ => null,
        };
        return at is { } t ? Max(t, now) : null;
    }

    /// <summary>The latest closing instant at or before <paramref name="now"/> and at or after the policy's creation; null if none.</summary>
    public static DateTimeOffset? LastClose(TerminationPolicy p, DateTimeOffset now)
    {
        var (close, zone) = Hours(p);
        var today = LocalDate(now, zone);
        // Eight days back covers every allowed weekday; a day either side covers the offset between UTC and local dates.
        for (var d = today.AddDays(1); d >= today.AddDays(-8); d = d.AddDays(-1))
        {
            if (!Allowed(p, d)) continue;
            var at = CloseOn(d, close, zone);
            if (at <= now) return at >= p.DateCreated ? at : null;
        }
        return null;
    }

    /// <summary>The first closing instant strictly after <paramref name="after"/>; null if the policy closes on no day.</summary>
    public static DateTimeOffset? NextCloseAfter(TerminationPolicy p, DateTimeOffset after)
    {
        var (close, zone) = Hours(p);
        var today = LocalDate(after, zone);
        for (var d = today.AddDays(-1); d <= today.AddDays(8); d = d.AddDays(1))
            if (Allowed(p, d) && CloseOn(d, close, zone) is var at && at > after) return at;
        return null;
    }

    /// <summary>
    /// The UTC instant of local time <paramref name="close"/> on <paramref name="date"/> in <paramref name="zone"/>: a time
    /// skipped by a daylight-saving jump becomes the first instant after the gap; a time that occurs twice, the first.
    /// </summary>
    public static DateTimeOffset CloseOn(DateOnly date, TimeOnly close, TimeZoneInfo zone)
    {
        var local = date.ToDateTime(close, DateTimeKind.Unspecified);
        if (zone.IsAmbiguousTime(local))
            return new DateTimeOffset(local, zone.GetAmbiguousTimeOffsets(local).Max()).ToUniversalTime();
        if (!zone.IsInvalidTime(local)) return new DateTimeOffset(local, zone.GetUtcOffset(local)).ToUniversalTime();
        // In the gap: the transition lies between the instant read with the later offset and the one read with the earlier.
        // Search it out (the first instant whose local time is past the gap); transitions need not be on the hour.
        var offsets = new[] { zone.GetUtcOffset(local.AddDays(-1)), zone.GetUtcOffset(local.AddDays(1)) };
        var lo = new DateTimeOffset(local, TimeSpan.Zero) - offsets.Max();   // still before the jump
        var hi = new DateTimeOffset(local, TimeSpan.Zero) - offsets.Min();   // already after it
        while (hi - lo > TimeSpan.FromTicks(1))
        {
            var mid = lo + (hi - lo) / 2;
            if (zone.GetUtcOffset(mid) == zone.GetUtcOffset(hi)) hi = mid; else lo = mid;
        }
        return hi;
    }

    /// <summary>The IANA zone by id, or null when this machine does not know it.</summary>
    public static TimeZoneInfo? FindZone(string id) =>
        id.Length is > 0 and <= 100 && TimeZoneInfo.TryFindSystemTimeZoneById(id, out var zone) ? zone : null;

    static (TimeOnly Close, TimeZoneInfo Zone) Hours(TerminationPolicy p) =>
        (p.CloseAt!.Value, FindZone(p.TimeZone!) ?? throw new InvalidOperationException($"Unknown time zone '{p.TimeZone}'."));

    static bool Allowed(TerminationPolicy p, DateOnly localDate) => p.Days.IsDefaultOrEmpty || p.Days.Contains(localDate.DayOfWeek);

    static DateOnly LocalDate(DateTimeOffset t, TimeZoneInfo zone) => DateOnly.FromDateTime(TimeZoneInfo.ConvertTime(t, zone).DateTime);

    /// <summary>An exclusive bound that admits every millisecond-precise instant at or before <paramref name="t"/>.</summary>
    static DateTimeOffset AtOrBefore(DateTimeOffset t) =>
        DateTimeOffset.FromUnixTimeMilliseconds(t.ToUnixTimeMilliseconds() + 1);

    static DateTimeOffset Max(DateTimeOffset a, DateTimeOffset b) => a >= b ? a : b;
}
