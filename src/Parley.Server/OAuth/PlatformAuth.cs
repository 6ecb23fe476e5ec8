using System.Collections.Concurrent;
using System.Security.Claims;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.AspNetCore.Authorization;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using Parley.Server.Protocol;

namespace Parley.Server.OAuth;

/// <summary>
/// The Platform API's authentication and authorization on ASP.NET Core's own: the JWT bearer handler validates the HS256
/// access tokens (audience and issuer <c>parley:platform</c>, lifetime on the server's clock, the signature against the key
/// ring by <c>kid</c>), <see cref="ICallerResolver"/> turns a valid token into the caller as it is now (a deleted client or
/// a regenerated secret ends its tokens), and one policy per permission (<c>perm:&lt;permission&gt;</c>) checks the caller's
/// current permissions. Every refusal is written in the platform's error form (<see cref="ApiError"/>): 401
/// <c>authentication.required</c>, <c>bad.credentials</c> or <c>credentials.expired</c>; 403 <c>missing.permissions</c>.
/// </summary>
public static class PlatformAuth
{
    public const string Scheme = "PlatformBearer";
    /// <summary>The policy of the <c>/api/v2</c> groups: any current Platform caller (each endpoint adds its permission).</summary>
    public const string CallerPolicy = "platform:caller";
    public const string PermissionPolicyPrefix = "perm:";

    public static string PolicyFor(string permission) => PermissionPolicyPrefix + permission;

    public static IServiceCollection AddPlatformAuth(this IServiceCollection services)
    {
        services.AddSingleton<ICallerResolver, ClientCallers>();
        services.AddSingleton<CachingTokenHandler>();
        services.AddAuthentication(Scheme).AddJwtBearer(Scheme);
        // AddAuthentication brings data protection, whose hosted service makes a key file under $HOME at start. Nothing in
        // Parley protects data with it (bearer tokens are not cookies), and the in-memory mode must leave the disk untouched.
        foreach (var d in services.Where(d => d.ServiceType == typeof(IHostedService) && d.ImplementationType?.Name == "DataProtectionHostedService").ToList())
            services.Remove(d);
        services.AddOptions<JwtBearerOptions>(Scheme).Configure<Tokens, TimeProvider, CachingTokenHandler>((o, tokens, clock, handler) =>
        {
            o.MapInboundClaims = false;          // "sub" stays "sub"
            o.TimeProvider = clock;
            o.TokenHandlers.Clear();
            o.TokenHandlers.Add(handler);
            o.TokenValidationParameters = new TokenValidationParameters
            {
                ValidAudience = Tokens.PlatformAudience,
                // Tokens issued before the issuer claim existed carry none; one that names an issuer must name this one.
                IssuerValidator = (issuer, _, _) => string.IsNullOrEmpty(issuer) || issuer == Tokens.PlatformIssuer
                    ? Tokens.PlatformIssuer
                    : throw new SecurityTokenInvalidIssuerException("The token's issuer is not parley:platform."),
                ValidAlgorithms = [SecurityAlgorithms.HmacSha256],
                IssuerSigningKeyResolver = (_, _, kid, _) => tokens.VerificationKeys(kid),
                RequireExpirationTime = true,
                // On the server's clock (tests move it), with no skew: a token ends exactly when expires_in said, as before.
                LifetimeValidator = (_, expires, _, _) => expires > clock.GetUtcNow().UtcDateTime
                    ? true
                    : throw new SecurityTokenExpiredException("The token has expired.") { Expires = expires ?? default },
                NameClaimType = "sub",
            };
            o.Events = new JwtBearerEvents
            {
                OnMessageReceived = SkipOutsidePlatform,
                OnTokenValidated = ResolveCallerAsync,
                OnChallenge = WriteChallengeAsync,
                OnForbidden = WriteForbiddenAsync,
            };
        });
        services.AddAuthorization();
        services.AddSingleton<IAuthorizationPolicyProvider, PermissionPolicies>();
        services.AddSingleton<IAuthorizationHandler, PermissionHandler>();
        return services;
    }

