namespace Parley.Server.OAuth;

/// <summary>
/// Permission strings, in the platform's domain:entity:action form. A client holds a list of them ("*" holds all);
/// each Platform API endpoint names the one it needs, and a token without it gets 403 missing.permissions.
/// </summary>
public static class Permissions
{
    public const string All = "*";
    public const string ConversationView = "conversation:message:view";
    public const string ConversationCreate = "conversation:message:create";
    public const string ConversationDisconnect = "conversation:communication:disconnect";
    public const string AnalyticsView = "analytics:conversationDetail:view";
    public const string AuditView = "audits:audit:view";
    public const string DeploymentAdmin = "webdeployments:deployment:edit";
    public const string DeploymentView = "webdeployments:deployment:view";
    public const string OAuthClientAdd = "oauth:client:add";
    public const string OAuthClientView = "oauth:client:view";
    public const string OAuthClientEdit = "oauth:client:edit";
    public const string OAuthClientDelete = "oauth:client:delete";
    /// <summary>Parley's own: listing and rotating the token-signing keys (the platform has no such endpoint).</summary>
    public const string SigningKeyView = "parley:signingkey:view";
    public const string SigningKeyEdit = "parley:signingkey:edit";
    public const string IntegrationView = "messaging:integration:view";
    public const string IntegrationEdit = "messaging:integration:edit";
    /// <summary>Posting inbound Open Messaging traffic (what a channel's middleware does).</summary>
    public const string InboundReceive = "conversation:message:receive";
    public const string RoutingQueueView = "routing:queue:view";
    public const string RoutingQueueAdd = "routing:queue:add";
    // Users (docs/users.md): the platform's directory permissions.
    public const string UserAdd = "directory:user:add";
    public const string UserView = "directory:user:view";
    public const string UserEdit = "directory:user:edit";
    public const string UserDelete = "directory:user:delete";
    // Termination policies (docs/ending-sessions.md "Policies"): Parley's own, as the platform has no such rules.
    public const string TerminationPolicyView = "parley:terminationpolicy:view";
    public const string TerminationPolicyEdit = "parley:terminationpolicy:edit";

    public static readonly string[] Known =
    [
        ConversationView, ConversationCreate, ConversationDisconnect, AnalyticsView, AuditView, DeploymentAdmin, DeploymentView, OAuthClientAdd,
        OAuthClientView, OAuthClientEdit, OAuthClientDelete, SigningKeyView, SigningKeyEdit, IntegrationView, IntegrationEdit, InboundReceive,
        RoutingQueueView, RoutingQueueAdd,
        UserAdd, UserView, UserEdit, UserDelete,
        TerminationPolicyView, TerminationPolicyEdit,
    ];
}

/// <summary>Endpoint metadata: the permission a Platform API endpoint requires (read by the permission matrix).</summary>
public sealed record RequiredPermission(string Permission);

/// <summary>Endpoint metadata: a Platform endpoint any current caller may use, with no permission; <c>Who</c> says which tokens it serves.</summary>
public sealed record AnyCaller(string Who);
