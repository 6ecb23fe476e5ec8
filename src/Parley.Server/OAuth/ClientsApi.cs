using System.Security.Cryptography;
using Parley.Core;
using Parley.Protocol;
using Parley.Server.Notifications;
using Parley.Server.Protocol;

namespace Parley.Server.OAuth;

/// <summary>
/// OAuth clients on the platform's paths (JSDK <c>OAuthApi</c>: getOauthClients, getOauthClient, postOauthClients,
/// putOauthClient, deleteOauthClient, postOauthClientSecret) and Parley's own signing-key rotation and credential audit.
/// A caller can grant, and can change, only what it holds itself: no client can mint a client stronger than it.
/// </summary>
public static class ClientsApi
{
    public const int MaxNameLength = 200;
    public const int MaxDescriptionLength = 1000;
    const string Clients = "/api/v2/oauth/clients";

    public static void MapClientsApi(this IEndpointRouteBuilder app)
    {
        // Mapping only (the handlers' bodies are the users' area): each answer's type is declared for the OpenAPI document.
        const string json = "application/json";
        var clients = app.MapPlatformGroup("/oauth", "OAuth clients");
        clients.MapGet("/clients", ListAsync).RequirePermission(Permissions.OAuthClientView).Produces<EntityListing<OAuthClientWire>>().Errors(400);
        clients.MapPost("/clients", CreateAsync).RequirePermission(Permissions.OAuthClientAdd)
            .Accepts<OAuthClientRequest>(json).Produces<OAuthClientWire>().Errors(400, 413, 415);
        clients.MapGet("/clients/{clientId}", GetAsync).RequirePermission(Permissions.OAuthClientView).Produces<OAuthClientWire>().Errors(404);
        clients.MapPut("/clients/{clientId}", UpdateAsync).RequirePermission(Permissions.OAuthClientEdit)
            .Accepts<OAuthClientRequest>(json).Produces<OAuthClientWire>().Errors(400, 404, 413, 415);
        clients.MapDelete("/clients/{clientId}", DeleteAsync).RequirePermission(Permissions.OAuthClientDelete).Produces(204).Errors(404);
        clients.MapPost("/clients/{clientId}/secret", RegenerateSecretAsync).RequirePermission(Permissions.OAuthClientEdit)
            .Produces<OAuthClientWire>().Errors(404);

        var parley = app.MapPlatformGroup("/parley", "Parley: signing keys and credential audit");
        parley.MapGet("/oauth/signingkeys", ListKeysAsync).RequirePermission(Permissions.SigningKeyView).Produces<EntityListing<SigningKeyWire>>();
        parley.MapPost("/oauth/signingkeys/rotate", RotateKeyAsync).RequirePermission(Permissions.SigningKeyEdit)
            .Accepts<SigningKeyRotateRequest>(isOptional: true, json).Produces<SigningKeyWire>(201).Errors(400, 413, 415);
        parley.MapGet("/audit/credentials", ListAuditAsync).RequirePermission(Permissions.AuditView)
            .Produces<EntityListing<CredentialAuditWire>>().Errors(400);
    }

    static OAuthClientWire ToWire(OAuthClient c, string? secret = null) => new()
    {
        Id = c.Id, Name = c.Name, Description = c.Description, Permissions = [.. c.Permissions], Secret = secret,
        AuthorizedGrantType = c.AuthorizedGrantType, RegisteredRedirectUri = c.RedirectUris.IsEmpty ? null : [.. c.RedirectUris],
        DateCreated = Wire.Time(c.DateCreated), DateModified = Wire.Time(c.DateModified),
        CreatedBy = c.CreatedBy is { } by ? new AddressableRef(by, SelfUri: $"{Clients}/{by}") : null,
        ModifiedBy = c.ModifiedBy is { } mby ? new AddressableRef(mby, SelfUri: $"{Clients}/{mby}") : null,
        SelfUri = $"{Clients}/{c.Id}",
    };

    static CredentialAudit Audit(CredentialAction action, string entityId, HttpContext http, TimeProvider clock, string? detail = null) =>
        new(Guid.NewGuid().ToString(), action, entityId, http.Caller().ClientId, clock.GetUtcNow(), detail);

