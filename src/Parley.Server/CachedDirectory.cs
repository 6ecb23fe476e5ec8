using System.Collections.Concurrent;
using Parley.Core;

namespace Parley.Server;

/// <summary>
/// Deployments, integrations and queues are read on every guest message, inbound post and conversation read but change rarely: they are kept for
/// <see cref="Ttl"/>, and a change made through this node is seen at once. Another node's change is seen within the TTL.
/// </summary>
public sealed class CachedDirectory(IDirectoryStore inner, TimeProvider clock) : IDirectoryStore
{
    public static readonly TimeSpan Ttl = TimeSpan.FromSeconds(2);
    // The answer is kept as a completed task: a hit, the common case, allocates nothing (no closure, no task).
    readonly ConcurrentDictionary<string, (Task<Deployment?> Value, DateTimeOffset Until)> _deployments = new();
    readonly ConcurrentDictionary<string, (Task<OpenIntegration?> Value, DateTimeOffset Until)> _integrations = new();
    readonly ConcurrentDictionary<string, (Task<Queue?> Value, DateTimeOffset Until)> _queues = new();

    // The stores' reads as delegates made once: a call passes one without allocating.
    readonly Func<string, CancellationToken, Task<Deployment?>> _loadDeployment = inner.GetDeploymentAsync;
    readonly Func<string, CancellationToken, Task<OpenIntegration?>> _loadIntegration = inner.GetIntegrationAsync;
    readonly Func<string, CancellationToken, Task<Queue?>> _loadQueue = inner.GetQueueAsync;

    Task<T?> CachedAsync<T>(ConcurrentDictionary<string, (Task<T?> Value, DateTimeOffset Until)> cache, string id,
        Func<string, CancellationToken, Task<T?>> load, CancellationToken ct) where T : class =>
        cache.TryGetValue(id, out var hit) && hit.Until > clock.GetUtcNow() ? hit.Value : LoadAsync(cache, id, load, ct);

    async Task<T?> LoadAsync<T>(ConcurrentDictionary<string, (Task<T?> Value, DateTimeOffset Until)> cache, string id,
        Func<string, CancellationToken, Task<T?>> load, CancellationToken ct) where T : class
    {
        var now = clock.GetUtcNow();
        var value = await load(id, ct);
        if (cache.Count > 10_000) cache.Clear();
        cache[id] = (Task.FromResult(value), now + Ttl);
        return value;
    }

    public Task<Deployment?> GetDeploymentAsync(string id, CancellationToken ct) => CachedAsync(_deployments, id, _loadDeployment, ct);

    public Task<OpenIntegration?> GetIntegrationAsync(string id, CancellationToken ct) => CachedAsync(_integrations, id, _loadIntegration, ct);

    public async Task UpsertDeploymentAsync(Deployment deployment, CancellationToken ct)
    {
        await inner.UpsertDeploymentAsync(deployment, ct);
        _deployments.TryRemove(deployment.Id, out _);
    }

    public async Task<bool> DeleteDeploymentAsync(string id, CancellationToken ct)
    {
        var deleted = await inner.DeleteDeploymentAsync(id, ct);
        _deployments.TryRemove(id, out _);
        return deleted;
    }

    public async Task UpsertIntegrationAsync(OpenIntegration integration, CancellationToken ct)
    {
        await inner.UpsertIntegrationAsync(integration, ct);
        _integrations.TryRemove(integration.Id, out _);
    }

    public async Task<bool> DeleteIntegrationAsync(string id, CancellationToken ct)
    {
        var deleted = await inner.DeleteIntegrationAsync(id, ct);
        _integrations.TryRemove(id, out _);
        return deleted;
    }

    public Task<Queue?> GetQueueAsync(string id, CancellationToken ct) => CachedAsync(_queues, id, _loadQueue, ct);

    public async Task UpsertQueueAsync(Queue queue, CancellationToken ct)
    {
        await inner.UpsertQueueAsync(queue, ct);
        _queues.TryRemove(queue.Id, out _);
    }

    public Task<Page<Queue>> ListQueuesAsync(QueueFilter filter, CancellationToken ct) => inner.ListQueuesAsync(filter, ct);

    public Task<Page<Deployment>> ListDeploymentsAsync(int pageSize, int pageNumber, CancellationToken ct) =>
        inner.ListDeploymentsAsync(pageSize, pageNumber, ct);
    public Task<Page<OpenIntegration>> ListIntegrationsAsync(int pageSize, int pageNumber, CancellationToken ct) =>
        inner.ListIntegrationsAsync(pageSize, pageNumber, ct);
    public Task<OAuthClient?> GetClientAsync(string id, CancellationToken ct) => inner.GetClientAsync(id, ct);
    public Task UpsertClientAsync(OAuthClient client, CancellationToken ct) => inner.UpsertClientAsync(client, ct);
    public Task<byte[]> GetOrCreateSigningKeyAsync(Func<byte[]> create, CancellationToken ct) => inner.GetOrCreateSigningKeyAsync(create, ct);
}