    /// <summary>After routing (authorization needs the endpoint) and before the endpoints.</summary>
    public static IApplicationBuilder UsePlatformAuth(this IApplicationBuilder app) => app.UseAuthentication().UseAuthorization();

    /// <summary>
    /// Only endpoints that ask for authorization read the bearer token: the guest REST endpoints carry the guest's JWT
    /// in the same header, which this scheme must neither spend work on nor log as a failure.
    /// </summary>
    static Task SkipOutsidePlatform(MessageReceivedContext ctx)
    {
        if (ctx.HttpContext.GetEndpoint()?.Metadata.GetMetadata<IAuthorizeData>() is null) ctx.NoResult();
        return Task.CompletedTask;
    }

    static async Task ResolveCallerAsync(TokenValidatedContext ctx)
    {
        var http = ctx.HttpContext;
        var caller = await http.RequestServices.GetRequiredService<ICallerResolver>().ResolveAsync(ctx.Principal!, http.RequestAborted);
        if (caller is null)
        {
            ctx.Fail(new SecurityTokenValidationException("The token's client no longer exists or its credentials have changed."));
            return;
        }
        http.Items[typeof(Caller)] = caller;
    }

    static async Task WriteChallengeAsync(JwtBearerChallengeContext ctx)
    {
        ctx.HandleResponse();
        var error = ctx.AuthenticateFailure switch
        {
            null => ApiError.AuthenticationRequired,
            SecurityTokenExpiredException => ApiError.CredentialsExpired,
            _ => ApiError.BadCredentials,
        };
        await error.ExecuteAsync(ctx.HttpContext);
    }

    static async Task WriteForbiddenAsync(ForbiddenContext ctx)
    {
        var required = ctx.HttpContext.GetEndpoint()?.Metadata.GetOrderedMetadata<RequiredPermission>().Select(r => r.Permission).ToList() ?? [];
        var caller = ctx.HttpContext.Items[typeof(Caller)] as Caller;
        var missing = required.Where(p => caller?.Has(p) != true).ToList();
        await ApiError.MissingPermissions(missing.Count > 0 ? string.Join(", ", missing) : "(unknown)").ExecuteAsync(ctx.HttpContext);
    }
}

/// <summary>
/// Who a valid Platform token speaks for, and what it may do now. The one place a principal becomes a <see cref="Caller"/>:
/// a client-credentials token (claims <c>sub</c> = client id, <c>cv</c> = credential version) resolves through
/// <see cref="ClientDirectory"/> to the client's current permissions. A user's token (claims naming the user) resolves
/// here too, to the user's roles' permissions. Null: the token no longer speaks for anyone (401 <c>bad.credentials</c>).
/// </summary>
public interface ICallerResolver
{
    ValueTask<Caller?> ResolveAsync(ClaimsPrincipal principal, CancellationToken ct);
}

sealed class ClientCallers(ClientDirectory clients) : ICallerResolver
{
    public async ValueTask<Caller?> ResolveAsync(ClaimsPrincipal principal, CancellationToken ct)
    {
        var clientId = principal.FindFirst("sub")?.Value;
        if (string.IsNullOrEmpty(clientId)) return null;
        var version = long.TryParse(principal.FindFirst("cv")?.Value, out var cv) ? cv : 0;
        var (client, caller) = await clients.GetAsync(clientId, ct);
        return client is not null && client.CredentialVersion == version ? caller : null;
    }
}

/// <summary>The requirement behind <c>perm:&lt;permission&gt;</c>: the caller holds the permission now.</summary>
public sealed record PermissionRequirement(string Permission) : IAuthorizationRequirement;

sealed class PermissionHandler : AuthorizationHandler<PermissionRequirement>
{
    protected override Task HandleRequirementAsync(AuthorizationHandlerContext context, PermissionRequirement requirement)
    {
        if (context.Resource is HttpContext http && http.Items[typeof(Caller)] is Caller caller && caller.Has(requirement.Permission))
            context.Succeed(requirement);
        return Task.CompletedTask;
    }
}