    static string NewSecret() => Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    /// <summary>The permissions in <paramref name="wanted"/> the caller does not hold, as the 403 that names them (or null).</summary>
    static ApiError? Ceiling(Caller caller, IEnumerable<string> wanted)
    {
        var missing = wanted.Where(p => !caller.Has(p)).Distinct().ToList();
        return missing.Count == 0 ? null : ApiError.MissingPermissions(string.Join(", ", missing));
    }

    /// <summary>Validates a create/update body; the permissions come back de-duplicated, in order.</summary>
    static ApiError? Validate(OAuthClientRequest b, out string[] permissions, out string grant, out string[] redirects)
    {
        permissions = [.. (b.Permissions ?? []).Distinct()];
        grant = b.AuthorizedGrantType ?? OAuthClient.ClientCredentials;
        redirects = [.. (b.RegisteredRedirectUri ?? []).Distinct()];
        if (string.IsNullOrWhiteSpace(b.Name)) return ApiError.BadRequest("The field 'name' is required.", "name");
        if (b.Name.Length > MaxNameLength)
            return ApiError.BadRequest($"The field 'name' is longer than {MaxNameLength} characters.", "name");
        if (b.Description?.Length > MaxDescriptionLength)
            return ApiError.BadRequest($"The field 'description' is longer than {MaxDescriptionLength} characters.", "description");
        if (grant is not (OAuthClient.ClientCredentials or OAuthClient.Code or OAuthClient.Token))
            return ApiError.InvalidValue("authorizedGrantType", Clip(grant), "CLIENT-CREDENTIALS, CODE, TOKEN");
        if (grant != OAuthClient.ClientCredentials && redirects.Length == 0)
            return ApiError.BadRequest($"A {grant} client needs at least one registeredRedirectUri.", "registeredRedirectUri");
        if (redirects.Length > MaxRedirectUris)
            return ApiError.BadRequest($"At most {MaxRedirectUris} registeredRedirectUri entries.", "registeredRedirectUri");
        if (redirects.FirstOrDefault(r => !IsRedirectUri(r)) is { } bad)
            return ApiError.InvalidValue("registeredRedirectUri", Clip(bad),
                "an absolute https URL (http only on localhost) without a fragment, or a path on this server starting with /");
        if (permissions.FirstOrDefault(p => p != Permissions.All && !Permissions.Known.Contains(p)) is { } unknown)
            return ApiError.InvalidValue("permissions", Clip(unknown), string.Join(", ", Permissions.Known.Prepend(Permissions.All)));
        return null;
    }

    const int MaxRedirectUris = 20;

    /// <summary>
    /// A redirect URI a client may register (RFC 6749 §3.1.2, RFC 9700 §2.1): absolute, no fragment, https (http only to
    /// this machine), or a path on this server's own address (the console's <c>/console/</c>).
    /// </summary>
    static bool IsRedirectUri(string value)
    {
        if (value.Length is 0 or > 2048 || value.Any(char.IsControl) || value.Contains('#')) return false;
        if (value.StartsWith('/')) return !value.StartsWith("//", StringComparison.Ordinal) && !value.Contains('\\');
        return Uri.TryCreate(value, UriKind.Absolute, out var uri) && uri.UserInfo.Length == 0
            && (uri.Scheme == Uri.UriSchemeHttps || (uri.Scheme == Uri.UriSchemeHttp && uri.IsLoopback));
    }

    static string Clip(string value) => value.Length <= 64 ? value : value[..64] + "…";

    static async Task<IResult> ListAsync(int? pageSize, int? pageNumber, ICredentialStore store, CancellationToken ct)
    {
        if (PlatformRequest.Paging(pageSize, pageNumber, out var size, out var number) is { } bad) return bad;
        var page = await store.ListClientsAsync(size, number, ct);
        return Results.Json(PlatformRequest.Listing(page.Entities.Select(c => ToWire(c)).ToList(), Clients, size, number, page.Total, page.PageCount),
            ParleyJson.Wire.EntityListingOAuthClientWire);
    }

    static async Task<IResult> GetAsync(string clientId, ICredentialStore store, CancellationToken ct) =>
        await store.GetClientAsync(clientId, ct) is { } c ? Results.Json(ToWire(c), ParleyJson.Wire.OAuthClientWire) : ApiError.NotFound("client", Clip(clientId));

