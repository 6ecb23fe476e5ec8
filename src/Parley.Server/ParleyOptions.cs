namespace Parley.Server;

/// <summary>Server settings. Environment: PARLEY_DATA_DIR, PARLEY_DEMO_DEPLOYMENT_ID, PARLEY_DEMO_CLIENT_ID, PARLEY_DEMO_CLIENT_SECRET.</summary>
public sealed record ParleyOptions
{
    public const string DefaultDeploymentId = "d1e2a3b4-0000-4000-8000-000000000001";
    public const string DefaultClientId = "parley-demo-client";
    public const string DefaultClientSecret = "parley-demo-secret";

    /// <summary>Where the SQLite file lives; like Azurite, a folder in the working directory by default.</summary>
    public string DataDir { get; init; } = Path.Combine(Environment.CurrentDirectory, "parley-data");
    public string DemoDeploymentId { get; init; } = DefaultDeploymentId;
    public string DemoClientId { get; init; } = DefaultClientId;
    public string DemoClientSecret { get; init; } = DefaultClientSecret;

    /// <summary>Largest Guest API frame (bytes, across fragments); a larger one is discarded and answered with 4011.</summary>
    public int MaxFrameBytes { get; init; } = 64 * 1024;
    /// <summary>Longest guest text (characters); longer gets 4011 "message too long".</summary>
    public int MaxGuestTextLength { get; init; } = 4096;
    /// <summary>Longest bot/agent text (characters), the platform's AdditionalMessage limit.</summary>
    public int MaxPlatformTextLength { get; init; } = 2000;
    /// <summary>Cap on channel.metadata.customAttributes (bytes of JSON), as SessionResponse.maxCustomDataBytes says.</summary>
    public int MaxCustomDataBytes { get; init; } = 2048;
    public long SessionDurationSeconds { get; init; } = 259200;
    /// <summary>How long a termination waits for a guest socket to take the Disconnect frame before giving up on it.</summary>
    public TimeSpan NotifyTimeout { get; init; } = TimeSpan.FromSeconds(2);
    /// <summary>How long one frame may take to reach a guest, and a closed guest has to answer the close.</summary>
    public TimeSpan GuestSendTimeout { get; init; } = TimeSpan.FromSeconds(5);
    /// <summary>Frames queued for one guest socket before it is dropped as too slow.</summary>
    public int MaxQueuedFrames { get; init; } = 256;

    /// <summary>How long a webhook receiver has to answer (the real platform's 10 s, spec §7.3).</summary>
    public TimeSpan WebhookTimeout { get; init; } = TimeSpan.FromSeconds(10);
    /// <summary>Attempts before a retryable delivery is dead-lettered.</summary>
    public int WebhookMaxAttempts { get; init; } = 8;
    /// <summary>First retry delay; doubles per attempt (with jitter) up to <see cref="WebhookRetryCap"/>.</summary>
    public TimeSpan WebhookRetryBase { get; init; } = TimeSpan.FromSeconds(1);
    public TimeSpan WebhookRetryCap { get; init; } = TimeSpan.FromMinutes(5);
    /// <summary>How often live conversations are checked against their deployment's inactivity timeout.</summary>
    public TimeSpan InactivitySweep { get; init; } = TimeSpan.FromSeconds(1);
    /// <summary>Longest inbound Open Messaging text (characters).</summary>
    public int MaxOpenTextLength { get; init; } = 4096;

    // ---- Connection limits and the open-file budget (issue 10, items 1 and 1b; docs/connection-limits.md) ----

    /// <summary>
    /// The process's open-file limit (RLIMIT_NOFILE, soft), read from /proc/self/limits. Every connection, upgraded
    /// socket, store file and outbound webhook connection draws on it; at the limit accept() fails with EMFILE.
    /// </summary>
    public static readonly int OpenFileLimit = ReadOpenFileLimit();

    /// <summary>Descriptors kept free beside client connections: the runtime (~128), the store's files (~128), outbound webhook connections (256).</summary>
    public const int FileReserve = 512;

    /// <summary>
    /// Most client connections this process holds at once, plain HTTP and upgraded WebSockets together (Parley:Limits:MaxConnections).
    /// By default the open-file limit less <see cref="FileReserve"/>, so accept() never meets a full file table; past it a new
    /// connection is closed at once.
    /// </summary>
    public int MaxConnections { get; init; } = Math.Max(64, OpenFileLimit - FileReserve);

