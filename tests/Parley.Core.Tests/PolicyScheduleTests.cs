using System.Collections.Immutable;
using Parley.Core;

namespace Parley.Core.Tests;

/// <summary>PolicySchedule: what each termination policy type ends at an instant, and when it ends a given conversation.</summary>
public sealed class PolicyScheduleTests
{
    static readonly DateTimeOffset T0 = new(2026, 11, 26, 9, 0, 0, TimeSpan.Zero);

    static TerminationPolicy Policy(PolicyType type, DateTimeOffset? created = null) =>
        new("p1", "rule", ChannelKind.WebMessaging, "dep", type, true, null, created ?? T0, created ?? T0, "client");

    static TerminationPolicy Hours(string closeAt, string zone, DateTimeOffset created, params DayOfWeek[] days) =>
        Policy(PolicyType.BusinessHours, created) with { CloseAt = TimeOnly.Parse(closeAt), TimeZone = zone, Days = [.. days] };

    static DateTimeOffset Utc(string iso) => DateTimeOffset.Parse(iso, null, System.Globalization.DateTimeStyles.AssumeUniversal);

    [Fact]
    public void MaxDuration_IsDueExactlyWhenStartPlusMaxIsReached_AndEndsThen()
    {
        var p = Policy(PolicyType.MaxDuration) with { MaxDuration = TimeSpan.FromMinutes(10) };
        var start = T0.AddSeconds(1.5);

        Assert.Equal(start.AddMinutes(10), PolicySchedule.EndsAt(p, start, null, null, T0));
        // Due at start + max (the exclusive bound admits that very millisecond), not a millisecond before.
        Assert.True(PolicySchedule.Due(p, start.AddMinutes(10))!.StartedBefore > start);
        Assert.False(PolicySchedule.Due(p, start.AddMinutes(10).AddMilliseconds(-1))!.StartedBefore > start);
        Assert.Equal(new LiveFilter(ChannelId: "dep", Channel: ChannelKind.WebMessaging, StartedBefore: start.AddMilliseconds(1)),
            PolicySchedule.Due(p, start.AddMinutes(10)));
        // Overdue (the policy was created late): it ends at the next sweep, now.
        Assert.Equal(T0.AddHours(1), PolicySchedule.EndsAt(p, start, null, null, T0.AddHours(1)));
    }

    [Fact]
    public void Campaign_EndsItsConversationsStartedBeforeEndAt_AtEndAt_AndNoOthers()
    {
        var endAt = T0.AddHours(2);
        var p = Policy(PolicyType.Campaign) with { Campaign = "spring", StartedBy = "bot", EndAt = endAt };

        Assert.Null(PolicySchedule.Due(p, endAt.AddTicks(-1)));
        Assert.Equal(new LiveFilter(ChannelId: "dep", Channel: ChannelKind.WebMessaging, StartedBefore: endAt, Campaign: "spring", StartedBy: "bot"),
            PolicySchedule.Due(p, endAt));
        Assert.Equal(endAt, PolicySchedule.EndsAt(p, T0, "spring", "bot", T0));
        Assert.Null(PolicySchedule.EndsAt(p, endAt, "spring", "bot", T0));          // started at (not before) endAt
        Assert.Null(PolicySchedule.EndsAt(p, T0, "autumn", "bot", T0));             // another campaign
        Assert.Null(PolicySchedule.EndsAt(p, T0, "spring", "other-bot", T0));       // another bot
        var anyBot = p with { StartedBy = null };
        Assert.Equal(endAt, PolicySchedule.EndsAt(anyBot, T0, "spring", "other-bot", T0));
    }

    [Fact]
    public void Disabled_IsNeverDue()
    {
        var p = Policy(PolicyType.MaxDuration) with { MaxDuration = TimeSpan.FromMinutes(1), Enabled = false };
        Assert.Null(PolicySchedule.Due(p, T0.AddDays(1)));
    }

    [Fact]
    public void BusinessHours_CloseInstant_OnOrdinaryDays_FollowsTheZonesOffset()
    {
        var paris = PolicySchedule.FindZone("Europe/Paris")!;
        Assert.Equal(Utc("2026-01-05T17:00:00Z"), PolicySchedule.CloseOn(new DateOnly(2026, 1, 5), new TimeOnly(18, 0), paris));   // CET, +1
        Assert.Equal(Utc("2026-07-06T16:00:00Z"), PolicySchedule.CloseOn(new DateOnly(2026, 7, 6), new TimeOnly(18, 0), paris));   // CEST, +2
        Assert.Null(PolicySchedule.FindZone("Europe/Atlantis"));
    }

