using System.Security.Cryptography;
using Microsoft.AspNetCore.Diagnostics;
using Parley.Core;
using Microsoft.AspNetCore.Connections;
using Parley.Protocol;
using Parley.Server.Connections;
using Parley.Server.GuestApi;
using Parley.Server.OAuth;
using Parley.Server.Notifications;
using Parley.Server.Terminations;
using Parley.Server.OpenMessaging;
using Parley.Server.Platform;
using Parley.Server.Protocol;
using Parley.Server.Users;
using Parley.Server.Web;

namespace Parley.Server;

/// <summary>Builds the server: store, domain, endpoints. Program.cs and the end-to-end tests both start it this way.</summary>
public static class ParleyApp
{
    /// <param name="clock">The container's <see cref="TimeProvider"/>, the time everything decides on (default: the system's); tests pass one they move (session expiry, inactivity).</param>
    public static async Task<WebApplication> BuildAsync(string[] args, Func<ParleyOptions, ParleyOptions>? configure = null,
        TimeProvider? clock = null, Action<IServiceCollection>? overrides = null)
    {
        // Configuration is read at start; no file watchers for reload-on-change.
        Environment.SetEnvironmentVariable("DOTNET_hostBuilder__reloadConfigOnChange", "false");
        var builder = WebApplication.CreateSlimBuilder(args);
        var options = ParleyOptions.FromEnvironment(builder.Configuration);
        if (configure is not null) options = configure(options);
        ServerHosting.RefuseDemoSecretBeyondLoopback(builder.Configuration, options);
        var configuredConnections = options.MaxConnections;
        options = options.WithinFileBudget();
        // Levels and the console format come from configuration (defaults: the shipped appsettings.json; docs/logging.md).
        builder.AddParleyLogging();
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            // No global cap on plain connections that strangers could fill: ConnectionGate counts every connection, per
            // client address and against the process's share of the open-file limit; idle ones are let go quickly.
            k.Limits.MaxConcurrentConnections = null;
            k.Limits.MaxConcurrentUpgradedConnections = options.MaxGuestSockets + ParleyOptions.NotificationSockets;
            k.Limits.KeepAliveTimeout = options.KeepAliveTimeout;
            k.Limits.RequestHeadersTimeout = options.RequestHeadersTimeout;
            k.ConfigureEndpointDefaults(listen =>
            {
                listen.Use(next => listen.ApplicationServices.GetRequiredService<ConnectionGate>().Wrap(next));
                // Guest WebSockets below the HTTP layer (docs/guest-transport.md); inside TLS, if any, it hands every connection on.
                // With AllowedHosts set, guest upgrades stay on the HTTP path, where host filtering applies to them too.
                if (options.GuestTransportBelowHttp && ServerHosting.AllowedHosts(builder.Configuration) is null) listen.Use(next => listen.ApplicationServices.GetRequiredService<GuestTransport>().Wrap(next));
            });
        });
        builder.AddServerHosting(options);
        builder.AddParleyTelemetry(options);
        // Kestrel's socket transport, with an accept loop that backs off when the process is out of descriptors.
        builder.Services.AddSingleton<IConnectionListenerFactory, BackoffSocketTransport>();
        builder.Services.ConfigureHttpJsonOptions(o => o.SerializerOptions.TypeInfoResolverChain.Insert(0, ParleyJson.Wire));

        var services = builder.Services;
        // The one clock: every service takes TimeProvider from the container, so a test that passes its own drives them all.
        clock ??= TimeProvider.System;
        services.AddSingleton(clock);
        services.AddSingleton(options);
        var store = await services.AddStorageAsync(options);
        services.AddBackplane(options);

        // Before the container: the signing key and the demo seed, on the clock the container hands out.
        var originalKey = await store.Directory.GetOrCreateSigningKeyAsync(() => RandomNumberGenerator.GetBytes(32), default);
        var signingKeys = await store.Credentials.ListSigningKeysAsync(default);
        await SeedDemoAsync(store, options, clock);
        var admin = await Users.UserBootstrap.SeedAsync(store, options, clock);

        services.AddSingleton(sp =>
        {
            var tokens = new Tokens(originalKey, sp.GetRequiredService<TimeProvider>());
            tokens.Load(signingKeys, originalKey);
            return tokens;
        });
        services.AddSingleton<ClientDirectory>();
        services.AddSingleton(admin);
        services.AddSingleton<Users.UserDirectory>();
        services.AddPlatformAuth();   // JWT bearer + a policy per permission (OAuth/PlatformAuth.cs)
        services.AddPlatformOpenApi();   // the published contract (Platform/PlatformOpenApi.cs)
        services.AddSingleton<ICallerResolver, UserAndClientCallers>();   // users' tokens too (Users/UserDirectory.cs); the last registration wins
        services.AddSingleton<TokenThrottle>();
        services.AddSingleton(sp => new SigningKeys(store.Credentials, sp.GetRequiredService<Tokens>(), originalKey, options,
            sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILoggerFactory>(), sp.GetRequiredService<StoreOutages>()));
        services.AddHostedService(sp => sp.GetRequiredService<SigningKeys>());
        services.AddSingleton<GuestRateLimiter>();
        services.AddSingleton<NewSessionLimiter>();
        services.AddSingleton<ConnectionGate>();
        services.AddSingleton<Notifications.NotificationHub>();
        services.AddSingleton<Notifications.NotificationQueues>();
        services.AddSingleton<WebhookRelay>();
        services.AddHostedService(sp => sp.GetRequiredService<WebhookRelay>());
        services.AddSingleton<IOutboundEffects, OpenMessagingEffects>();
        services.AddSingleton(sp => new Conversations(sp.GetRequiredService<IConversationStore>(), sp.GetRequiredService<IGuestSessionStore>(),
            sp.GetRequiredService<IConversationFanout>(), sp.GetRequiredService<TimeProvider>(), effects: sp.GetRequiredService<IOutboundEffects>()));
        services.AddSingleton<GuestSocketEndpoint>();
        services.AddSingleton<GuestTransport>();
        services.AddSingleton<InactivitySweeper>();
        services.AddHostedService(sp => sp.GetRequiredService<InactivitySweeper>());
        services.AddTerminations();   // bulk terminations (Terminations/TerminationsApi.cs)
        services.AddTerminationPolicies();   // the policy sweeper (Terminations/PoliciesHosting.cs)
        // Browsers call the guest REST endpoints (history, config.json) from the customer's site: those, and only those,
        // answer any origin (the guest JWT is the credential, never a cookie). The token endpoint and the Platform API
        // do not: a page must not be able to read a token for well-known demo credentials off a local Parley.
        services.AddCors(o => o.AddPolicy(GuestHistoryApi.CorsPolicy, p => p.AllowAnyOrigin().AllowAnyHeader().WithMethods("GET")));
        services.AddParleyHealth();
        // Draining: the host's shutdown deadline (for requests in flight) starts before the drain delay, so it is extended by it.
        services.Configure<HostOptions>(o => o.ShutdownTimeout += options.DrainDelay);
        services.AddExceptionHandler<ErrorBodyExceptionHandler>();
        services.AddProblemDetails();
        overrides?.Invoke(services);   // tests replace an adapter (the last registration wins)

        var app = builder.Build();
        var log = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger(ParleyLog.Hosting);
        // Stopping: /readyz answers 503 from this moment (DrainingCheck). After the drain delay, for a load balancer to
        // notice, tell every guest socket (1001) and wait, briefly, for those frames to leave before Kestrel stops.
        app.Lifetime.ApplicationStopping.Register(() =>
        {
            if (options.DrainDelay > TimeSpan.Zero)
            {
                log.Draining(options.DrainDelay.TotalSeconds);
                Thread.Sleep(options.DrainDelay);
            }
            app.Services.GetRequiredService<SessionRegistry>().CloseAllAsync().Wait(TimeSpan.FromSeconds(3));
        });
        app.Lifetime.ApplicationStopped.Register(() => store.Lifetime.DisposeAsync().AsTask().GetAwaiter().GetResult());
        app.UseParleyAccessLog(options);
        app.UseExceptionHandler();
        // 404 and 405 from routing carry no body; give them the platform's error body.
        app.UseStatusCodePages(async ctx =>
        {
            var http = ctx.HttpContext;
            if (http.Response.HasStarted || http.Response.ContentLength > 0) return;
            var path = http.Request.Path.ToString();
            var hint = path.Contains("conversation", StringComparison.OrdinalIgnoreCase) ? " " + ConversationsApi.Levers : "";
            ApiError error = http.Response.StatusCode switch
            {
                404 => new(404, "not.found", $"No endpoint for {http.Request.Method} {ApiError.Clip(path, 200)}.{hint}"),
                405 => new(405, "method.not.allowed", $"{http.Request.Method} is not allowed on {ApiError.Clip(path, 200)}.{hint}"),
                413 => PlatformRequest.TooLarge(options.MaxRequestBodyBytes),   // a body Kestrel cut off, answered without a body
                var s => new(s, "error", $"The request failed with status {s}."),
            };
            await error.ExecuteAsync(http);
        });
        app.UseServerHosting(options);
        app.Use(StripGatewayPrefix);
        app.UseRouting();
        app.UseCors();
        app.UsePlatformAuth();
        // Before the WebSocket middleware, which keeps the upgrade feature it finds: guest frames are measured as announced.
        app.Use((http, next) =>
        {
            if (http.Request.Path.Equals("/v1", StringComparison.Ordinal)) FrameSizeGuard.Install(http, options.MaxFrameBytes);
            return next(http);
        });
        // Pings keep sockets alive through proxies; a peer that leaves one unanswered for the pong timeout is aborted.
        app.UseWebSockets(new WebSocketOptions { KeepAliveInterval = options.WebSocketPingInterval, KeepAliveTimeout = options.WebSocketPongTimeout });

        app.Map("/v1", (HttpContext http, GuestSocketEndpoint guest) => guest.HandleAsync(http));
        app.MapGuestRest();
        app.MapTokenApi();
        app.MapClientsApi();
        app.MapUsersApi();
        app.MapAuthorizeEndpoint();
        app.MapConversationsApi();
        app.MapAnalyticsApi();
        app.MapParleyApi();
        app.MapTerminationPolicies();
        app.MapRoutingApi();
        app.MapOpenMessagingApi();
        app.MapNotificationsApi();
        app.MapTerminations();   // POST/GET /api/v2/parley/terminations (Terminations/TerminationsApi.cs)
        app.MapBulkTerminationPreview();   // POST /api/v2/parley/terminations/preview (Terminations/BulkPreviewApi.cs)
        app.MapReceiptsApi();   // termination receipts (Terminations/ReceiptsApi.cs)
        app.MapParleyHealth();
        app.MapIndexPage();
        app.MapPlatformOpenApi();
        app.MapWebAssets();   // the messenger, the console and the guest library (docs/web.md)
        app.MapParleyMetrics(options);

        if (options.MaxConnections < configuredConnections)
            log.ConnectionsCapped(configuredConnections, ParleyOptions.OpenFileLimit, ParleyOptions.FileReserve, options.MaxConnections);
        app.Lifetime.ApplicationStarted.Register(() => Banner.Print(app.Urls, options, log, admin));
        return app;
    }

    /// <summary>
    /// The official SDK's gateway setting may put a path in front of its calls (<c>path_params_api</c> before
    /// <c>/api/v2/…</c>, <c>path_params_login</c> before <c>/oauth/token</c> and <c>/oauth/authorize</c>, docs/compatibility.md §OAuth token): serve those as if it were not there.
    /// </summary>
    static Task StripGatewayPrefix(HttpContext http, RequestDelegate next)
    {
        var path = http.Request.Path.Value ?? "";
        if (!path.StartsWith("/api/v2/", StringComparison.Ordinal) && !path.StartsWith("/oauth/", StringComparison.Ordinal))
        {
            var at = path.IndexOf("/api/v2/", StringComparison.Ordinal);
            if (at <= 0) at = path.EndsWith("/oauth/token", StringComparison.Ordinal) ? path.Length - "/oauth/token".Length
                : path.EndsWith(AuthorizeEndpoint.Path, StringComparison.Ordinal) ? path.Length - AuthorizeEndpoint.Path.Length : -1;
            if (at > 0)
            {
                http.Request.PathBase = http.Request.PathBase.Add(path[..at]);
                http.Request.Path = path[at..];
            }
        }
        return next(http);
    }

    /// <summary>
    /// The demo queue, deployment and OAuth client, created on first start and re-applied at every start, so the
    /// PARLEY_DEMO_* variables always win (as Azurite's well-known dev account does).
    /// </summary>
    static async Task SeedDemoAsync(StoragePorts store, ParleyOptions o, TimeProvider clock)
    {
        await RoutingApi.SeedDemoQueueAsync(store.Directory, o, clock);
        var existing = await store.Directory.GetDeploymentAsync(o.DemoDeploymentId, default);
        if (existing is null)
            await store.Directory.UpsertDeploymentAsync(new Deployment(o.DemoDeploymentId, "Parley demo", ["*"], true, DisconnectMode.ReadOnly, true,
                clock.GetUtcNow(), GuestMessagesPerSecond: o.DemoGuestMessagesPerSecond ?? Deployment.PlatformGuestMessagesPerSecond) { QueueId = o.DemoQueueId }, default);
        else
        {
            var wanted = await RoutingApi.DemoDeploymentRouteAsync(store.Directory, existing, o);
            if (o.DemoGuestMessagesPerSecond is { } rate) wanted = wanted with { GuestMessagesPerSecond = rate };
            if (wanted != existing) await store.Directory.UpsertDeploymentAsync(wanted, default);
        }
        var client = await store.Credentials.GetClientAsync(o.DemoClientId, default);
        // A changed demo secret also raises the credential version: tokens issued under the old secret stop working.
        if (client is null || !Tokens.SecretMatches(o.DemoClientSecret, client.SecretHash))
            await store.Directory.UpsertClientAsync(new OAuthClient(o.DemoClientId, "Parley demo client", Tokens.HashSecret(o.DemoClientSecret),
                [Permissions.All], client?.DateCreated ?? clock.GetUtcNow(), client?.Description, clock.GetUtcNow(), client?.CreatedBy,
                "parley", client is null ? 0 : client.CredentialVersion + 1), default);
    }
}

