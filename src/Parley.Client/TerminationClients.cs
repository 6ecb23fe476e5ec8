using System.Diagnostics;
using Parley.Protocol;

namespace Parley.Client;

/// <summary>
/// Parley extension (docs/ending-sessions.md, "Bulk terminations"): <c>POST /api/v2/parley/terminations</c> ends every live
/// conversation a filter matches; a small set answers at once (FULFILLED), a large one becomes a job (PENDING) to wait for.
/// </summary>
public sealed class BulkTerminationsClient
{
    const string Root = "/api/v2/parley/terminations";
    readonly Http _api;

    internal BulkTerminationsClient(Http api) => _api = api;

    /// <summary>Starts a bulk termination. An empty filter or an unknown field is refused (400), never "end everything".</summary>
    public Task<BulkTerminationWire> StartAsync(TerminationFilter filter, string? reason = null, CancellationToken ct = default) =>
        StartAsync(new BulkTerminationRequest { Filter = filter, Reason = reason }, ct);

    public Task<BulkTerminationWire> StartAsync(BulkTerminationRequest request, CancellationToken ct = default) =>
        _api.SendJsonAsync(HttpMethod.Post, Root, request, ParleyJson.Wire.BulkTerminationRequest, ParleyJson.Wire.BulkTerminationWire, ct);

    public Task<BulkTerminationWire> GetAsync(string id, CancellationToken ct = default) =>
        _api.GetAsync($"{Root}/{Http.Segment(id)}", ParleyJson.Wire.BulkTerminationWire, ct);

    /// <summary>
    /// The dry run of <see cref="StartAsync(TerminationFilter, string?, CancellationToken)"/>: the live conversations the filter
    /// matches now (soonest started first, at most 1000 listed, <c>total</c> counting all), refused as a start would be; ends nothing.
    /// </summary>
    public Task<PolicyPreviewWire> PreviewAsync(TerminationFilter filter, CancellationToken ct = default) =>
        _api.SendJsonAsync(HttpMethod.Post, $"{Root}/preview", new BulkTerminationRequest { Filter = filter }, ParleyJson.Wire.BulkTerminationRequest,
            ParleyJson.Wire.PolicyPreviewWire, ct);

    public Task<EntityListing<BulkTerminationWire>> ListAsync(int? pageSize = null, int? pageNumber = null, CancellationToken ct = default) =>
        _api.GetAsync(Http.Query(Root, ("pageSize", pageSize), ("pageNumber", pageNumber)), ParleyJson.Wire.EntityListingBulkTerminationWire, ct);

    /// <summary>How long <see cref="WaitAsync(BulkTerminationWire, IProgress{BulkTerminationWire}?, TimeSpan?, TimeSpan?, TimeSpan?, CancellationToken)"/> waits at most, by default.</summary>
    public static readonly TimeSpan DefaultWaitTimeout = TimeSpan.FromMinutes(10);

    /// <summary>How long the job's counts may stay unchanged before the wait gives up, by default.</summary>
    public static readonly TimeSpan DefaultStallTimeout = TimeSpan.FromMinutes(2);