    [Theory]
    // Spring forward: 02:00 local jumps to 03:00. A closing inside the gap happens at the first instant after it.
    [InlineData("Europe/Paris", "2026-03-29", "02:30", "2026-03-29T01:00:00Z")]
    [InlineData("America/New_York", "2026-03-08", "02:15", "2026-03-08T07:00:00Z")]
    // Just outside the gap: ordinary.
    [InlineData("Europe/Paris", "2026-03-29", "01:59", "2026-03-29T00:59:00Z")]
    [InlineData("Europe/Paris", "2026-03-29", "03:00", "2026-03-29T01:00:00Z")]
    // Fall back: 03:00 (Paris) / 02:00 (New York) local goes back an hour; a closing that occurs twice happens at the first.
    [InlineData("Europe/Paris", "2026-10-25", "02:30", "2026-10-25T00:30:00Z")]
    [InlineData("America/New_York", "2026-11-01", "01:30", "2026-11-01T05:30:00Z")]
    public void BusinessHours_CloseInstant_AcrossDaylightSaving(string zone, string date, string close, string expected) =>
        Assert.Equal(Utc(expected), PolicySchedule.CloseOn(DateOnly.Parse(date), TimeOnly.Parse(close), PolicySchedule.FindZone(zone)!));

    [Fact]
    public void BusinessHours_AcrossTheSpringGap_EndsWhatStartedBefore_AtTheFirstInstantAfterTheGap()
    {
        var created = Utc("2026-03-28T12:00:00Z");
        var p = Hours("02:30", "Europe/Paris", created);
        var gapEnd = Utc("2026-03-29T01:00:00Z");

        Assert.Equal(gapEnd, PolicySchedule.EndsAt(p, Utc("2026-03-28T22:00:00Z"), null, null, created));
        Assert.Null(PolicySchedule.Due(p, gapEnd.AddTicks(-1)));   // the 28th's closing (01:30Z) was before the policy existed
        Assert.Equal(gapEnd, PolicySchedule.Due(p, gapEnd)!.StartedBefore);
        // A conversation started after that closing waits for the next day's, at +2.
        Assert.Equal(Utc("2026-03-30T00:30:00Z"), PolicySchedule.EndsAt(p, gapEnd, null, null, gapEnd));
    }

    [Fact]
    public void BusinessHours_AcrossTheAutumnOverlap_ClosesOnce_AtTheFirstOccurrence()
    {
        var created = Utc("2026-10-31T12:00:00Z");
        var p = Hours("01:30", "America/New_York", created);
        var first = Utc("2026-11-01T05:30:00Z");

        Assert.Equal(first, PolicySchedule.NextCloseAfter(p, created));
        // After the first 01:30, the next closing is the next day's (not the repeated 01:30 an hour later).
        Assert.Equal(Utc("2026-11-02T06:30:00Z"), PolicySchedule.NextCloseAfter(p, first));
        Assert.Equal(first, PolicySchedule.LastClose(p, Utc("2026-11-01T06:45:00Z")));
    }

    [Fact]
    public void BusinessHours_OnlyOnItsDays_AndNotForClosingsBeforeItExisted()
    {
        // Close at 18:00 Paris on Mondays only; created on Tuesday 2026-01-06.
        var created = Utc("2026-01-06T10:00:00Z");
        var p = Hours("18:00", "Europe/Paris", created, DayOfWeek.Monday);

        Assert.Null(PolicySchedule.LastClose(p, created));   // Monday the 5th closed before it existed
        Assert.Null(PolicySchedule.Due(p, Utc("2026-01-11T23:00:00Z")));
        Assert.Equal(Utc("2026-01-12T17:00:00Z"), PolicySchedule.EndsAt(p, Utc("2026-01-01T08:00:00Z"), null, null, created));
        Assert.Equal(Utc("2026-01-12T17:00:00Z"), PolicySchedule.Due(p, Utc("2026-01-13T09:00:00Z"))!.StartedBefore);
    }

    [Fact]
    public void DueAndEndsAt_Agree_ForEveryType()
    {
        var random = new Random(14);
        TerminationPolicy[] policies =
        [
            Policy(PolicyType.MaxDuration) with { MaxDuration = TimeSpan.FromMinutes(90) },
            Policy(PolicyType.Campaign) with { Campaign = "c", EndAt = T0.AddHours(30) },
            Hours("02:30", "Europe/Paris", T0, DayOfWeek.Sunday, DayOfWeek.Wednesday),
            Hours("01:30", "America/New_York", T0),
        ];
        foreach (var p in policies)
            for (var i = 0; i < 400; i++)
            {
                var start = T0.AddMilliseconds(random.NextInt64(0, 5L * 86_400_000));
                var now = start.AddMilliseconds(random.NextInt64(0, 3L * 86_400_000));
                var due = PolicySchedule.Due(p, now) is { } f && start < f.StartedBefore;
                var endsAt = PolicySchedule.EndsAt(p, start, "c", null, now);
                Assert.True(due == (endsAt is { } e && e <= now), $"{p.Type}: start {start:O}, now {now:O}, due {due}, endsAt {endsAt:O}");
            }
    }
}
