using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.OpenApi;
using Parley.Server.OAuth;
using Scalar.AspNetCore;

namespace Parley.Server.Platform;

/// <summary>
/// The Platform API's published contract (docs/api.md): an OpenAPI document at <see cref="DocumentPath"/> made from the
/// endpoints themselves (every endpoint that declares a permission or that it serves any caller (<see cref="AnyCaller"/>), with its request and response types, its permission
/// and its security requirement), and an interactive reference page at <see cref="ReferencePath"/> whose assets the server
/// serves itself (Scalar, bundled in its NuGet package: nothing is loaded from a CDN, no fonts, no telemetry).
/// </summary>
public static class PlatformOpenApi
{
    public const string DocumentName = "v1";
    public const string DocumentPath = "/openapi/v1.json";
    public const string ReferencePath = "/api-docs";
    /// <summary>The security schemes' names in the document: OAuth 2 flows, and a plain bearer token.</summary>
    public const string OAuthScheme = "oauth", BearerScheme = "bearer";
    /// <summary>The extension the platform's own document uses for an operation's permissions.</summary>
    public const string PermissionsExtension = "x-inin-requires-permissions";

    /// <summary>Where operation ids derived from the path (<see cref="OperationId"/>) differ from the official SDK's.</summary>
    static readonly Dictionary<string, string> OfficialIds = new()
    {
        ["GET /api/v2/conversations/messaging/integrations/open/{integrationId}"] = "getConversationsMessagingIntegrationsOpenIntegrationId",
        ["PATCH /api/v2/conversations/messaging/integrations/open/{integrationId}"] = "patchConversationsMessagingIntegrationsOpenIntegrationId",
        ["DELETE /api/v2/conversations/messaging/integrations/open/{integrationId}"] = "deleteConversationsMessagingIntegrationsOpenIntegrationId",
    };

