namespace Parley.Client;

/// <summary>How a <see cref="ParleyClient"/> reaches its server and authenticates.</summary>
public sealed record ParleyClientOptions
{
    /// <summary>The API's base address: <c>http://localhost:8080</c> for Parley, <c>https://api.mypurecloud.com</c> for Genesys Cloud.</summary>
    public required Uri BaseAddress { get; init; }

    /// <summary>OAuth client-credentials grant: the client id (with <see cref="ClientSecret"/>). The client gets and refreshes its token itself.</summary>
    public string? ClientId { get; init; }

    public string? ClientSecret { get; init; }

    /// <summary>A fixed bearer token instead of client credentials (never refreshed: a 401 is thrown).</summary>
    public string? AccessToken { get; init; }

    /// <summary>
    /// Where tokens come from; default <c>{BaseAddress}/oauth/token</c> (Parley). Genesys Cloud issues tokens on its login
    /// host: <c>https://login.mypurecloud.com/oauth/token</c> for <c>https://api.mypurecloud.com</c>
    /// (<see cref="ParleyClient.ForGenesysCloud"/> sets both).
    /// </summary>
    public Uri? TokenEndpoint { get; init; }

    /// <summary>A token is renewed this long before it expires (at most half its lifetime), so a request never carries one about to lapse.</summary>
    public TimeSpan TokenRefreshMargin { get; init; } = TimeSpan.FromMinutes(1);

    /// <summary>The clock that ages tokens (tests move it); waits between polls are in real time.</summary>
    public TimeProvider Clock { get; init; } = TimeProvider.System;

    /// <summary>How <see cref="ParleyClient.TerminateAsync"/> waits for the end to show.</summary>
    public TerminationVerification Verification { get; init; } = new();
}

/// <summary>
/// The bounded backoff of the termination recipe's verification: up to <see cref="Attempts"/> reads of the conversation
/// and its analytics, <see cref="FirstDelay"/> apart at first, doubling up to <see cref="MaxDelay"/> (defaults: 7 reads
/// within about 6 s; analytics on Genesys Cloud is indexed asynchronously).
/// </summary>
public sealed record TerminationVerification
{
    public int Attempts { get; init; } = 7;
    public TimeSpan FirstDelay { get; init; } = TimeSpan.FromMilliseconds(100);
    public TimeSpan MaxDelay { get; init; } = TimeSpan.FromSeconds(2);
}
