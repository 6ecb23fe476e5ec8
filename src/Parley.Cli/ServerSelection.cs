namespace Parley.Cli;

/// <summary>A server and the credentials to use with it, and where they came from (for messages; never the secret).</summary>
public sealed record ServerTarget(Uri Url, string ClientId, string ClientSecret, string Source, Uri? TokenUrl = null);

/// <summary>
/// Which server a command talks to: the profile named by <c>--profile</c>; else <c>PARLEY_URL</c> with
/// <c>PARLEY_CLIENT_ID</c> and <c>PARLEY_CLIENT_SECRET</c> (scripts and CI need no login step); else the default profile.
/// </summary>
public static class ServerSelection
{
    public const string UrlVariable = "PARLEY_URL", ClientIdVariable = "PARLEY_CLIENT_ID", ClientSecretVariable = "PARLEY_CLIENT_SECRET",
        TokenUrlVariable = "PARLEY_TOKEN_URL";

    public static ServerTarget Resolve(string? profileName, ProfileStore store, Func<string, string?> environment)
    {
        if (profileName is not null)
        {
            var file = store.Read();
            return file.Profiles.TryGetValue(profileName, out var named)
                ? FromProfile(profileName, named)
                : throw new CliException(ExitCodes.Usage, $"no profile '{Clip(profileName)}' in {store.Path}; parley profiles lists them, parley login adds one");
        }
        if (environment(UrlVariable) is { Length: > 0 } url)
        {
            var id = environment(ClientIdVariable);
            var secret = environment(ClientSecretVariable);
            if (string.IsNullOrEmpty(id) || string.IsNullOrEmpty(secret))
                throw new CliException(ExitCodes.Usage, $"{UrlVariable} is set but {(string.IsNullOrEmpty(id) ? ClientIdVariable : ClientSecretVariable)} is not; set both client credentials");
            return new ServerTarget(ParseUrl(url, UrlVariable), id, secret, UrlVariable,
                environment(TokenUrlVariable) is { Length: > 0 } token ? ParseUrl(token, TokenUrlVariable) : null);
        }
        var profiles = store.Read();
        if (profiles.Default is { } name && profiles.Profiles.TryGetValue(name, out var chosen)) return FromProfile(name, chosen);
        throw new CliException(ExitCodes.Usage,
            $"no server given: run parley login --url <url> --client-id <id>, or set {UrlVariable}, {ClientIdVariable} and {ClientSecretVariable}");
    }

    static ServerTarget FromProfile(string name, Profile profile) =>
        new(ParseUrl(profile.Url, $"profile '{name}'"), profile.ClientId, profile.ClientSecret, $"profile '{name}'",
            profile.TokenUrl is { } token ? ParseUrl(token, $"profile '{name}'") : null);

    /// <summary>An absolute http(s) address; the server's API lives at its root.</summary>
    public static Uri ParseUrl(string text, string source)
    {
        if (Uri.TryCreate(text.Trim(), UriKind.Absolute, out var uri) && (uri.Scheme == Uri.UriSchemeHttp || uri.Scheme == Uri.UriSchemeHttps))
        {
            // user:password@host would put a credential where it is logged and shown: refused, and not repeated.
            if (uri.UserInfo.Length > 0) throw new CliException(ExitCodes.Usage, $"{source}: an address must not carry credentials (user:password@); use the client id and secret");
            return uri;
        }
        throw new CliException(ExitCodes.Usage, $"{source}: '{Clip(text)}' is not an http:// or https:// address");
    }

    /// <summary>Quoted input is bounded: a pasted secret or a runaway value must not fill the terminal.</summary>
    public static string Clip(string text, int max = 60) => text.Length <= max ? text : text[..max] + "…";
}