    static async Task<IResult> CreateAsync(HttpContext http, ClientDirectory clients, TimeProvider clock, ILoggerFactory loggers, CancellationToken ct)
    {
        var (body, error) = await http.ReadJsonAsync(ParleyJson.Wire.OAuthClientRequest);
        if (error is not null) return error;
        if (Validate(body!, out var permissions, out var grant, out var redirects) is { } invalid) return invalid;
        var caller = http.Caller();
        if (Ceiling(caller, permissions) is { } denied) return denied;
        var secret = NewSecret();
        var now = clock.GetUtcNow();
        var client = new OAuthClient(Guid.NewGuid().ToString(), body!.Name!, Tokens.HashSecret(secret), [.. permissions], now,
            body.Description, now, caller.ClientId, caller.ClientId, AuthorizedGrantType: grant, RegisteredRedirectUris: [.. redirects]);
        await clients.SaveAsync(client, Audit(CredentialAction.ClientCreated, client.Id, http, clock, "permissions: " + string.Join(", ", permissions)), ct);
        loggers.CreateLogger(ParleyLog.OAuth).ClientCreated(client.Id, caller.ClientId, string.Join(", ", permissions));
        return Results.Json(ToWire(client, secret), ParleyJson.Wire.OAuthClientWire, statusCode: 200);
    }

    /// <summary>
    /// The client named in the path, if the caller may change it: 404 if it does not exist, 403 if it holds a permission
    /// the caller does not (changing it, or taking its new secret, would hand the caller that permission).
    /// </summary>
    static async Task<(OAuthClient? Client, IResult? Refusal)> TargetAsync(string clientId, HttpContext http, ICredentialStore store, CancellationToken ct)
    {
        var client = await store.GetClientAsync(clientId, ct);
        if (client is null) return (null, ApiError.NotFound("client", Clip(clientId)));
        return Ceiling(http.Caller(), client.Permissions) is { } denied ? (null, denied) : (client, null);
    }

    static async Task<IResult> UpdateAsync(string clientId, HttpContext http, ClientDirectory clients, TimeProvider clock, ILoggerFactory loggers,
        CancellationToken ct)
    {
        var (body, error) = await http.ReadJsonAsync(ParleyJson.Wire.OAuthClientRequest);
        if (error is not null) return error;
        if (Validate(body!, out var permissions, out var grant, out var redirects) is { } invalid) return invalid;
        var (existing, refusal) = await TargetAsync(clientId, http, clients.Store, ct);
        if (refusal is not null) return refusal;
        var caller = http.Caller();
        if (body!.Permissions is not null && Ceiling(caller, permissions) is { } denied) return denied;
        var updated = existing! with
        {
            Name = body.Name!, Description = body.Description,
            Permissions = body.Permissions is null ? existing.Permissions : [.. permissions],
            AuthorizedGrantType = body.AuthorizedGrantType is null ? existing.AuthorizedGrantType : grant,
            RegisteredRedirectUris = body.RegisteredRedirectUri is null ? existing.RedirectUris : [.. redirects],
            DateModified = clock.GetUtcNow(), ModifiedBy = caller.ClientId,
        };
        await clients.SaveAsync(updated, Audit(CredentialAction.ClientUpdated, clientId, http, clock,
            "permissions: " + string.Join(", ", updated.Permissions)), ct);
        loggers.CreateLogger(ParleyLog.OAuth).ClientUpdated(clientId, caller.ClientId);
        return Results.Json(ToWire(updated), ParleyJson.Wire.OAuthClientWire);
    }

    static async Task<IResult> DeleteAsync(string clientId, HttpContext http, ClientDirectory clients, NotificationHub hub, TimeProvider clock,
        ILoggerFactory loggers, CancellationToken ct)
    {
        var (_, refusal) = await TargetAsync(clientId, http, clients.Store, ct);
        if (refusal is not null) return refusal;
        if (!await clients.DeleteAsync(clientId, Audit(CredentialAction.ClientDeleted, clientId, http, clock), ct))
            return ApiError.NotFound("client", Clip(clientId));
        CloseChannels(clientId, hub);
        loggers.CreateLogger(ParleyLog.OAuth).ClientDeleted(clientId, http.Caller().ClientId);
        return Results.NoContent();
    }