/// <summary>
/// An unexpected exception becomes the platform's 500 error body; nothing half-written was committed. A store that cannot
/// be reached (<see cref="StoreUnavailableException"/>) is a 503 in the surface's own form, with Retry-After: nothing was
/// stored, so the same request may be sent again.
/// </summary>
sealed class ErrorBodyExceptionHandler(ILoggerFactory loggers, StoreOutages outages) : IExceptionHandler
{
    readonly ILogger _log = loggers.CreateLogger(ParleyLog.Hosting);

    /// <summary>Seconds a client is asked to wait before retrying a request the store could not take.</summary>
    public const string StoreRetryAfter = "2";

    public async ValueTask<bool> TryHandleAsync(HttpContext http, Exception exception, CancellationToken ct)
    {
        if (StoreOutages.Find(exception) is { } unavailable)
        {
            outages.Failed($"{http.Request.Method} {ApiError.Clip(AccessLog.SafePath(http.Request.Path.Value ?? ""), 200)}", unavailable);
            http.Response.Headers.RetryAfter = StoreRetryAfter;
            await StoreUnavailable(http).ExecuteAsync(http);
            return true;
        }
        if (exception is BadHttpRequestException { StatusCode: StatusCodes.Status413PayloadTooLarge })
        {
            // Kestrel's MaxRequestBodySize, met while an endpoint read a chunked body.
            await ServerHosting.TooLarge(http, http.RequestServices.GetRequiredService<ParleyOptions>().MaxRequestBodyBytes);
            return true;
        }
        if (exception is BadHttpRequestException bad)
        {
            await ApiError.BadRequest($"The request could not be understood by the server due to malformed syntax: {ApiError.Clip(bad.Message, 300)}").ExecuteAsync(http);
            return true;
        }
        _log.RequestFailed(exception, http.Request.Method, ApiError.Clip(AccessLog.SafePath(http.Request.Path.Value ?? ""), 200));
        await ApiError.Internal().ExecuteAsync(http);
        return true;
    }

    /// <summary>RFC 6749's <c>temporarily_unavailable</c> on the token endpoint; the platform's <c>service.unavailable</c> elsewhere.</summary>
    static IResult StoreUnavailable(HttpContext http)
    {
        if (http.Request.Path.Value?.EndsWith("/oauth/token", StringComparison.Ordinal) == true)
            return TokenApi.Error(503, "temporarily_unavailable", "The server cannot reach its store; retry shortly.");
        return ApiError.StoreUnavailable;
    }
}
