using Parley.Protocol;

namespace Parley.Client;

/// <summary>Parley extension: web messaging deployments (<c>/api/v2/parley/deployments</c>).</summary>
public sealed class DeploymentsClient
{
    readonly Resource<DeploymentWire, DeploymentWire> _deployments;

    internal DeploymentsClient(Http api) => _deployments = new(api, "/api/v2/parley/deployments", HttpMethod.Put, ParleyJson.Wire.DeploymentWire,
        ParleyJson.Wire.DeploymentWire, ParleyJson.Wire.EntityListingDeploymentWire);

    public Task<EntityListing<DeploymentWire>> ListAsync(int? pageSize = null, int? pageNumber = null, CancellationToken ct = default) =>
        _deployments.ListAsync(ct, ("pageSize", pageSize), ("pageNumber", pageNumber));

    public Task<DeploymentWire> GetAsync(string id, CancellationToken ct = default) => _deployments.GetAsync(id, ct);

    /// <summary>Creates a deployment (<c>name</c> required; <c>conversationDisconnect</c> defaults to enabled, ReadOnly).</summary>
    public Task<DeploymentWire> CreateAsync(DeploymentWire deployment, CancellationToken ct = default) => _deployments.CreateAsync(deployment, ct);

    /// <summary>Replaces a deployment's settings (PUT: fields left out take their defaults).</summary>
    public Task<DeploymentWire> UpdateAsync(string id, DeploymentWire deployment, CancellationToken ct = default) =>
        _deployments.UpdateAsync(id, deployment, ct);

    public Task DeleteAsync(string id, CancellationToken ct = default) => _deployments.DeleteAsync(id, ct);
}

/// <summary>Parley extension: web messaging guest sessions (<c>/api/v2/parley/webmessaging/sessions</c>).</summary>
public sealed class GuestSessionsClient
{
    readonly Http _api;

    internal GuestSessionsClient(Http api) => _api = api;

    /// <summary>Guest sessions, of one deployment and/or one customer id (<c>journeyContext.customer.id</c>) when set.</summary>
    public Task<EntityListing<GuestSessionWire>> ListAsync(string? deploymentId = null, string? customerId = null, int? pageSize = null,
        int? pageNumber = null, CancellationToken ct = default) =>
        _api.GetAsync(Http.Query("/api/v2/parley/webmessaging/sessions", ("deploymentId", deploymentId), ("customerId", customerId),
            ("pageSize", pageSize), ("pageNumber", pageNumber)), ParleyJson.Wire.EntityListingGuestSessionWire, ct);
}

/// <summary>Open messaging integrations (Genesys Cloud calls: <c>/api/v2/conversations/messaging/integrations/open</c>).</summary>
public sealed class IntegrationsClient
{
    readonly Resource<OpenIntegrationWire, OpenIntegrationRequest> _integrations;

    internal IntegrationsClient(Http api) => _integrations = new(api, "/api/v2/conversations/messaging/integrations/open", HttpMethod.Patch,
        ParleyJson.Wire.OpenIntegrationWire, ParleyJson.Wire.OpenIntegrationRequest, ParleyJson.Wire.EntityListingOpenIntegrationWire);

    public Task<EntityListing<OpenIntegrationWire>> ListAsync(int? pageSize = null, int? pageNumber = null, CancellationToken ct = default) =>
        _integrations.ListAsync(ct, ("pageSize", pageSize), ("pageNumber", pageNumber));

    public Task<OpenIntegrationWire> GetAsync(string id, CancellationToken ct = default) => _integrations.GetAsync(id, ct);

    public Task<OpenIntegrationWire> CreateAsync(OpenIntegrationRequest integration, CancellationToken ct = default) =>
        _integrations.CreateAsync(integration, ct);

    /// <summary>PATCH: only the fields set change.</summary>
    public Task<OpenIntegrationWire> UpdateAsync(string id, OpenIntegrationRequest changes, CancellationToken ct = default) =>
        _integrations.UpdateAsync(id, changes, ct);

    public Task DeleteAsync(string id, CancellationToken ct = default) => _integrations.DeleteAsync(id, ct);
}

/// <summary>The outbox's delivery states, as <c>GET /api/v2/parley/openmessaging/deliveries?state=</c> spells them.</summary>
public static class DeliveryStates
{
    public const string Pending = "Pending";
    public const string Delivered = "Delivered";
    public const string Dead = "Dead";
}

/// <summary>Parley extension: open messaging webhook deliveries (<c>/api/v2/parley/openmessaging/deliveries</c>).</summary>
public sealed class DeliveriesClient
{
    const string Root = "/api/v2/parley/openmessaging/deliveries";
    readonly Http _api;

    internal DeliveriesClient(Http api) => _api = api;

    /// <summary>Deliveries in one state (<see cref="DeliveryStates"/>; the server's default is Dead: the dead letters).</summary>
    public Task<EntityListing<DeliveryWire>> ListAsync(string? state = null, string? integrationId = null, int? pageSize = null,
        int? pageNumber = null, CancellationToken ct = default) =>
        _api.GetAsync(Http.Query(Root, ("state", state), ("integrationId", integrationId), ("pageSize", pageSize), ("pageNumber", pageNumber)),
            ParleyJson.Wire.EntityListingDeliveryWire, ct);

    /// <summary>Queues a dead-lettered delivery again (409 for one that is not dead).</summary>
    public async Task<DeliveryWire> RedeliverAsync(string deliveryId, CancellationToken ct = default) =>
        (await _api.SendAsync(HttpMethod.Post, $"{Root}/{Http.Segment(deliveryId)}/redeliver", null, ct)).Read(ParleyJson.Wire.DeliveryWire);
}