    /// <summary>A new secret; the old one stops working, and so does every token issued under it.</summary>
    static async Task<IResult> RegenerateSecretAsync(string clientId, HttpContext http, ClientDirectory clients, NotificationHub hub,
        TimeProvider clock, ILoggerFactory loggers, CancellationToken ct)
    {
        var (existing, refusal) = await TargetAsync(clientId, http, clients.Store, ct);
        if (refusal is not null) return refusal;
        var secret = NewSecret();
        var updated = existing! with
        {
            SecretHash = Tokens.HashSecret(secret), CredentialVersion = existing.CredentialVersion + 1,
            DateModified = clock.GetUtcNow(), ModifiedBy = http.Caller().ClientId,
        };
        await clients.SaveAsync(updated, Audit(CredentialAction.ClientSecretRegenerated, clientId, http, clock), ct);
        CloseChannels(clientId, hub);
        loggers.CreateLogger(ParleyLog.OAuth).ClientSecretRegenerated(clientId, http.Caller().ClientId);
        return Results.Json(ToWire(updated, secret), ParleyJson.Wire.OAuthClientWire);
    }

    /// <summary>
    /// A revoked client's notification channels close too: the channel id was handed out under the old credentials
    /// (channels are in the store; every node holding one of their sockets closes it).
    /// </summary>
    static void CloseChannels(string clientId, NotificationHub hub)
    {
        hub.CloseClient(clientId);
    }

    static SigningKeyWire ToWire(SigningKey k, string signingKid, DateTimeOffset now) =>
        new(k.Kid, Wire.Time(k.CreatedAt), Wire.Time(k.SignsFrom), Wire.Time(k.RetiresAt), k.Kid == signingKid, !k.IsRetired(now));

    static async Task<IResult> ListKeysAsync(ICredentialStore store, Tokens tokens, TimeProvider clock, CancellationToken ct)
    {
        var keys = await store.ListSigningKeysAsync(ct);
        var now = clock.GetUtcNow();
        var list = keys.OrderByDescending(k => k.SignsFrom).Select(k => ToWire(k, tokens.SigningKid, now)).ToList();
        return Results.Json(new EntityListing<SigningKeyWire> { Entities = list, PageSize = list.Count, PageNumber = 1, Total = list.Count, PageCount = 1 },
            ParleyJson.Wire.EntityListingSigningKeyWire);
    }

    /// <summary>
    /// A new signing key. By default it signs at once and older keys verify for one access-token lifetime, so no issued
    /// token is cut short; <c>overlapSeconds: 0</c> retires them now (a leaked key). On several nodes, set
    /// <c>activateAfterSeconds</c> to at least the key refresh interval so every node knows the key before it is used.
    /// </summary>
    static async Task<IResult> RotateKeyAsync(HttpContext http, SigningKeys keys, Tokens tokens, TimeProvider clock, CancellationToken ct)
    {
        var (body, error) = await http.ReadJsonAsync(ParleyJson.Wire.SigningKeyRotateRequest, required: false);
        if (error is not null) return error;
        var overlap = body?.OverlapSeconds ?? (int)Tokens.AccessTokenLifetime.TotalSeconds + 1;
        var activate = body?.ActivateAfterSeconds ?? 0;
        if (overlap is < 0 or > 604_800) return ApiError.InvalidValue("overlapSeconds", overlap.ToString(), "0 to 604800");
        if (activate is < 0 or > 86_400) return ApiError.InvalidValue("activateAfterSeconds", activate.ToString(), "0 to 86400");
        var key = await keys.RotateAsync(TimeSpan.FromSeconds(overlap), TimeSpan.FromSeconds(activate), http.Caller().ClientId, ct);
        return Results.Json(ToWire(key, tokens.SigningKid, clock.GetUtcNow()), ParleyJson.Wire.SigningKeyWire, statusCode: 201);
    }

    static async Task<IResult> ListAuditAsync(string? entityId, int? pageSize, int? pageNumber, ICredentialStore store, CancellationToken ct)
    {
        if (PlatformRequest.Paging(pageSize, pageNumber, out var size, out var number) is { } bad) return bad;
        var page = await store.ListCredentialAuditAsync(entityId, size, number, ct);
        return Results.Json(PlatformRequest.Listing(page.Entities.Select(a => new CredentialAuditWire(a.Id, a.Action.ToString(),
                a.Action == CredentialAction.SigningKeyRotated ? "SigningKey" : "OAuthClient", a.EntityId,
                new AddressableRef(a.ByClientId, SelfUri: $"{Clients}/{a.ByClientId}"), Wire.Time(a.At), a.Detail)).ToList(),
                "/api/v2/parley/audit/credentials", size, number, page.Total, page.PageCount),
            ParleyJson.Wire.EntityListingCredentialAuditWire);
    }
}
