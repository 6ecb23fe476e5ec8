namespace Parley.Server.Terminations;

/// <summary>Log lines of termination policies (Parley.Termination, 31xx). Each end a policy makes is logged as any termination (3001).</summary>
static partial class PoliciesLog
{
    [LoggerMessage(3101, LogLevel.Error, "Termination policy sweep failed for policy {PolicyId}; the next sweep retries")]
    public static partial void PolicySweepFailed(this ILogger log, Exception error, string? policyId);
}