    /// <summary>
    /// Reads the job until it is no longer PENDING, reporting each reading (its counts grow as it runs) to
    /// <paramref name="progress"/>. Returns the last reading: FULFILLED, or FAILED with its <c>errorMessage</c>.
    /// Gives up with a <see cref="BulkTerminationTimeoutException"/> (a <see cref="TimeoutException"/> naming the job and
    /// its last counts) when the job is still PENDING after <paramref name="timeout"/> (default
    /// <see cref="DefaultWaitTimeout"/>), or when its counts have not moved for <paramref name="stallTimeout"/> (default
    /// <see cref="DefaultStallTimeout"/>); <see cref="Timeout.InfiniteTimeSpan"/> turns either off. Giving up stops the
    /// wait, not the job: read it later with <see cref="GetAsync"/>.
    /// </summary>
    public async Task<BulkTerminationWire> WaitAsync(BulkTerminationWire job, IProgress<BulkTerminationWire>? progress = null,
        TimeSpan? pollInterval = null, TimeSpan? timeout = null, TimeSpan? stallTimeout = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(job);
        var interval = pollInterval ?? TimeSpan.FromMilliseconds(250);
        var limit = timeout ?? DefaultWaitTimeout;
        var stall = stallTimeout ?? DefaultStallTimeout;
        var started = Stopwatch.GetTimestamp();   // real time: the options clock only ages tokens
        var moved = started;
        var current = job;
        progress?.Report(current);
        while (current.State == TerminationJobStates.Pending)
        {
            await Task.Delay(interval, ct);
            var previous = current;
            current = await GetAsync(job.Id, ct);
            progress?.Report(current);
            if (current.State != TerminationJobStates.Pending) break;
            var now = Stopwatch.GetTimestamp();
            if (Counts(current) != Counts(previous)) moved = now;
            if (limit != Timeout.InfiniteTimeSpan && Stopwatch.GetElapsedTime(started, now) >= limit)
                throw new BulkTerminationTimeoutException(current, $"still PENDING after {limit}");
            if (stall != Timeout.InfiniteTimeSpan && Stopwatch.GetElapsedTime(moved, now) >= stall)
                throw new BulkTerminationTimeoutException(current, $"its counts have not moved for {stall}");
        }
        return current;
    }

    static (int, int, int, int) Counts(BulkTerminationWire j) => (j.Matched, j.Ended, j.AlreadyEnded, j.Failed);

    public async Task<BulkTerminationWire> WaitAsync(string id, IProgress<BulkTerminationWire>? progress = null,
        TimeSpan? pollInterval = null, TimeSpan? timeout = null, TimeSpan? stallTimeout = null, CancellationToken ct = default) =>
        await WaitAsync(await GetAsync(id, ct), progress, pollInterval, timeout, stallTimeout, ct);

    /// <summary>Start and wait: the final counts.</summary>
    public async Task<BulkTerminationWire> RunAsync(TerminationFilter filter, string? reason = null, IProgress<BulkTerminationWire>? progress = null,
        CancellationToken ct = default) =>
        await WaitAsync(await StartAsync(filter, reason, ct), progress, ct: ct);
}

/// <summary>
/// <see cref="BulkTerminationsClient.WaitAsync(BulkTerminationWire, IProgress{BulkTerminationWire}?, TimeSpan?, TimeSpan?, TimeSpan?, CancellationToken)"/>
/// gave up on a job still PENDING: the job runs on (or is stuck); <see cref="Last"/> is its last reading.
/// </summary>
public sealed class BulkTerminationTimeoutException(BulkTerminationWire last, string why)
    : TimeoutException($"Gave up waiting for bulk termination {last.Id}: {why}. Last counts: matched {last.Matched}, ended {last.Ended}, " +
        $"alreadyEnded {last.AlreadyEnded}, failed {last.Failed}.")
{
    public BulkTerminationWire Last { get; } = last;

    public string JobId => Last.Id;
}

/// <summary>Parley extension (docs/ending-sessions.md, "Policies"): termination policies, their dry runs, and applying one now.</summary>
public sealed class PoliciesClient
{
    readonly Http _api;
    readonly Resource<TerminationPolicyWire, TerminationPolicyRequest> _policies;

    internal PoliciesClient(Http api)
    {
        _api = api;
        _policies = new(api, "/api/v2/parley/terminationpolicies", HttpMethod.Put, ParleyJson.Wire.TerminationPolicyWire,
            ParleyJson.Wire.TerminationPolicyRequest, ParleyJson.Wire.EntityListingTerminationPolicyWire);
    }

    /// <summary>Policies, of one deployment or one integration when set.</summary>
    public Task<EntityListing<TerminationPolicyWire>> ListAsync(string? deploymentId = null, string? integrationId = null,
        int? pageSize = null, int? pageNumber = null, CancellationToken ct = default) =>
        _policies.ListAsync(ct, ("deploymentId", deploymentId), ("integrationId", integrationId), ("pageSize", pageSize), ("pageNumber", pageNumber));