    /// <summary>
    /// Most guest WebSockets this process holds; past it a new one is refused with 503 before the upgrade
    /// (Parley:Limits:MaxGuestSockets, or PARLEY_MAX_GUEST_SOCKETS). By default <see cref="MaxConnections"/> less a tenth
    /// (at least 64, at most 500) kept for the Platform API, OAuth, notification channels and upgrades in progress.
    /// </summary>
    public int MaxGuestSockets { get; init; } = DefaultMaxGuestSockets(Math.Max(64, OpenFileLimit - FileReserve));

    /// <summary>Notification channel WebSockets, beside the guest sockets.</summary>
    public const int NotificationSockets = 100;

    /// <summary>
    /// Concurrent connections from one client address (an IPv6 client: its /64), plain and upgraded together; past it a new
    /// connection is closed at once (Parley:Limits:MaxConnectionsPerAddress). Room for an office of a thousand open chats
    /// behind one NAT address; one machine cannot fill the server.
    /// </summary>
    public int MaxConnectionsPerAddress { get; init; } = 1000;

    /// <summary>New guest sessions one client address may create per minute, as a token bucket of that size (Parley:Limits:NewSessionsPerAddressPerMinute).</summary>
    public int NewSessionsPerAddressPerMinute { get; init; } = 300;

    /// <summary>New guest sessions one deployment may gain per minute, from all addresses (Parley:Limits:NewSessionsPerDeploymentPerMinute).</summary>
    public int NewSessionsPerDeploymentPerMinute { get; init; } = 6000;