/// <summary>
/// Policies made on demand: <c>perm:&lt;permission&gt;</c> (a current caller holding it) and <see cref="PlatformAuth.CallerPolicy"/>
/// (any current caller), both on the Platform bearer scheme (the default one). Made once per name and cached.
/// </summary>
sealed class PermissionPolicies(IOptions<AuthorizationOptions> options) : IAuthorizationPolicyProvider
{
    readonly DefaultAuthorizationPolicyProvider _fallback = new(options);
    readonly ConcurrentDictionary<string, AuthorizationPolicy> _policies = new();

    public bool AllowsCachingPolicies => true;

    public Task<AuthorizationPolicy?> GetPolicyAsync(string policyName)
    {
        if (policyName == PlatformAuth.CallerPolicy || policyName.StartsWith(PlatformAuth.PermissionPolicyPrefix, StringComparison.Ordinal))
            return Task.FromResult<AuthorizationPolicy?>(_policies.GetOrAdd(policyName, Build));
        return _fallback.GetPolicyAsync(policyName);
    }

    static AuthorizationPolicy Build(string name)
    {
        // No scheme named: the Platform scheme is the default one, which UseAuthentication has already run for this request.
        // Naming it made the policy evaluator authenticate again and copy the principal on every call (BENCHMARKS.md,
        // round two, tenth run); a challenge or a forbid still goes to the default scheme, which writes the platform's errors.
        var policy = new AuthorizationPolicyBuilder().RequireAuthenticatedUser();
        if (name.StartsWith(PlatformAuth.PermissionPolicyPrefix, StringComparison.Ordinal))
            policy.AddRequirements(new PermissionRequirement(name[PlatformAuth.PermissionPolicyPrefix.Length..]));
        return policy.Build();
    }

    public Task<AuthorizationPolicy> GetDefaultPolicyAsync() => _fallback.GetDefaultPolicyAsync();
    public Task<AuthorizationPolicy?> GetFallbackPolicyAsync() => _fallback.GetFallbackPolicyAsync();
}

/// <summary>
/// The standard JWT validation with a memory of tokens already verified, so a client's every call does not re-verify the
/// signature and re-parse its token (as the hand-written check did before). Only what the token itself proves is kept
/// (signature, audience, issuer, expiry); on every hit the expiry is checked again on the server's clock and the signing
/// key must still be in force, and the caller is resolved per call (<see cref="ICallerResolver"/>).
/// </summary>
sealed class CachingTokenHandler(Tokens tokens, TimeProvider clock) : JsonWebTokenHandler
{
    const int MaxEntries = 10_000;
    sealed record Verified(ClaimsIdentity Identity, JsonWebToken Token, DateTimeOffset Expires, string? Kid);
    readonly ConcurrentDictionary<string, Verified> _verified = new(StringComparer.Ordinal);
    object? _ring;

    public override async Task<TokenValidationResult> ValidateTokenAsync(string token, TokenValidationParameters validationParameters)
    {
        // A new key ring (a rotation, a retirement) starts the memory afresh.
        if (!ReferenceEquals(_ring, tokens.RingVersion))
        {
            _verified.Clear();
            _ring = tokens.RingVersion;
        }
        if (_verified.TryGetValue(token, out var hit))
        {
            if (!tokens.KeyInForce(hit.Kid))
                return Invalid(new SecurityTokenSignatureKeyNotFoundException("The token's signing key has retired."));
            if (hit.Expires <= clock.GetUtcNow())
                return Invalid(new SecurityTokenExpiredException("The token has expired.") { Expires = hit.Expires.UtcDateTime });
            return new TokenValidationResult { IsValid = true, ClaimsIdentity = hit.Identity, SecurityToken = hit.Token };
        }
        var result = await base.ValidateTokenAsync(token, validationParameters);
        if (result.IsValid && result.SecurityToken is JsonWebToken jwt)
        {
            if (_verified.Count >= MaxEntries) _verified.Clear();
            _verified[token] = new Verified(result.ClaimsIdentity, jwt, new DateTimeOffset(jwt.ValidTo, TimeSpan.Zero),
                string.IsNullOrEmpty(jwt.Kid) ? null : jwt.Kid);
        }
        return result;
    }

    static TokenValidationResult Invalid(Exception e) => new() { IsValid = false, Exception = e };
}