    public Task<TerminationPolicyWire> GetAsync(string id, CancellationToken ct = default) => _policies.GetAsync(id, ct);

    public Task<TerminationPolicyWire> CreateAsync(TerminationPolicyRequest policy, CancellationToken ct = default) => _policies.CreateAsync(policy, ct);

    /// <summary>PUT: the policy becomes exactly this.</summary>
    public Task<TerminationPolicyWire> UpdateAsync(string id, TerminationPolicyRequest policy, CancellationToken ct = default) =>
        _policies.UpdateAsync(id, policy, ct);

    public Task DeleteAsync(string id, CancellationToken ct = default) => _policies.DeleteAsync(id, ct);

    /// <summary>Dry run of a stored policy: which live conversations it would end, and when. Ends nothing.</summary>
    public Task<PolicyPreviewWire> PreviewAsync(string id, CancellationToken ct = default) =>
        _api.GetAsync($"{_policies.Item(id)}/preview", ParleyJson.Wire.PolicyPreviewWire, ct);

    /// <summary>Dry run of a policy not saved yet. Ends nothing.</summary>
    public Task<PolicyPreviewWire> PreviewAsync(TerminationPolicyRequest policy, CancellationToken ct = default) =>
        _api.SendJsonAsync(HttpMethod.Post, $"{_policies.Root}/preview", policy, ParleyJson.Wire.TerminationPolicyRequest,
            ParleyJson.Wire.PolicyPreviewWire, ct);

    /// <summary>Ends now what the policy says is due now; answered as a bulk termination (wait for it with <see cref="BulkTerminationsClient.WaitAsync(BulkTerminationWire, IProgress{BulkTerminationWire}?, TimeSpan?, TimeSpan?, TimeSpan?, CancellationToken)"/>).</summary>
    public async Task<BulkTerminationWire> ApplyAsync(string id, CancellationToken ct = default) =>
        (await _api.SendAsync(HttpMethod.Post, $"{_policies.Item(id)}/apply", null, ct)).Read(ParleyJson.Wire.BulkTerminationWire);
}

/// <summary>Parley extension (docs/ending-sessions.md, "Receipts"): who was told of a termination.</summary>
public sealed class ReceiptsClient
{
    const string Root = "/api/v2/parley/receipts";
    readonly Http _api;

    internal ReceiptsClient(Http api) => _api = api;

    /// <summary>The receipt of one termination (its id is the termination audit row's id).</summary>
    public Task<TerminationReceiptWire> GetAsync(string terminationId, CancellationToken ct = default) =>
        _api.GetAsync($"{Root}/{Http.Segment(terminationId)}", ParleyJson.Wire.TerminationReceiptWire, ct);

    public Task<EntityListing<TerminationReceiptWire>> ListAsync(string conversationId, int? pageSize = null, int? pageNumber = null,
        CancellationToken ct = default) =>
        _api.GetAsync(Http.Query(Root, ("conversationId", conversationId), ("pageSize", pageSize), ("pageNumber", pageNumber)),
            ParleyJson.Wire.EntityListingTerminationReceiptWire, ct);
}

/// <summary>Parley extension: the termination audit (<c>GET /api/v2/parley/audit/terminations</c>).</summary>
public sealed class AuditClient
{
    readonly Http _api;

    internal AuditClient(Http api) => _api = api;

    /// <summary>Terminations, newest first; of one conversation when <paramref name="conversationId"/> is set.</summary>
    public Task<EntityListing<TerminationAuditWire>> ListTerminationsAsync(string? conversationId = null, int? pageSize = null,
        int? pageNumber = null, CancellationToken ct = default) =>
        _api.GetAsync(Http.Query("/api/v2/parley/audit/terminations", ("conversationId", conversationId), ("pageSize", pageSize),
            ("pageNumber", pageNumber)), ParleyJson.Wire.EntityListingTerminationAuditWire, ct);
}