    public static IServiceCollection AddPlatformOpenApi(this IServiceCollection services) => services.AddOpenApi(DocumentName, o =>
    {
        // 3.0 rather than 3.1: every client generator reads it (NSwag, openapi-generator, Kiota).
        o.OpenApiVersion = OpenApiSpecVersion.OpenApi3_0;
        o.ShouldInclude = d => d.ActionDescriptor.EndpointMetadata.Any(m => m is RequiredPermission or AnyCaller);
        o.AddDocumentTransformer((document, _, _) =>
        {
            document.Info = new OpenApiInfo
            {
                Title = "Parley Platform API",
                Version = ParleyCommandLine.Version,
                Description = "The Platform API of Parley, a self-hosted server speaking the Genesys Cloud messaging protocol: the " +
                    "platform's paths and bodies, plus Parley's own administration under /api/v2/parley. Every operation takes a " +
                    "bearer access token (POST /oauth/token, client credentials) and names the permission it requires " +
                    $"({PermissionsExtension}). Errors use the platform's error body (ErrorBody).",
            };
            // Only the tags operations use (the generator also lists the defaults it gave before the operations were tagged).
            var used = document.Paths.Values.SelectMany(p => p.Operations?.Values.AsEnumerable() ?? []).SelectMany(o => o.Tags?.AsEnumerable() ?? [])
                .Select(t => t.Name).ToHashSet();
            foreach (var unused in document.Tags?.Where(t => !used.Contains(t.Name)).ToList() ?? []) document.Tags!.Remove(unused);
            document.Components ??= new OpenApiComponents();
            document.Components.SecuritySchemes ??= new Dictionary<string, IOpenApiSecurityScheme>();
            document.Components.SecuritySchemes[OAuthScheme] = new OpenApiSecurityScheme
            {
                Type = SecuritySchemeType.OAuth2,
                Description = "OAuth 2: client credentials (an OAuth client's id and secret, HTTP Basic at /oauth/token), or the " +
                    "authorization code grant with PKCE for a person logging in from a browser app.",
                Flows = new OpenApiOAuthFlows
                {
                    ClientCredentials = new OpenApiOAuthFlow { TokenUrl = new Uri("/oauth/token", UriKind.Relative), Scopes = new Dictionary<string, string>() },
                    AuthorizationCode = new OpenApiOAuthFlow
                    {
                        AuthorizationUrl = new Uri("/oauth/authorize", UriKind.Relative), TokenUrl = new Uri("/oauth/token", UriKind.Relative),
                        Scopes = new Dictionary<string, string>(),
                    },
                },
            };
            document.Components.SecuritySchemes[BearerScheme] = new OpenApiSecurityScheme
            {
                Type = SecuritySchemeType.Http, Scheme = "bearer", BearerFormat = "JWT",
                Description = "An access token from POST /oauth/token, in the Authorization header.",
            };
            return Task.CompletedTask;
        });
        o.AddOperationTransformer((operation, context, _) =>
        {
            var description = context.Description;
            var path = "/" + description.RelativePath!.TrimStart('/');
            var method = description.HttpMethod ?? "GET";
            operation.OperationId = OfficialIds.GetValueOrDefault($"{method} {path}") ?? OperationId(method, path);
            operation.Extensions ??= new Dictionary<string, IOpenApiExtension>();
            operation.Extensions["x-purecloud-method-name"] = new JsonNodeExtension(JsonValue.Create(operation.OperationId));
            // An area mapped without a group's tag (the default would be its class or the application's name): tag it by its path.
            if (!description.ActionDescriptor.EndpointMetadata.OfType<Microsoft.AspNetCore.Http.Metadata.ITagsMetadata>().Any())
            {
                var area = path.Split('/', StringSplitOptions.RemoveEmptyEntries).ElementAtOrDefault(2) ?? "platform";
                var tag = char.ToUpperInvariant(area[0]) + area[1..];
                context.Document?.Tags?.Add(new OpenApiTag { Name = tag });
                operation.Tags = new HashSet<OpenApiTagReference> { new(tag, context.Document) };
            }
            var metadata = description.ActionDescriptor.EndpointMetadata;
            var permissions = metadata.OfType<RequiredPermission>().Select(r => r.Permission).ToList();
            if (permissions.Count > 0)
                operation.Extensions[PermissionsExtension] = new JsonNodeExtension(new JsonObject
                {
                    // The platform's spelling: ANY of one is that one; several are ALL required.
                    ["type"] = permissions.Count == 1 ? "ANY" : "ALL", ["permissions"] = new JsonArray([.. permissions.Select(p => (JsonNode)p)]),
                });
            var requires = permissions.Count == 1 ? $"Requires the permission `{permissions[0]}`."
                : permissions.Count > 1 ? $"Requires the permissions {string.Join(" and ", permissions.Select(p => $"`{p}`"))}, all of them."
                : $"Requires no permission: {metadata.OfType<AnyCaller>().First().Who}.";
            operation.Description = (operation.Description is { Length: > 0 } d ? d + "\n\n" : "") + requires;
            operation.Security =
            [
                new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference(OAuthScheme, context.Document)] = [] },
                new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference(BearerScheme, context.Document)] = [] },
            ];
            operation.Responses ??= new OpenApiResponses();
            // An endpoint that declares no answer of its own (a plain IResult) still succeeds with a 200.
            if (!operation.Responses.Keys.Any(k => k.StartsWith('2'))) operation.Responses["200"] = new OpenApiResponse { Description = "OK" };
            if (operation.Responses is { } responses)
            {
                Describe(responses, "400", "bad.request, invalid.value, invalid.date: the request is malformed or a value is refused (the platform's error body).");
                Describe(responses, "401", "authentication.required (no token), bad.credentials (an invalid token, or its client deleted or its secret regenerated since), credentials.expired.");
                Describe(responses, "403", $"missing.permissions: the caller does not hold {string.Join(" and ", permissions)}.");
                Describe(responses, "404", "not.found: the resource does not exist.");
                Describe(responses, "409", "The request conflicts with the resource's state (e.g. conversation.already.disconnected, conversation.ended).");
                Describe(responses, "413", "request.entity.too.large: the body is over the limit.");
                Describe(responses, "415", "unsupported.media.type: send application/json.");
            }
            return Task.CompletedTask;
        });
    });

    static void Describe(OpenApiResponses responses, string status, string text)
    {
        if (responses.TryGetValue(status, out var response) && response is OpenApiResponse r) r.Description = text;
    }

    /// <summary>
    /// The official SDK's naming: the method, then each literal path segment after <c>/api/v2</c> in PascalCase, a segment
    /// followed by an id in the singular (<c>GET /api/v2/oauth/clients/{clientId}</c> → <c>getOauthClient</c>).
    /// </summary>
    public static string OperationId(string method, string path)
    {
        var segments = path.Split('/', StringSplitOptions.RemoveEmptyEntries).Skip(2).ToArray();   // after api/v2
        var id = new StringBuilder(method.ToLowerInvariant());
        for (var i = 0; i < segments.Length; i++)
        {
            var s = segments[i];
            if (s.StartsWith('{')) continue;
            if (i + 1 < segments.Length && segments[i + 1].StartsWith('{')) s = Singular(s);
            id.Append(char.ToUpperInvariant(s[0])).Append(s[1..]);
        }
        return id.ToString();
    }

    static string Singular(string s) =>
        s.EndsWith("ies", StringComparison.Ordinal) ? s[..^3] + "y" : s.EndsWith('s') ? s[..^1] : s;

    /// <summary>The document and the reference page (which reads it): both public, like the platform's published API.</summary>
    public static void MapPlatformOpenApi(this IEndpointRouteBuilder app)
    {
        app.MapOpenApi(DocumentPath.Replace(DocumentName, "{documentName}"));
        app.MapScalarApiReference(ReferencePath, o =>
        {
            o.WithTitle("Parley Platform API")
                .WithOpenApiRoutePattern(DocumentPath.Replace(DocumentName, "{documentName}"))
                .DisableDefaultFonts()   // the default fonts come from a CDN
                .AddPreferredSecuritySchemes([BearerScheme]);
            o.AddDocument(DocumentName);
            o.Telemetry = false;
        });
    }
}
