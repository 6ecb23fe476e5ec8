using System.Collections.Immutable;

namespace Parley.Storage.Sqlite;

/// <summary>Termination policies (docs/ending-sessions.md "Policies"); a channel's delete takes its policies (triggers, migration 0015).</summary>
sealed class SqliteTerminationPolicyStore(SqliteDatabase db) : ITerminationPolicyStore
{
    const string Columns = "id, name, deployment_id, integration_id, type, enabled, max_duration_seconds, campaign, started_by, end_at, " +
        "close_at, time_zone, days, reason, date_created, date_modified, created_by";

    static TerminationPolicy Read(SqliteDataReader r) => new(r.GetString(0), r.GetString(1),
        r.IsDBNull(2) ? ChannelKind.Open : ChannelKind.WebMessaging, r.IsDBNull(2) ? r.GetString(3) : r.GetString(2),
        Parse<PolicyType>(r.GetString(4)), r.GetInt64(5) != 0, StringOrNull(r, 13), Time(r.GetInt64(14)), Time(r.GetInt64(15)), r.GetString(16))
    {
        MaxDuration = r.IsDBNull(6) ? null : TimeSpan.FromSeconds(r.GetInt64(6)),
        Campaign = StringOrNull(r, 7), StartedBy = StringOrNull(r, 8), EndAt = TimeOrNull(r, 9),
        CloseAt = r.IsDBNull(10) ? null : TimeOnly.ParseExact(r.GetString(10), "HH:mm", System.Globalization.CultureInfo.InvariantCulture),
        TimeZone = StringOrNull(r, 11), Days = PolicyDays.Parse(StringOrNull(r, 12)),
    };

    static (string, object?)[] Values(TerminationPolicy p) =>
    [
        ("$id", p.Id), ("$name", p.Name), ("$dep", p.Channel == ChannelKind.WebMessaging ? p.ChannelId : null),
        ("$int", p.Channel == ChannelKind.Open ? p.ChannelId : null), ("$type", p.Type.ToString()), ("$enabled", p.Enabled ? 1 : 0),
        ("$max", p.MaxDuration is { } m ? (long)m.TotalSeconds : null), ("$campaign", p.Campaign), ("$by", p.StartedBy), ("$endAt", Ms(p.EndAt)),
        ("$close", p.CloseAt?.ToString("HH:mm", System.Globalization.CultureInfo.InvariantCulture)), ("$zone", p.TimeZone),
        ("$days", PolicyDays.Format(p.Days)), ("$reason", p.Reason), ("$created", Ms(p.DateCreated)), ("$modified", Ms(p.DateModified)),
        ("$cby", p.CreatedBy),
    ];

    // The channel must exist when the row is written: checked by the same statement (one writer, so nothing deletes it between).
    const string ChannelExists = "(($dep IS NOT NULL AND EXISTS (SELECT 1 FROM deployments WHERE id = $dep)) OR " +
        "($int IS NOT NULL AND EXISTS (SELECT 1 FROM open_integrations WHERE id = $int)))";

    public async Task<IReadOnlyList<TerminationPolicy>> ListAsync(ChannelKind? channel, string? channelId, CancellationToken ct)
    {
        var where = (channel, channelId) switch
        {
            (ChannelKind.WebMessaging, null) => "WHERE deployment_id IS NOT NULL",
            (ChannelKind.Open, null) => "WHERE integration_id IS NOT NULL",
            (ChannelKind.WebMessaging, _) => "WHERE deployment_id = $v",
            (ChannelKind.Open, _) => "WHERE integration_id = $v",
            (null, null) => "",
            _ => "WHERE deployment_id = $v OR integration_id = $v",   // (null, id)
        };
        return await ReadAsync(where, ct, ("$v", channelId));
    }

    public async Task<IReadOnlyList<TerminationPolicy>> ListEnabledAsync(CancellationToken ct) => await ReadAsync("WHERE enabled = 1", ct);

    public Task<TerminationPolicy?> GetAsync(string id, CancellationToken ct) => db.GetByIdAsync("termination_policies", Columns, id, Read, ct);

    async Task<List<TerminationPolicy>> ReadAsync(string where, CancellationToken ct, params (string, object?)[] args)
    {
        await using var c = await db.ReadAsync(ct);
        await using var cmd = Command(c, $"SELECT {Columns} FROM termination_policies {where} ORDER BY date_created, id", args);
        await using var r = await cmd.ExecuteReaderAsync(ct);
        var list = new List<TerminationPolicy>();
        while (await r.ReadAsync(ct)) list.Add(Read(r));
        return list;
    }

    public async Task<bool> CreateAsync(TerminationPolicy policy, CancellationToken ct) =>
        await db.WriteAsync($"INSERT INTO termination_policies ({Columns}) SELECT $id, $name, $dep, $int, $type, $enabled, $max, $campaign, $by, " +
            $"$endAt, $close, $zone, $days, $reason, $created, $modified, $cby WHERE {ChannelExists}", ct, Values(policy)) == 1;

    public async Task<bool> UpdateAsync(TerminationPolicy policy, CancellationToken ct) =>
        await db.WriteAsync("UPDATE termination_policies SET name = $name, deployment_id = $dep, integration_id = $int, type = $type, " +
            "enabled = $enabled, max_duration_seconds = $max, campaign = $campaign, started_by = $by, end_at = $endAt, close_at = $close, " +
            $"time_zone = $zone, days = $days, reason = $reason, date_modified = $modified WHERE id = $id AND {ChannelExists}", ct, Values(policy)) == 1;

    public async Task<bool> DeleteAsync(string id, CancellationToken ct) =>
        await db.WriteAsync("DELETE FROM termination_policies WHERE id = $id", ct, ("$id", id)) == 1;
}
