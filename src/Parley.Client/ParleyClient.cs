namespace Parley.Client;

/// <summary>
/// The client of one Parley server (or Genesys Cloud org, for the calls they share: docs/ending-sessions.md, "The C#
/// client"). Thread-safe; make one and keep it. Every call takes a cancellation token and throws
/// <see cref="ParleyApiException"/> for an answer it did not expect.
/// </summary>
public sealed class ParleyClient : IDisposable
{
    readonly HttpClient _http;
    readonly bool _ownsHttp;
    readonly Http _api;

    /// <summary>A client with OAuth client credentials: it gets and renews its token itself.</summary>
    /// <param name="http">An HttpClient to send with (not disposed by this client); one of its own otherwise.</param>
    public ParleyClient(Uri baseAddress, string clientId, string clientSecret, HttpClient? http = null)
        : this(new ParleyClientOptions { BaseAddress = baseAddress, ClientId = clientId, ClientSecret = clientSecret }, http) { }

    public ParleyClient(ParleyClientOptions options, HttpClient? http = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.ClientId is null == options.AccessToken is null)
            throw new ArgumentException("Set either ClientId and ClientSecret, or AccessToken.", nameof(options));
        if (options.ClientId is not null && options.ClientSecret is null)
            throw new ArgumentException("ClientSecret is required with ClientId.", nameof(options));
        Options = options;
        _ownsHttp = http is null;
        _http = http ?? new HttpClient { Timeout = TimeSpan.FromSeconds(100) };
        _api = new Http(_http, options, new TokenSource(_http, options));
        Conversations = new ConversationsClient(_api);
        Analytics = new AnalyticsClient(_api);
        BulkTerminations = new BulkTerminationsClient(_api);
        Policies = new PoliciesClient(_api);
        Receipts = new ReceiptsClient(_api);
        Audit = new AuditClient(_api);
        Deployments = new DeploymentsClient(_api);
        GuestSessions = new GuestSessionsClient(_api);
        Integrations = new IntegrationsClient(_api);
        Deliveries = new DeliveriesClient(_api);
        Notifications = new NotificationsClient(_api);
    }

    /// <summary>A client that sends a fixed bearer token (never renewed: when it expires, calls throw 401).</summary>
    public static ParleyClient WithToken(Uri baseAddress, string accessToken, HttpClient? http = null) =>
        new(new ParleyClientOptions { BaseAddress = baseAddress, AccessToken = accessToken }, http);

    /// <summary>
    /// A client for a Genesys Cloud org: API on <c>https://api.{region}</c>, tokens from <c>https://login.{region}/oauth/token</c>
    /// (<paramref name="region"/> e.g. <c>mypurecloud.com</c>, <c>mypurecloud.de</c>, <c>euw2.pure.cloud</c>).
    /// </summary>
    public static ParleyClient ForGenesysCloud(string region, string clientId, string clientSecret, HttpClient? http = null) =>
        new(new ParleyClientOptions
        {
            BaseAddress = new Uri($"https://api.{region}"), TokenEndpoint = new Uri($"https://login.{region}/oauth/token"),
            ClientId = clientId, ClientSecret = clientSecret,
        }, http);

    public ParleyClientOptions Options { get; }

    /// <summary>Message conversations: list live, read, agentless outbound, the raw termination levers. Genesys Cloud calls.</summary>
    public ConversationsClient Conversations { get; }

    /// <summary>Conversation details (<c>conversationEnd</c> shows an end). A Genesys Cloud call.</summary>
    public AnalyticsClient Analytics { get; }

    /// <summary>Parley extension: end every live conversation a filter matches, as one call or a job.</summary>
    public BulkTerminationsClient BulkTerminations { get; }

    /// <summary>Parley extension: rules that end conversations without a caller (maximum duration, campaign, business hours).</summary>
    public PoliciesClient Policies { get; }

    /// <summary>Parley extension: who was told of each termination.</summary>
    public ReceiptsClient Receipts { get; }

    /// <summary>Parley extension: the termination audit.</summary>
    public AuditClient Audit { get; }

    /// <summary>Parley extension: web messaging deployments (the platform has its own deployment API, not this one).</summary>
    public DeploymentsClient Deployments { get; }

    /// <summary>Parley extension: web messaging guest sessions (whom an agentless web messaging request can reach).</summary>
    public GuestSessionsClient GuestSessions { get; }

    /// <summary>Open messaging integrations. Genesys Cloud calls (Parley adds a few fields).</summary>
    public IntegrationsClient Integrations { get; }

    /// <summary>Parley extension: open messaging webhook deliveries (dead letters, redeliver).</summary>
    public DeliveriesClient Deliveries { get; }

    /// <summary>The notifications stream. Genesys Cloud calls.</summary>
    public NotificationsClient Notifications { get; }

    /// <summary>
    /// Ends a message conversation for good and proves it, by the recipe that works on Genesys Cloud too: read it; if
    /// already ended, say so; disconnect the customer participant; verify the conversation and the analytics show the
    /// end; if not, tear down with <c>POST /api/v2/conversations/{id}/disconnect</c> and verify again. Never throws for
    /// an outcome (not found, already ended, failed are results); throws <see cref="ParleyApiException"/> for 401/403
    /// (the caller's credentials or permissions, not the conversation, are the problem) and when the server cannot be reached.
    /// </summary>
    /// <param name="reason">Recorded in Parley's termination audit (ignored by Genesys Cloud); up to 500 characters.</param>
    public Task<TerminationResult> TerminateAsync(string conversationId, string? reason = null, CancellationToken ct = default) =>
        new TerminationRecipe(_api, Conversations).RunAsync(conversationId, reason, ct);

    public void Dispose()
    {
        if (_ownsHttp) _http.Dispose();
    }
}
