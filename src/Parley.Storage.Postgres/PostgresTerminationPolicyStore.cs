using System.Globalization;
using Npgsql;
using Parley.Core;
using static Parley.Storage.Postgres.PostgresDatabase;

namespace Parley.Storage.Postgres;

/// <summary>
/// Termination policies (docs/ending-sessions.md "Policies"). The foreign keys of migration 0007 keep each policy on an
/// existing channel: a write naming a channel that is not there is refused by the engine, and a channel's delete cascades.
/// </summary>
public sealed class PostgresTerminationPolicyStore : ITerminationPolicyStore
{
    readonly PostgresDatabase _db;

    internal PostgresTerminationPolicyStore(PostgresDatabase db) => _db = db;

    const string Columns = "id, name, deployment_id, integration_id, type, enabled, max_duration_seconds, campaign, started_by, end_at, " +
        "close_at, time_zone, days, reason, date_created, date_modified, created_by";

    static TerminationPolicy Read(NpgsqlDataReader r) => new(r.GetString(0), r.GetString(1),
        r.IsDBNull(2) ? ChannelKind.Open : ChannelKind.WebMessaging, r.IsDBNull(2) ? r.GetString(3) : r.GetString(2),
        Parse<PolicyType>(r.GetString(4)), r.GetBoolean(5), StringOrNull(r, 13), Time(r.GetInt64(14)), Time(r.GetInt64(15)), r.GetString(16))
    {
        MaxDuration = r.IsDBNull(6) ? null : TimeSpan.FromSeconds(r.GetInt64(6)),
        Campaign = StringOrNull(r, 7), StartedBy = StringOrNull(r, 8), EndAt = TimeOrNull(r, 9),
        CloseAt = r.IsDBNull(10) ? null : TimeOnly.ParseExact(r.GetString(10), "HH:mm", CultureInfo.InvariantCulture),
        TimeZone = StringOrNull(r, 11), Days = PolicyDays.Parse(StringOrNull(r, 12)),
    };

    // $1 … $17 in Columns order.
    static NpgsqlParameter[] Values(TerminationPolicy p) =>
    [
        Text(p.Id), Text(p.Name), Text(p.Channel == ChannelKind.WebMessaging ? p.ChannelId : null), Text(p.Channel == ChannelKind.Open ? p.ChannelId : null),
        Text(p.Type.ToString()), Bool(p.Enabled), Int8(p.MaxDuration is { } m ? (long)m.TotalSeconds : null), Text(p.Campaign), Text(p.StartedBy),
        Int8(Ms(p.EndAt)), Text(p.CloseAt?.ToString("HH:mm", CultureInfo.InvariantCulture)), Text(p.TimeZone), Text(PolicyDays.Format(p.Days)),
        Text(p.Reason), Int8(Ms(p.DateCreated)), Int8(Ms(p.DateModified)), Text(p.CreatedBy),
    ];

    public Task<IReadOnlyList<TerminationPolicy>> ListAsync(ChannelKind? channel, string? channelId, CancellationToken ct)
    {
        var where = (channel, channelId) switch
        {
            (ChannelKind.WebMessaging, null) => "WHERE deployment_id IS NOT NULL",
            (ChannelKind.Open, null) => "WHERE integration_id IS NOT NULL",
            (ChannelKind.WebMessaging, _) => "WHERE deployment_id = $1",
            (ChannelKind.Open, _) => "WHERE integration_id = $1",
            (null, null) => "",
            _ => "WHERE deployment_id = $1 OR integration_id = $1",   // (null, id)
        };
        return ReadAsync(where, ct, channelId is null ? [] : [Text(channelId)]);
    }

    public Task<IReadOnlyList<TerminationPolicy>> ListEnabledAsync(CancellationToken ct) => ReadAsync("WHERE enabled", ct, []);

    public async Task<TerminationPolicy?> GetAsync(string id, CancellationToken ct) => (await ReadAsync("WHERE id = $1", ct, [Text(id)])).FirstOrDefault();

    Task<IReadOnlyList<TerminationPolicy>> ReadAsync(string where, CancellationToken ct, NpgsqlParameter[] args) =>
        _db.ReadAsync<IReadOnlyList<TerminationPolicy>>(async c =>
            await _db.ListAsync($"SELECT {Columns} FROM termination_policies {where} ORDER BY date_created, id", Read, c, args), ct);

    public async Task<bool> CreateAsync(TerminationPolicy policy, CancellationToken ct)
    {
        try
        {
            return await _db.ExecuteAsync($"INSERT INTO termination_policies ({Columns}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, " +
                "$13, $14, $15, $16, $17)", ct, Values(policy)) == 1;
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.ForeignKeyViolation) { return false; }
    }

    public async Task<bool> UpdateAsync(TerminationPolicy policy, CancellationToken ct)
    {
        try
        {
            return await _db.ExecuteAsync("UPDATE termination_policies SET name = $2, deployment_id = $3, integration_id = $4, type = $5, enabled = $6, " +
                "max_duration_seconds = $7, campaign = $8, started_by = $9, end_at = $10, close_at = $11, time_zone = $12, days = $13, reason = $14, " +
                "date_modified = $16 WHERE id = $1 AND $15::bigint IS NOT NULL AND $17::text IS NOT NULL", ct, Values(policy)) == 1;
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.ForeignKeyViolation) { return false; }
    }

    public async Task<bool> DeleteAsync(string id, CancellationToken ct) =>
        await _db.ExecuteAsync("DELETE FROM termination_policies WHERE id = $1", ct, Text(id)) == 1;
}
