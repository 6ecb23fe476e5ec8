namespace Parley.Server.OAuth;

/// <summary>
/// The roles a user can hold, and the permissions each grants (docs/users.md, "Roles"). A user's tokens carry the
/// permissions of the roles the user holds at each call, never a copy taken at login. Roles are Parley's fixed set,
/// named like the platform's built-in ones; the platform's editable roles are not served.
/// </summary>
public static class Roles
{
    public const string Admin = "admin";
    public const string Supervisor = "supervisor";

    /// <summary>Role → permissions. <see cref="Admin"/> holds every permission; <see cref="Supervisor"/> watches and ends conversations.</summary>
    public static readonly IReadOnlyDictionary<string, string[]> Granted = new Dictionary<string, string[]>
    {
        [Admin] = [Permissions.All],
        // Watch conversations (and their notifications), end them, read analytics, the audits and the webhook deliveries;
        // no administration of clients, users, deployments, integrations or signing keys, and no sending as the bot.
        [Supervisor] =
        [
            Permissions.ConversationView, Permissions.ConversationDisconnect, Permissions.AnalyticsView, Permissions.AuditView,
            Permissions.IntegrationView, Permissions.DeploymentView,
            Permissions.RoutingQueueView,   // the console subscribes to every queue's conversations
            Permissions.TerminationPolicyView,   // which rules will end the conversations they watch (not changing them)
        ],
    };

    public static IEnumerable<string> Known => Granted.Keys;

    /// <summary>The union of the roles' permissions (an unknown role grants nothing).</summary>
    public static string[] PermissionsOf(IEnumerable<string> roles) =>
        [.. roles.SelectMany(r => Granted.TryGetValue(r, out var p) ? p : []).Distinct()];

    /// <summary>
    /// What a user's token may do through a client: the user's permissions within the client's (a client acts like a scope;
    /// "*" on either side leaves the other as it is).
    /// </summary>
    public static string[] Within(string[] user, IReadOnlyCollection<string> client) =>
        client.Contains(Permissions.All) ? user
        : user.Contains(Permissions.All) ? [.. client]
        : [.. user.Where(client.Contains)];
}
