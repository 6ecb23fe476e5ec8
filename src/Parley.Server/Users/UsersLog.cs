using System.Net;

namespace Parley.Server.Users;

/// <summary>
/// Log lines of users and logins (Parley.OAuth, 81xx). Never a password, a code or a token; a username only for an
/// existing user's change (a failed login may have a password typed in the username field, so it is not written).
/// </summary>
static partial class UsersLog
{
    [LoggerMessage(8101, LogLevel.Information, "User {UserId} logged in through client {ClientId} ({ResponseType} grant)")]
    public static partial void LoggedIn(this ILogger log, string userId, string clientId, string responseType);

    [LoggerMessage(8102, LogLevel.Warning, "Login refused (wrong username or password) for client {ClientId} from {Address}")]
    public static partial void LoginRefused(this ILogger log, string clientId, IPAddress? address);

    [LoggerMessage(8103, LogLevel.Warning,
        "Logins throttled from {Address}, retry after {Seconds} s (further refusals for this user and address are not logged for 10 s)")]
    public static partial void LoginThrottled(this ILogger log, IPAddress? address, int seconds);

    [LoggerMessage(8104, LogLevel.Warning,
        "Authorization code presented again (client {ClientId}, user {UserId}): a replay; every token of the user is revoked")]
    public static partial void CodeReplayed(this ILogger log, string clientId, string userId);

    [LoggerMessage(8105, LogLevel.Information, "User {UserId} ({Username}) {Change} by {Caller}")]
    public static partial void UserChanged(this ILogger log, string userId, string username, string change, string caller);
}
