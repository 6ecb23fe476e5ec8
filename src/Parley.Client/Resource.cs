using System.Text.Json.Serialization.Metadata;
using Parley.Protocol;

namespace Parley.Client;

/// <summary>
/// The routes every managed entity shares: a listing at <c>root</c>, one entity at <c>root/{id}</c>, created by POST,
/// changed by <c>update</c> (PUT or PATCH, as the API has it), removed by DELETE.
/// </summary>
sealed class Resource<TWire, TRequest>(Http api, string root, HttpMethod update, JsonTypeInfo<TWire> wire, JsonTypeInfo<TRequest> request,
    JsonTypeInfo<EntityListing<TWire>> listing)
{
    public string Root => root;

    public string Item(string id) => $"{root}/{Http.Segment(id)}";

    public Task<EntityListing<TWire>> ListAsync(CancellationToken ct, params (string Name, object? Value)[] query) =>
        api.GetAsync(Http.Query(root, query), listing, ct);

    public Task<TWire> GetAsync(string id, CancellationToken ct) => api.GetAsync(Item(id), wire, ct);

    public Task<TWire> CreateAsync(TRequest body, CancellationToken ct) => api.SendJsonAsync(HttpMethod.Post, root, body, request, wire, ct);

    public Task<TWire> UpdateAsync(string id, TRequest body, CancellationToken ct) => api.SendJsonAsync(update, Item(id), body, request, wire, ct);

    public Task DeleteAsync(string id, CancellationToken ct) => api.DeleteAsync(Item(id), ct);
}
