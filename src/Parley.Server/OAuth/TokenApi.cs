using System.Text;
using System.Text.Json;
using Parley.Core;
using Parley.Protocol;

namespace Parley.Server.OAuth;

/// <summary><c>POST /oauth/token</c>: the client-credentials grant (spec §4), Basic auth or form fields.</summary>
public static class TokenApi
{
    public static void MapTokenApi(this IEndpointRouteBuilder app)
    {
        app.MapPost("/oauth/token", IssueAsync);   // also under a gateway prefix: ParleyApp.StripGatewayPrefix
    }

    static async Task<IResult> IssueAsync(HttpContext http, IDirectoryStore directory, Tokens tokens, CancellationToken ct)
    {
        if (!http.Request.HasFormContentType)
            return Error(400, "invalid_request", "Send grant_type=client_credentials as application/x-www-form-urlencoded.");
        IFormCollection form;
        try { form = await http.Request.ReadFormAsync(ct); }
        catch (InvalidDataException e) { return Error(400, "invalid_request", $"The form could not be read: {e.Message}"); }
        if (form["grant_type"] != "client_credentials")
            return Error(400, "unsupported_grant_type", "Only grant_type=client_credentials is supported.");

        string? id = form["client_id"], secret = form["client_secret"];
        var auth = http.Request.Headers.Authorization.ToString();
        if (auth.StartsWith("Basic ", StringComparison.OrdinalIgnoreCase))
        {
            try
            {
                var pair = Encoding.UTF8.GetString(Convert.FromBase64String(auth["Basic ".Length..].Trim()));
                var colon = pair.IndexOf(':');
                if (colon > 0) (id, secret) = (pair[..colon], pair[(colon + 1)..]);
            }
            catch (FormatException) { return Error(401, "invalid_client", "authentication failed"); }
        }
        if (string.IsNullOrEmpty(id) || string.IsNullOrEmpty(secret)) return Error(401, "invalid_client", "client credentials missing");

        var client = await directory.GetClientAsync(id, ct);
        if (client is null) return Error(401, "invalid_client", "client not found");
        if (!Tokens.SecretMatches(secret, client.SecretHash)) return Error(401, "invalid_client", "authentication failed");

        var (token, expiresIn) = tokens.IssueAccessToken(client.Id, client.Permissions);
        http.Response.Headers.CacheControl = "no-store";
        return Results.Json(new TokenResponse(token, "bearer", expiresIn), ParleyJson.Wire.TokenResponse);
    }

    static IResult Error(int status, string error, string description) =>
        Results.Json(new OAuthError(error, description, description), ParleyJson.Wire.OAuthError, statusCode: status);
}
