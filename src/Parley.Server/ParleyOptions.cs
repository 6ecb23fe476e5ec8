namespace Parley.Server;

/// <summary>Server settings, read once at start by <see cref="FromEnvironment"/>; docs/configuration.md lists every key, its default and validation.</summary>
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
    /// <summary>How long a termination waits for a guest socket to take the Disconnect frame before giving up on it.</summary>
    public TimeSpan NotifyTimeout { get; init; } = TimeSpan.FromSeconds(2);
    /// <summary>How long one frame may take to reach a guest, and a closed guest has to answer the close.</summary>
    public TimeSpan GuestSendTimeout { get; init; } = TimeSpan.FromSeconds(5);
    /// <summary>Frames queued for one guest socket before it is dropped as too slow.</summary>
    public int MaxQueuedFrames { get; init; } = 256;

    /// <summary>How long a webhook receiver has to answer (the real platform's 10 s, docs/compatibility.md §Open Messaging webhooks).</summary>
    public TimeSpan WebhookTimeout { get; init; } = TimeSpan.FromSeconds(10);
    /// <summary>Attempts before a retryable delivery is dead-lettered.</summary>
    public int WebhookMaxAttempts { get; init; } = 8;
    /// <summary>First retry delay; doubles per attempt (with jitter) up to <see cref="WebhookRetryCap"/>.</summary>
    public TimeSpan WebhookRetryBase { get; init; } = TimeSpan.FromSeconds(1);
    public TimeSpan WebhookRetryCap { get; init; } = TimeSpan.FromMinutes(5);
    /// <summary>Longest inbound Open Messaging text (characters).</summary>
    public int MaxOpenTextLength { get; init; } = 4096;

    // ---- Guest transport (docs/guest-transport.md) ----
    /// <summary>
    /// Parley:Guest:Transport: <c>connection</c> (default) takes a guest WebSocket upgrade below Kestrel's HTTP layer, so an
    /// open guest socket keeps no HTTP request alive; <c>http</c> upgrades it through ASP.NET as before.
    /// </summary>
    public bool GuestTransportBelowHttp { get; init; } = true;

    // ---- Logs (docs/logging.md) ----
    /// <summary>Parley:AccessLog:Enabled: one Parley.Access line per request. Unset: on in the Development environment only.</summary>
    public bool? AccessLogEnabled { get; init; }

    // ---- Webhooks: outbound network guard, delivery signatures, secret rotation (docs/webhooks.md) ----
    /// <summary>
    /// Parley:Webhooks:AllowPrivateNetworks. Off by default: a webhook whose host is (or resolves, when connecting, to)
    /// a loopback, private, link-local, CGNAT, multicast, unspecified or cloud-metadata address is refused. On for local
    /// development and tests, where the receiver runs on loopback.
    /// </summary>
    public bool WebhooksAllowPrivateNetworks { get; init; }
    /// <summary>
    /// Parley:Webhooks:SignatureToleranceSeconds. The replay window of <c>Parley-Webhook-Signature</c>: how far its
    /// timestamp may be from the verifier's clock (Stripe's default, 300 s). Inbound posts are held to it too.
    /// </summary>
    public TimeSpan WebhookSignatureTolerance { get; init; } = TimeSpan.FromMinutes(5);
    /// <summary>
    /// Parley:Webhooks:SecretRotationOverlapSeconds. After an integration's secret is replaced, how long the old one
    /// still verifies inbound posts and still signs deliveries beside the new one (a request may choose its own).
    /// </summary>
    public TimeSpan WebhookSecretRotationOverlap { get; init; } = TimeSpan.FromHours(24);
    /// <summary>The longest overlap a rotation may ask for.</summary>
    public static readonly TimeSpan MaxSecretRotationOverlap = TimeSpan.FromDays(7);

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

    // ---- OAuth: the token endpoint's brute-force throttle and the signing-key ring (docs/oauth.md) ----
    /// <summary>Failed authentications one address may make for one client id per <see cref="OAuthFailureWindow"/> (0: no limit). Parley:OAuth:MaxFailuresPerClientAddress.</summary>
    public int OAuthMaxFailuresPerClientAddress { get; init; } = 5;
    /// <summary>Failed authentications one address may make, whatever the client id. Parley:OAuth:MaxFailuresPerAddress.</summary>
    public int OAuthMaxFailuresPerAddress { get; init; } = 20;
    /// <summary>Failed authentications for one client id from addresses it has never authenticated from. Parley:OAuth:MaxFailuresPerClient.</summary>
    public int OAuthMaxFailuresPerClient { get; init; } = 100;
    /// <summary>The period over which each failure allowance refills completely. Parley:OAuth:FailureWindowSeconds.</summary>
    public TimeSpan OAuthFailureWindow { get; init; } = TimeSpan.FromMinutes(1);
    /// <summary>How often the token-signing keys are reloaded from the store (rotations made by another node). Parley:OAuth:SigningKeyRefreshSeconds.</summary>
    public TimeSpan SigningKeyRefresh { get; init; } = TimeSpan.FromSeconds(10);

    // ---------------------------------------------------------------- guest limits (issue 10 item 6; docs/guest-limits.md)

    /// <summary>
    /// A guest session's inactivity lifetime, advertised as SessionResponse.durationSeconds (docs/compatibility.md §Session response) and enforced: a
    /// session with no message for this long is expired (configureSession answers 4006). Parley:Limits:GuestSessionDurationSeconds.
    /// </summary>
    public long SessionDurationSeconds { get; init; } = 259200;
    /// <summary>
    /// onMessage requests per second from one client address, across all its sessions and tokens (0: no limit), so
    /// switching tokens does not multiply the per-session rate. Generous: an office behind one NAT address has many
    /// guests. The burst is twice this. Parley:Limits:GuestMessagesPerAddressPerSecond.
    /// </summary>
    public int GuestMessagesPerAddressPerSecond { get; init; } = 50;
    /// <summary>
    /// When set, the demo deployment's guestMessagesPerSecond is set to this at every start (by default it has the
    /// platform's 2, like any deployment). Load tests raise it here. Parley:Demo:GuestMessagesPerSecond.
    /// </summary>
    public int? DemoGuestMessagesPerSecond { get; init; }

    public string DatabasePath => Path.Combine(DataDir, "parley.db");

    // ---- Composition root: which adapter serves each port (issue 11 step 0; docs/configuration.md) ----
    /// <summary>Parley:Storage:Provider. The durable store; <c>Sqlite</c> (the default) is the one this version has.</summary>
    public StorageProvider StorageProvider { get; init; } = StorageProvider.Sqlite;
    /// <summary>Parley:Backplane:Provider. How committed events reach sockets: <c>Local</c> (in-process, one node; the default) or <c>Redis</c> (several nodes).</summary>
    public BackplaneProvider BackplaneProvider { get; init; } = BackplaneProvider.Local;
    /// <summary>
    /// Parley:Node:Id. This node's name among several (outbox lease owner, backplane membership, logs). Unset: the machine
    /// name and the process id, unique per running process; set it per node so a restarted node reclaims its own leases.
    /// </summary>
    public string NodeId { get; init; } = $"{Environment.MachineName}-{Environment.ProcessId}";
    /// <summary>Whether Parley:Node:Id was set (else <see cref="NodeId"/> is the per-process default).</summary>
    public bool NodeIdConfigured { get; init; }
    /// <summary>
    /// Who owns the SQLite outbox's leases. One SQLite file serves one process, so unset it is one stable name: a process
    /// restarted after a crash takes back the deliveries its predecessor had in flight at once, not after their lease.
    /// </summary>
    public string SqliteLeaseOwner => NodeIdConfigured ? NodeId : Storage.Sqlite.SqliteStore.DefaultNodeId;

    // ---- Faults across nodes: how long a node's claim on a webhook delivery lasts (issue 11 item 4; docs/several-nodes.md) ----
    /// <summary>
    /// Parley:Webhooks:TimeoutSeconds. How long a webhook receiver has to answer; sets <see cref="WebhookTimeout"/>
    /// (the real platform's 10 s by default).
    /// </summary>
    public const string WebhookTimeoutKey = "Parley:Webhooks:TimeoutSeconds";
    /// <summary>
    /// Parley:Webhooks:LeaseSeconds. How long a node's lease on a webhook delivery lasts: a node that dies mid-delivery
    /// leaves the row to another node once it runs out. Null: twice the timeout plus 10 s (30 s by default). It must be
    /// longer than the timeout, or a live node's slow delivery would be taken over and sent twice.
    /// </summary>
    public TimeSpan? WebhookLease { get; init; }
    /// <summary>The lease the relay takes: <see cref="WebhookLease"/>, or twice the timeout plus 10 s.</summary>
    public TimeSpan WebhookLeaseOrDefault => WebhookLease ?? WebhookTimeout * 2 + TimeSpan.FromSeconds(10);

    ParleyOptions WithWebhookLease(IConfiguration config)
    {
        var timeout = Seconds(config[WebhookTimeoutKey] is { Length: > 0 } t ? t : null, WebhookTimeoutKey, min: 1, max: 300) ?? WebhookTimeout;
        var lease = Seconds(config["Parley:Webhooks:LeaseSeconds"] is { Length: > 0 } l ? l : null, "Parley:Webhooks:LeaseSeconds", min: 1, max: 3600);
        if (lease is { } given && given <= timeout)
            throw new StartupRefused($"Parley:Webhooks:LeaseSeconds ({given.TotalSeconds:0}) must be longer than the webhook timeout " +
                $"({timeout.TotalSeconds:0} s, {WebhookTimeoutKey}), or a slow delivery would be taken over by another node and sent twice.");
        return this with { WebhookTimeout = timeout, WebhookLease = lease ?? WebhookLease };
    }
    // ---- end of faults across nodes ----

    // ---- Health, readiness and draining (issue 11 items 4/5, issue 12 item 3; docs/health.md) ----
    /// <summary>
    /// Parley:Health:DrainDelaySeconds. When shutdown begins, /readyz answers 503 at once; the node then keeps serving for
    /// this long (so a load balancer polling /readyz stops sending it new work) before its guest sockets are told 1001
    /// and it stops listening. 0 (the default): no wait, as a single node wants.
    /// </summary>
    public TimeSpan DrainDelay { get; init; } = TimeSpan.Zero;
    public static readonly TimeSpan MaxDrainDelay = TimeSpan.FromMinutes(5);
    // ---- end of health ----

    // ---- PostgreSQL store (issue 11 item 1; docs/storage.md "PostgreSQL") ----
    /// <summary>
    /// ConnectionStrings:Postgres (environment ConnectionStrings__Postgres): the Npgsql connection string of the
    /// database every node shares, read when <see cref="StorageProvider"/> is Postgres. Never printed (its password).
    /// </summary>
    public string? PostgresConnectionString { get; init; }
    /// <summary>
    /// Parley:Storage:ConnectRetrySeconds. How long a start keeps trying to reach a PostgreSQL that does not answer
    /// (connection refused, starting up) before it refuses to start; a wrong password or database refuses at once.
    /// </summary>
    public TimeSpan StorageConnectRetry { get; init; } = TimeSpan.FromSeconds(10);

    // ---- Notifications: channel queues (issue 13 item 3; docs/notifications.md "Slow channels") ----
    /// <summary>
    /// Parley:Notifications:ChannelQueueFrames. Frames queued for one notification channel's socket; a channel whose queue
    /// is full when an event comes is told and dropped (its subscriptions stay, a reconnect resumes), so a reader that
    /// cannot keep up never grows the server's memory nor delays a commit.
    /// </summary>
    public int NotificationChannelQueueFrames { get; init; } = 1000;
    /// <summary>Parley:Notifications:SendTimeoutSeconds. How long one frame may take to reach a channel's socket before the socket is cut off.</summary>
    public TimeSpan NotificationSendTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>The Parley:Notifications section (environment form Parley__Notifications__Key).</summary>
    ParleyOptions WithNotifications(IConfiguration config) => this with
    {
        NotificationChannelQueueFrames = config["Parley:Notifications:ChannelQueueFrames"] is not { Length: > 0 } frames ? NotificationChannelQueueFrames
            : int.TryParse(frames, System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out var n) && n is >= 1 and <= 1_000_000 ? n
            : throw new StartupRefused($"Parley:Notifications:ChannelQueueFrames must be a whole number from 1 to 1000000, not '{Clip(frames)}'."),
        NotificationSendTimeout = Seconds(config["Parley:Notifications:SendTimeoutSeconds"] is { Length: > 0 } send ? send : null,
            "Parley:Notifications:SendTimeoutSeconds", min: 1, max: 600) ?? NotificationSendTimeout,
    };
    // ---- end of notifications ----

    // ---- Bulk terminations and the campaign tag (issue 14 item 2; docs/ending-sessions.md "Bulk terminations") ----
    /// <summary>
    /// Parley:Terminations:AnswerAtOnceMax. A bulk termination that matches at most this many live conversations runs
    /// in the request and answers <c>200</c> with the final counts; a larger one answers <c>202</c> and runs as a job.
    /// </summary>
    public int TerminationAnswerAtOnceMax { get; init; } = 100;
    /// <summary>
    /// Parley:Terminations:Parallelism. Ends a bulk termination keeps in flight at once: enough for the store's group
    /// commit to write many ends per transaction, few enough that other traffic still gets its turn.
    /// </summary>
    public int TerminationParallelism { get; init; } = 256;
    /// <summary>Longest campaign tag an agentless request may carry (characters).</summary>
    public const int MaxCampaignLength = 100;
    /// <summary>Longest reason a bulk termination keeps (characters; longer is refused), as the single lever's 500.</summary>
    public const int MaxTerminationReasonLength = 500;

    ParleyOptions WithTerminations(IConfiguration config)
    {
        int Int(string key, int fallback, int max) => config[$"Parley:Terminations:{key}"] is not { Length: > 0 } text ? fallback
            : int.TryParse(text, System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out var v) && v >= 1 && v <= max ? v
            : throw new StartupRefused($"Parley:Terminations:{key} must be a whole number from 1 to {max}, not '{Clip(text)}'.");
        return this with
        {
            TerminationAnswerAtOnceMax = Int("AnswerAtOnceMax", TerminationAnswerAtOnceMax, 100_000),
            TerminationParallelism = Int("Parallelism", TerminationParallelism, 4096),
        };
    }
    // ---- end of bulk terminations ----

    // ---- Request path: bulk ends in chunks (issue 15 item 5; docs/ending-sessions.md "Bulk terminations") ----
    /// <summary>
    /// Parley:Terminations:Chunk. Conversations a bulk termination (or a policy) ends together: decided each under its own
    /// lock and version guard, committed by the store as one write, their Disconnect frames sent in one pass. 1 ends each
    /// as its own write (the path before issue 15), <see cref="TerminationParallelism"/> at a time.
    /// </summary>
    /// <remarks>512 (256 until round two's eighth run): with the chunks in flight apart (no lock stripe shared), fewer, larger
    /// chunks ended 10,000 sooner (BENCHMARKS.md).</remarks>
    public int TerminationChunk { get; init; } = 512;

    ParleyOptions WithTerminationChunk(IConfiguration config) => config["Parley:Terminations:Chunk"] is not { Length: > 0 } text ? this
        : int.TryParse(text, System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out var v) && v >= 1 && v <= 1000
            ? this with { TerminationChunk = v }
            : throw new StartupRefused($"Parley:Terminations:Chunk must be a whole number from 1 to 1000, not '{Clip(text)}'.");
    // ---- end of request path ----

    // ---- Termination receipts (issue 14 item 3; docs/ending-sessions.md "Receipts") ----
    /// <summary>
    /// Parley:Receipts:QueueRows. Socket receipt rows waiting on this node to be recorded (a background recorder writes
    /// them in batches, one transaction for many rows, off the end's own path). A row that finds the queue full is not
    /// recorded: its receipt stays pending, it never claims a delivery.
    /// </summary>
    public int ReceiptQueueRows { get; init; } = 100_000;

    /// <summary>The Parley:Receipts section (environment form Parley__Receipts__Key).</summary>
    ParleyOptions WithReceipts(IConfiguration config) => this with
    {
        ReceiptQueueRows = config["Parley:Receipts:QueueRows"] is not { Length: > 0 } rows ? ReceiptQueueRows
            : int.TryParse(rows, System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out var n) && n is >= 1 and <= 10_000_000 ? n
            : throw new StartupRefused($"Parley:Receipts:QueueRows must be a whole number from 1 to 10000000, not '{Clip(rows)}'."),
    };
    // ---- end of termination receipts ----

    // ---- Redis backplane (issue 11 item 2; docs/fanout.md "Redis backplane") ----
    /// <summary>
    /// ConnectionStrings:Redis (environment ConnectionStrings__Redis). A StackExchange.Redis configuration string
    /// (<c>host:port,password=…</c>); read when Parley:Backplane:Provider is Redis, required then. It holds a secret:
    /// never printed.
    /// </summary>
    public string? RedisConnectionString { get; init; }
    /// <summary>
    /// Parley:Backplane:Prefix. What every Redis channel and key of the backplane starts with; nodes with the same prefix
    /// form one cluster, so two clusters (or test runs) can share one Redis. 1–64 letters, digits, ':', '.', '-', '_'.
    /// </summary>
    public string RedisPrefix { get; init; } = "parley:";

    // ---- Secrets at rest: the Data Protection key ring that encrypts the store's secrets (docs/production.md) ----
    /// <summary>
    /// Parley:DataProtection:KeysPath. The folder of the key ring that encrypts webhook secrets and token-signing keys in
    /// the database. Null: <c>data-protection-keys</c> inside the data folder. Put it elsewhere (another disk, another
    /// backup) so that a copy of the database alone reveals no secret.
    /// </summary>
    public string? DataProtectionKeysPath { get; init; }
    /// <summary>Parley:DataProtection:CertificatePath. A PKCS#12 (.pfx) certificate that encrypts the key ring's keys; none by default.</summary>
    public string? DataProtectionCertificatePath { get; init; }
    /// <summary>Parley:DataProtection:CertificatePassword. The .pfx file's password, if it has one.</summary>
    public string? DataProtectionCertificatePassword { get; init; }
    public string DataProtectionKeysFolder => Path.GetFullPath(DataProtectionKeysPath ?? Path.Combine(DataDir, "data-protection-keys"));

    // ---- Command line: the data folder, its lock, in-memory mode (issue 12 item 4; docs/configuration.md) ----
    /// <summary>
    /// Parley:Storage:InMemory (command line <c>--in-memory</c>). The SQLite store and the Data Protection key ring live in
    /// this process's memory: nothing is written to disk, no data folder is created or locked, everything is lost at exit.
    /// For CI runs, as Azurite's <c>--inMemoryPersistence</c>. Not with the PostgreSQL store.
    /// </summary>
    public bool InMemory { get; init; }
    /// <summary>
    /// Whether the start takes the data folder's lock (<see cref="DataFolderLock"/>). No configuration key: always on for a
    /// process; only tests that run several in-process nodes on one SQLite file on purpose turn it off.
    /// </summary>
    public bool LockDataFolder { get; init; } = true;

    /// <summary>Parley:DataDir (command line <c>--data</c>) or the older PARLEY_DATA_DIR; the former wins.</summary>
    ParleyOptions WithDataFolder(IConfiguration config)
    {
        var dataDir = config["Parley:DataDir"] is { Length: > 0 } dir ? dir : config["PARLEY_DATA_DIR"] is { Length: > 0 } old ? old : null;
        var inMemory = config["Parley:Storage:InMemory"] is { Length: > 0 } memory
            ? bool.TryParse(memory, out var on) ? on
                : throw new StartupRefused($"Parley:Storage:InMemory must be true or false, not '{Clip(memory)}'.")
            : InMemory;
        if (inMemory && StorageProvider != StorageProvider.Sqlite)
            throw new StartupRefused($"In-memory mode (--in-memory, Parley:Storage:InMemory) keeps the embedded SQLite store in memory; " +
                $"it does not apply to Parley:Storage:Provider={StorageProvider}. Leave one of them out.");
        return this with { DataDir = dataDir is null ? DataDir : Path.GetFullPath(dataDir), InMemory = inMemory };
    }
    // ---- end of command line ----

    // ---- Storage durability levels (issue 15 item 2; docs/durability.md) ----
    /// <summary>
    /// Parley:Storage:Durability (<c>full</c>, <c>os</c>, <c>interval</c>) and Parley:Storage:FsyncIntervalMs (1–1000, default
    /// 10, read at <c>interval</c>). <c>full</c>, the default, acknowledges a commit once it is fsynced; the others sooner,
    /// at the cost docs/durability.md states. An in-memory store ignores it.
    /// </summary>
    public Core.Durability Durability { get; init; } = Core.Durability.Full;

    ParleyOptions WithDurability(IConfiguration config)
    {
        var level = config["Parley:Storage:Durability"] is { Length: > 0 } text
            ? text.Trim().ToLowerInvariant() switch
            {
                "full" => Core.DurabilityLevel.Full,
                "os" => Core.DurabilityLevel.Os,
                "interval" => Core.DurabilityLevel.Interval,
                _ => throw new StartupRefused($"Parley:Storage:Durability must be full, os or interval, not '{Clip(text)}'."),
            }
            : Durability.Level;
        var interval = config["Parley:Storage:FsyncIntervalMs"] is { Length: > 0 } ms
            ? int.TryParse(ms, out var n) && n is >= 1 and <= 1000 ? TimeSpan.FromMilliseconds(n)
                : throw new StartupRefused($"Parley:Storage:FsyncIntervalMs must be a whole number of milliseconds from 1 to 1000, not '{Clip(ms)}'.")
            : Durability.FsyncInterval;
        return this with { Durability = new Core.Durability(level, interval) };
    }
    // ---- end of storage durability levels ----

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

    /// <summary>
    /// The settings from configuration (environment, appsettings, command line). A malformed value, an unsupported
    /// provider or an unknown key under <c>Parley:</c> refuses the start in one line (<see cref="StartupRefused"/>).
    /// </summary>
    public static ParleyOptions FromEnvironment(IConfiguration config)
    {
        // Every key a start may read: those read from an empty configuration (each default taken, so every fallback
        // is consulted) and those read from this one (a key read only when another is set).
        var known = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        Read(new KeysRead(new ConfigurationBuilder().Build(), known));
        var options = Read(new KeysRead(config, known));
        if (UnknownSettings.Find(config, known) is { } unknown) throw new StartupRefused(unknown);
        return options;
    }

    /// <summary>Every key <see cref="FromEnvironment"/> knows (docs/configuration.md documents each).</summary>
    public static IReadOnlyCollection<string> KnownKeys()
    {
        var known = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        Read(new KeysRead(new ConfigurationBuilder().Build(), known));
        return known;
    }

    static ParleyOptions Read(IConfiguration config)
    {
        var o = new ParleyOptions();
        string? Get(string key) => config[key] is { Length: > 0 } v ? v : null;
        int? Int(string key) => Get(key) is not { } text ? null
            : int.TryParse(text, System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out var v) && v >= 0 ? v
            : throw new StartupRefused($"{key} must be a whole number, 0 or more, not '{Clip(text)}'.");
        // A limit set to something that is not a number in range refuses the start: a typo must not mean "no limit".
        long Number(string key, long min, long maxValue, long fallback) => Get(key) is not { } text ? fallback
            : long.TryParse(text, out var n) && n >= min && n <= maxValue ? n
            : throw new StartupRefused($"{key} must be a whole number from {min} to {maxValue}, not '{Clip(text)}'.");
        var basic = o with
        {
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
            // webhooks: network guard, signature window, secret rotation
            WebhooksAllowPrivateNetworks = Get("Parley:Webhooks:AllowPrivateNetworks") is { } allow
                ? bool.TryParse(allow, out var allowPrivate) ? allowPrivate
                    : throw new StartupRefused($"Parley:Webhooks:AllowPrivateNetworks must be true or false, not '{Clip(allow)}'.")
                : o.WebhooksAllowPrivateNetworks,
            WebhookSignatureTolerance = Seconds(Get("Parley:Webhooks:SignatureToleranceSeconds"), "Parley:Webhooks:SignatureToleranceSeconds",
                min: 1, max: 86400) ?? o.WebhookSignatureTolerance,
            WebhookSecretRotationOverlap = Seconds(Get("Parley:Webhooks:SecretRotationOverlapSeconds"), "Parley:Webhooks:SecretRotationOverlapSeconds",
                min: 0, max: (long)MaxSecretRotationOverlap.TotalSeconds) ?? o.WebhookSecretRotationOverlap,
            // secrets at rest: the Data Protection key ring
            DataProtectionKeysPath = Get("Parley:DataProtection:KeysPath") ?? o.DataProtectionKeysPath,
            DataProtectionCertificatePath = Get("Parley:DataProtection:CertificatePath") ?? o.DataProtectionCertificatePath,
            DataProtectionCertificatePassword = Get("Parley:DataProtection:CertificatePassword") ?? o.DataProtectionCertificatePassword,

            // OAuth (docs/oauth.md)
            OAuthMaxFailuresPerClientAddress = Int("Parley:OAuth:MaxFailuresPerClientAddress") ?? o.OAuthMaxFailuresPerClientAddress,
            OAuthMaxFailuresPerAddress = Int("Parley:OAuth:MaxFailuresPerAddress") ?? o.OAuthMaxFailuresPerAddress,
            OAuthMaxFailuresPerClient = Int("Parley:OAuth:MaxFailuresPerClient") ?? o.OAuthMaxFailuresPerClient,
            OAuthFailureWindow = Int("Parley:OAuth:FailureWindowSeconds") is > 0 and var window ? TimeSpan.FromSeconds(window) : o.OAuthFailureWindow,
            SigningKeyRefresh = Int("Parley:OAuth:SigningKeyRefreshSeconds") is > 0 and var refresh ? TimeSpan.FromSeconds(refresh) : o.SigningKeyRefresh,

            // guest limits
            SessionDurationSeconds = Number("Parley:Limits:GuestSessionDurationSeconds", 1, 10L * 365 * 86400, o.SessionDurationSeconds),
            GuestMessagesPerAddressPerSecond = (int)Number("Parley:Limits:GuestMessagesPerAddressPerSecond", 0, 1_000_000, o.GuestMessagesPerAddressPerSecond),
            DemoGuestMessagesPerSecond = Get("Parley:Demo:GuestMessagesPerSecond") is null ? o.DemoGuestMessagesPerSecond
                : (int)Number("Parley:Demo:GuestMessagesPerSecond", 1, Core.Deployment.MaxGuestMessagesPerSecond, 0),

            // composition root: the adapters
            StorageProvider = Adapters.Choose(Get("Parley:Storage:Provider"), "Parley:Storage:Provider", o.StorageProvider, Adapters.PlannedStorage),
            BackplaneProvider = Adapters.Choose(Get("Parley:Backplane:Provider"), "Parley:Backplane:Provider", o.BackplaneProvider, Adapters.PlannedBackplanes),
            NodeId = Get("Parley:Node:Id") is { } node ? NodeName(node) : o.NodeId,
            NodeIdConfigured = Get("Parley:Node:Id") is not null,

            // health: draining
            DrainDelay = Seconds(Get("Parley:Health:DrainDelaySeconds"), "Parley:Health:DrainDelaySeconds", min: 0,
                max: (long)MaxDrainDelay.TotalSeconds) ?? o.DrainDelay,

            // PostgreSQL store
            PostgresConnectionString = Get("ConnectionStrings:Postgres") ?? o.PostgresConnectionString,
            StorageConnectRetry = Seconds(Get("Parley:Storage:ConnectRetrySeconds"), "Parley:Storage:ConnectRetrySeconds", min: 0, max: 600)
                ?? o.StorageConnectRetry,

            // Redis backplane
            RedisConnectionString = Get("ConnectionStrings:Redis") ?? o.RedisConnectionString,
            RedisPrefix = Get("Parley:Backplane:Prefix") is { } prefix ? RedisPrefixName(prefix) : o.RedisPrefix,
        };
        if (basic.BackplaneProvider == BackplaneProvider.Redis && basic.RedisConnectionString is null) throw new StartupRefused(RedisConnectionMissing);
        return basic.WithLimits(config).WithWebhookLease(config).WithLogging(config).WithGuestTransport(config).WithMetrics(config).WithDataFolder(config).WithQueues(config).WithUsers(config).WithNotifications(config)
            .WithTerminations(config).WithTerminationChunk(config).WithReceipts(config).WithTerminationSweep(config)
            .WithDurability(config);
    }

    internal const string RedisConnectionMissing = "Parley:Backplane:Provider=Redis needs ConnectionStrings__Redis (ConnectionStrings:Redis), " +
        "a StackExchange.Redis configuration string such as 127.0.0.1:6379,password=…; it is not set.";

    static string RedisPrefixName(string value)
    {
        var name = value.Trim();
        if (name.Length is 0 or > 64 || !name.All(c => char.IsAsciiLetterOrDigit(c) || c is ':' or '.' or '-' or '_'))
            throw new StartupRefused($"Parley:Backplane:Prefix={Clip(name)} is not a prefix: use 1 to 64 letters, digits, ':', '.', '-' or '_'.");
        return name;
    }

    /// <summary>A node id: 1–64 letters, digits, '.', '-' or '_' (it goes into keys, channel names and log lines).</summary>
    static string NodeName(string value)
    {
        var name = value.Trim();
        if (name.Length is 0 or > 64 || !name.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or '_'))
            throw new StartupRefused($"Parley:Node:Id={Clip(name)} is not a node id: use 1 to 64 letters, digits, '.', '-' or '_'.");
        return name;
    }

    /// <summary>The Parley:Limits section (environment form Parley__Limits__Key): connections, sessions, timeouts.</summary>
    ParleyOptions WithLimits(IConfiguration config)
    {
        // A malformed value refuses the start, naming the key, as the other sections do.
        int Int(string key, int fallback) => config[$"Parley:Limits:{key}"] is not { Length: > 0 } text ? fallback
            : int.TryParse(text, System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out var v) && v > 0 ? v
            : throw new StartupRefused($"Parley:Limits:{key} must be a whole number above 0, not '{Clip(text)}'.");
        TimeSpan Duration(string key, TimeSpan fallback) =>
            Seconds(config[$"Parley:Limits:{key}"] is { Length: > 0 } text ? text : null, $"Parley:Limits:{key}", min: 1, max: 86400) ?? fallback;
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
            KeepAliveTimeout = Duration("KeepAliveTimeoutSeconds", KeepAliveTimeout),
            RequestHeadersTimeout = Duration("RequestHeadersTimeoutSeconds", RequestHeadersTimeout),
            ConfigureSessionTimeout = Duration("ConfigureSessionTimeoutSeconds", ConfigureSessionTimeout),
            WebSocketPingInterval = Duration("WebSocketPingIntervalSeconds", WebSocketPingInterval),
            WebSocketPongTimeout = Duration("WebSocketPongTimeoutSeconds", WebSocketPongTimeout),
        };
    }

    /// <summary>The Parley:Guest section (docs/guest-transport.md).</summary>
    ParleyOptions WithGuestTransport(IConfiguration config) => this with
    {
        GuestTransportBelowHttp = config["Parley:Guest:Transport"] is not { Length: > 0 } text ? GuestTransportBelowHttp
            : text.Equals("connection", StringComparison.OrdinalIgnoreCase) ? true
            : text.Equals("http", StringComparison.OrdinalIgnoreCase) ? false
            : throw new StartupRefused($"Parley:Guest:Transport must be connection or http, not '{Clip(text)}'."),
    };

    /// <summary>The Parley:AccessLog section (docs/logging.md); log levels and formats are the standard Logging section's.</summary>
    ParleyOptions WithLogging(IConfiguration config) => this with
    {
        AccessLogEnabled = config["Parley:AccessLog:Enabled"] is not { Length: > 0 } text ? AccessLogEnabled
            : bool.TryParse(text, out var on) ? on
            : throw new StartupRefused($"Parley:AccessLog:Enabled must be true or false, not '{Clip(text)}'."),
    };

    static TimeSpan? Seconds(string? value, string key, long min, long max)
    {
        if (value is null) return null;
        return long.TryParse(value, out var seconds) && seconds >= min && seconds <= max
            ? TimeSpan.FromSeconds(seconds)
            : throw new StartupRefused($"{key} must be a whole number of seconds from {min} to {max}, not '{Clip(value)}'.");
    }

    // ---- Metrics: the Prometheus scrape endpoint (docs/observability.md) ----
    /// <summary>Parley:Metrics:Enabled. <c>GET /metrics</c> in Prometheus text, unauthenticated (counts only); on by default.</summary>
    public bool MetricsEnabled { get; init; } = true;
    /// <summary>Parley:Metrics:Path. Where the scrape endpoint answers; not under <c>/api/</c>, <c>/oauth/</c> or <c>/v1</c>.</summary>
    public string MetricsPath { get; init; } = "/metrics";

    ParleyOptions WithMetrics(IConfiguration config)
    {
        var enabled = config["Parley:Metrics:Enabled"] is { Length: > 0 } on
            ? bool.TryParse(on, out var e) ? e : throw new StartupRefused($"Parley:Metrics:Enabled must be true or false, not '{Clip(on)}'.")
            : MetricsEnabled;
        var path = config["Parley:Metrics:Path"] is { Length: > 0 } p ? p.Trim() : MetricsPath;
        if (!path.StartsWith('/') || path.Length > 100 || path.Contains("//") || !path.All(c => char.IsAsciiLetterOrDigit(c) || c is '/' or '-' or '_' or '.')
            || path is "/" or "/v1" || path.StartsWith("/v1/", StringComparison.Ordinal) || path.StartsWith("/api/", StringComparison.Ordinal)
            || path.StartsWith("/oauth/", StringComparison.Ordinal) || path.StartsWith("/healthz", StringComparison.Ordinal)
            || path.StartsWith("/readyz", StringComparison.Ordinal)
            || path.TrimEnd('/').Equals("/health", StringComparison.OrdinalIgnoreCase))   // the /health alias: an ambiguous route
            throw new StartupRefused($"Parley:Metrics:Path={Clip(path)} is not a path of its own: use a path such as /metrics " +
                "(letters, digits, '/', '-', '_', '.'), outside /api/, /oauth/, /v1 and the health probes.");
        return this with { MetricsEnabled = enabled, MetricsPath = path };
    }

    // ---- Queues: routing queues and the demo queue (docs/compatibility.md §Queues) ----
    /// <summary>The demo queue's id when none is configured; stores migrated from before queues route to it.</summary>
    public const string DefaultQueueId = "d1e2a3b4-0000-4000-8000-000000000002";
    /// <summary>
    /// Parley:Demo:QueueId (or PARLEY_DEMO_QUEUE_ID). The demo queue, created at start beside the demo deployment, which
    /// routes to it; also where a deployment or integration created without a <c>queueId</c> routes.
    /// </summary>
    public string DemoQueueId { get; init; } = DefaultQueueId;
    /// <summary>The demo queue id was set: the demo deployment is routed to it at every start, as the other demo settings are re-applied.</summary>
    public bool DemoQueueIdConfigured { get; init; }

    ParleyOptions WithQueues(IConfiguration config)
    {
        var id = (config["Parley:Demo:QueueId"] is { Length: > 0 } v ? v : config["PARLEY_DEMO_QUEUE_ID"] is { Length: > 0 } legacy ? legacy : null)?.Trim();
        if (id is null) return this;
        // It goes into paths and notification topic names (v2.routing.queues.{id}.conversations): no dots, no slashes.
        if (id.Length is 0 or > 64 || !id.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_'))
            throw new StartupRefused($"Parley:Demo:QueueId={Clip(id)} is not a queue id: use 1 to 64 letters, digits, '-' or '_' (a GUID, for example).");
        return this with { DemoQueueId = id, DemoQueueIdConfigured = true };
    }

    // ---- Users and login: the admin user, password hashing, the authorization code (issue 13 item 4; docs/users.md) ----
    public const string DefaultAdminUser = "admin";
    /// <summary>The built-in public OAuth client of the operations console (CODE grant, PKCE, redirect <c>/console/</c>).</summary>
    public const string ConsoleClientId = "parley-console";
    /// <summary>PARLEY_DEMO_ADMIN_USER (or Parley:Demo:AdminUser): the admin user's username, created at first start.</summary>
    public string DemoAdminUser { get; init; } = DefaultAdminUser;
    /// <summary>
    /// PARLEY_DEMO_ADMIN_PASSWORD (or Parley:Demo:AdminPassword): the admin user's password, applied at every start (a
    /// change replaces the hash and ends the user's tokens). Unset: a password is generated when the user is created and
    /// printed in that start's banner only; it is stored as a hash, never in clear.
    /// </summary>
    public string? DemoAdminPassword { get; init; }
    /// <summary>Parley:Users:PasswordIterations. PBKDF2-HMAC-SHA256 iterations for every user password, chosen or generated (OWASP: 600,000).</summary>
    public int PasswordIterations { get; init; } = Users.Passwords.DefaultIterations;
    /// <summary>How long an authorization code may be redeemed (RFC 6749 §4.1.2 recommends at most 10 minutes; Parley: 60 s).</summary>
    public TimeSpan AuthorizationCodeLifetime { get; init; } = TimeSpan.FromSeconds(60);

    ParleyOptions WithUsers(IConfiguration config)
    {
        string? Get(string key) => config[key] is { Length: > 0 } v ? v : null;
        var user = (Get("PARLEY_DEMO_ADMIN_USER") ?? Get("Parley:Demo:AdminUser"))?.Trim() ?? DemoAdminUser;
        if (user.Length is 0 or > 100 || user.Any(char.IsControl))
            throw new StartupRefused($"PARLEY_DEMO_ADMIN_USER must be 1 to 100 printable characters, not '{Clip(user)}'.");
        var password = Get("PARLEY_DEMO_ADMIN_PASSWORD") ?? Get("Parley:Demo:AdminPassword") ?? DemoAdminPassword;
        // Never echo the value: it is a password.
        if (password is not null && Users.Passwords.Refusal(password) is { } refused)
            throw new StartupRefused($"PARLEY_DEMO_ADMIN_PASSWORD is refused: {refused}");
        var iterations = Get("Parley:Users:PasswordIterations") is { } text
            ? int.TryParse(text, out var n) && n is >= 100_000 and <= 10_000_000 ? n
                : throw new StartupRefused($"Parley:Users:PasswordIterations must be a whole number from 100000 to 10000000, not '{Clip(text)}'.")
            : PasswordIterations;
        return this with { DemoAdminUser = user, DemoAdminPassword = password, PasswordIterations = iterations };
    }

    // ---- Termination policies: the terminations sweep (issue 14 item 1; docs/ending-sessions.md "Policies") ----
    /// <summary>
    /// Parley:Terminations:SweepSeconds. How often every node checks live conversations against their deployment's
    /// inactivity timeout and applies every enabled termination policy (one period for both sweeps). An end is at most this
    /// late after the instant its rule names.
    /// </summary>
    public TimeSpan TerminationSweep { get; init; } = TimeSpan.FromSeconds(1);

    ParleyOptions WithTerminationSweep(IConfiguration config) => this with
    {
        TerminationSweep = Seconds(config["Parley:Terminations:SweepSeconds"] is { Length: > 0 } text ? text : null,
            "Parley:Terminations:SweepSeconds", min: 1, max: 3600) ?? TerminationSweep,
    };
    // ---- end of termination policies ----
}