    /// <summary>How long an idle kept-alive HTTP connection (or a new one that sends nothing) is held (Parley:Limits:KeepAliveTimeoutSeconds).</summary>
    public TimeSpan KeepAliveTimeout { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>How long a client has to send a request's headers (Parley:Limits:RequestHeadersTimeoutSeconds).</summary>
    public TimeSpan RequestHeadersTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>How long an upgraded guest socket may stay without configureSession before it is closed with 1008 (Parley:Limits:ConfigureSessionTimeoutSeconds).</summary>
    public TimeSpan ConfigureSessionTimeout { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>WebSocket ping interval (Parley:Limits:WebSocketPingIntervalSeconds).</summary>
    public TimeSpan WebSocketPingInterval { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>How long a ping may go unanswered before the socket is aborted (Parley:Limits:WebSocketPongTimeoutSeconds).</summary>
    public TimeSpan WebSocketPongTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>How long a refused request's connection (503, 429) may stay open after its answer, if the client does not close it.</summary>
    public TimeSpan RefusedConnectionTimeout { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// The connection limit may be lowered, never raised past the open-file budget: at zero free descriptors the runtime
    /// cannot start a thread (pipe2 fails with EMFILE) and fails fast with "Out of memory.". Raise the file limit instead.
    /// </summary>
    public ParleyOptions WithinFileBudget()
    {
        var budget = Math.Max(64, OpenFileLimit - FileReserve);
        return MaxConnections <= budget ? this : this with { MaxConnections = budget };
    }

    static int DefaultMaxGuestSockets(int maxConnections) => Math.Max(16, maxConnections - Math.Clamp(maxConnections / 10, 64, 500));

    static int ReadOpenFileLimit()
    {
        try
        {
            var line = File.ReadLines("/proc/self/limits").FirstOrDefault(l => l.StartsWith("Max open files", StringComparison.Ordinal));
            if (line?.Split(' ', StringSplitOptions.RemoveEmptyEntries)[3] is { } soft && long.TryParse(soft, out var limit))
                return (int)Math.Clamp(limit, 256, 1_000_000);
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return 100_000;   // no /proc (not Linux), or unlimited
    }

    // ---- end of connection limits ----

    // ---------------------------------------------------------------- deployment: body limits, TLS, proxies, public address
    /// <summary>
    /// Largest request body on any HTTP endpoint (bytes), enforced while reading: a larger one gets 413 before it is
    /// buffered. Kestrel's <c>MaxRequestBodySize</c> is set to it too. <c>Parley:Limits:MaxRequestBodyBytes</c>.
    /// </summary>
    public long MaxRequestBodyBytes { get; init; } = 256 * 1024;
    /// <summary>
    /// Reverse proxies whose X-Forwarded-For/-Proto/-Host are believed (IP addresses and CIDR networks,
    /// <c>Parley:Proxy:TrustedProxies</c>). Empty by default: forwarded headers are then ignored.
    /// </summary>
    public TrustedProxies TrustedProxies { get; init; } = TrustedProxies.None;
    /// <summary>
    /// The address guests and clients reach Parley at (<c>Parley:PublicUrl</c>, e.g. https://chat.example.com): config.json's
    /// endpoints and a notification channel's connectUri are built from it instead of the request's Host. Null: from the request.
    /// </summary>
    public Uri? PublicUrl { get; init; }

    public string DatabasePath => Path.Combine(DataDir, "parley.db");

    /// <summary>A setting given as a list (<c>Key:0</c>, <c>Key:1</c> …) or as one comma, semicolon or space separated value.</summary>
    static IEnumerable<string> List(IConfiguration config, string key)
    {
        var section = config.GetSection(key);
        var items = section.Value is { } one ? [one] : section.GetChildren().Select(c => c.Value ?? "");
        return items.SelectMany(v => v.Split([',', ';', ' '], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
    }

    static Uri ParsePublicUrl(string url) =>
        Uri.TryCreate(url.TrimEnd('/'), UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https" && uri.UserInfo.Length == 0
            && uri.Query.Length == 0 && uri.Fragment.Length == 0
            ? uri
            : throw new StartupRefused($"Parley:PublicUrl must be an absolute http:// or https:// URL such as https://chat.example.com, not '{Clip(url)}'.");

    internal static string Clip(string value, int max = 100) => value.Length <= max ? value : value[..max] + "…";

    public static ParleyOptions FromEnvironment(IConfiguration config)
    {
        var o = new ParleyOptions();
        string? Get(string key) => config[key] is { Length: > 0 } v ? v : null;
        var basic = o with
        {
            DataDir = Get("PARLEY_DATA_DIR") ?? o.DataDir,
            DemoDeploymentId = Get("PARLEY_DEMO_DEPLOYMENT_ID") ?? o.DemoDeploymentId,
            DemoClientId = Get("PARLEY_DEMO_CLIENT_ID") ?? o.DemoClientId,
            DemoClientSecret = Get("PARLEY_DEMO_CLIENT_SECRET") ?? Get("Parley:Demo:ClientSecret") ?? o.DemoClientSecret,
            // deployment: body limits, TLS, proxies, public address
            MaxRequestBodyBytes = Get("Parley:Limits:MaxRequestBodyBytes") is { } bodyLimit
                ? long.TryParse(bodyLimit, out var bytes) && bytes > 0 ? bytes
                    : throw new StartupRefused($"Parley:Limits:MaxRequestBodyBytes must be a positive number of bytes, not '{Clip(bodyLimit)}'.")
                : o.MaxRequestBodyBytes,
            TrustedProxies = TrustedProxies.Parse(List(config, "Parley:Proxy:TrustedProxies")),
            PublicUrl = (Get("Parley:PublicUrl") ?? Get("PARLEY_PUBLIC_URL")) is { } url ? ParsePublicUrl(url) : o.PublicUrl,
        };
        return basic.WithLimits(config);
    }

    /// <summary>The Parley:Limits section (environment form Parley__Limits__Key): connections, sessions, timeouts.</summary>
    ParleyOptions WithLimits(IConfiguration config)
    {
        int Int(string key, int fallback) => int.TryParse(config[$"Parley:Limits:{key}"], out var v) && v > 0 ? v : fallback;
        TimeSpan Seconds(string key, TimeSpan fallback) =>
            double.TryParse(config[$"Parley:Limits:{key}"], System.Globalization.CultureInfo.InvariantCulture, out var v) && v > 0
                ? TimeSpan.FromSeconds(v) : fallback;
        var maxConnections = Int("MaxConnections", MaxConnections);
        var legacyGuests = int.TryParse(config["PARLEY_MAX_GUEST_SOCKETS"], out var g) && g > 0 ? g : 0;
        return this with
        {
            MaxConnections = maxConnections,
            MaxGuestSockets = Int("MaxGuestSockets", legacyGuests > 0 ? legacyGuests
                : maxConnections == MaxConnections ? MaxGuestSockets : DefaultMaxGuestSockets(maxConnections)),
            MaxConnectionsPerAddress = Int("MaxConnectionsPerAddress", MaxConnectionsPerAddress),
            NewSessionsPerAddressPerMinute = Int("NewSessionsPerAddressPerMinute", NewSessionsPerAddressPerMinute),
            NewSessionsPerDeploymentPerMinute = Int("NewSessionsPerDeploymentPerMinute", NewSessionsPerDeploymentPerMinute),
            KeepAliveTimeout = Seconds("KeepAliveTimeoutSeconds", KeepAliveTimeout),
            RequestHeadersTimeout = Seconds("RequestHeadersTimeoutSeconds", RequestHeadersTimeout),
            ConfigureSessionTimeout = Seconds("ConfigureSessionTimeoutSeconds", ConfigureSessionTimeout),
            WebSocketPingInterval = Seconds("WebSocketPingIntervalSeconds", WebSocketPingInterval),
            WebSocketPongTimeout = Seconds("WebSocketPongTimeoutSeconds", WebSocketPongTimeout),
        };
    }
}
