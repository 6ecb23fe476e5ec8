using System.CommandLine;
using Parley.Client;
using Spectre.Console;

namespace Parley.Cli;

/// <summary>
/// <c>login</c>, <c>logout</c>, <c>profiles</c>: saved servers and credentials. The client secret is never an argument
/// (it would stay in the shell's history and in the process list): it is typed at a prompt that does not echo, or read
/// from standard input with <c>--client-secret-stdin</c>.
/// </summary>
public static class Login
{
    const string DefaultProfile = "default";

    /// <summary>What <c>login</c> and <c>profiles --json</c> show of a profile (never its secret).</summary>
    public sealed record ProfileView(string Name, string Url, string ClientId, bool IsDefault);

    public static Command Build(Session session)
    {
        var url = new Option<string>("--url") { Description = "The server's address, e.g. https://parley.example.com", Required = true, HelpName = "url" };
        var clientId = new Option<string>("--client-id") { Description = "The OAuth client id", Required = true, HelpName = "id" };
        var tokenUrl = new Option<string>("--token-url")
        {
            Description = "Where tokens come from, when not <url>/oauth/token (Genesys Cloud: https://login.mypurecloud.com/oauth/token)", HelpName = "url",
        };
        var fromStdin = new Option<bool>("--client-secret-stdin")
        {
            Description = "Read the client secret from standard input (one line) instead of a prompt: echo \"$SECRET\" | parley login …",
        };
        var command = new Command("login", "Check a server's client credentials and save them as a profile (the first one saved becomes the default)")
        {
            url, clientId, tokenUrl, fromStdin,
        };
        command.SetAction(session.Action(async () =>
        {
            var name = session.Value(session.Globals.Profile) ?? DefaultProfile;
            if (name.Trim().Length == 0 || name.Length > 64) throw new CliException(ExitCodes.Usage, "--profile needs a name of 1 to 64 characters");
            var address = ServerSelection.ParseUrl(session.Value(url)!, "--url");
            var id = session.Value(clientId)!.Trim();
            var tokens = session.Value(tokenUrl) is { } t ? ServerSelection.ParseUrl(t, "--token-url") : null;
            var secret = Common.ReadSecret(session, session.Value(fromStdin), "Client secret:", "--client-secret-stdin");

            // Check before saving: a profile that cannot log in is worse than none. A 403 means the credentials were
            // accepted (a token was issued) but this client may not list conversations, which is fine for a profile.
            var client = session.Connect(new ServerTarget(address, id, secret, "--url", tokens));
            try { await client.Conversations.ListLiveAsync(pageSize: 1, ct: session.Cancellation); }
            catch (ParleyApiException e) when (e.Status == 403) { }

            var file = session.Profiles.Read();
            var profiles = new Dictionary<string, Profile>(file.Profiles, StringComparer.Ordinal)
            {
                [name] = new Profile { Url = address.ToString(), ClientId = id, ClientSecret = secret, TokenUrl = tokens?.ToString() },
            };
            var isDefault = file.Default is null || !file.Profiles.ContainsKey(file.Default) || file.Default == name;
            session.Profiles.Write(new ProfileFile { Default = isDefault ? name : file.Default, Profiles = profiles });

            var view = new ProfileView(name, address.ToString(), id, isDefault);
            if (session.Terminal.Json) session.Terminal.WriteJson(view);
            else session.Terminal.Line($"Logged in to {address} as {id}; saved as profile '{name}'{(isDefault ? " (the default)" : "")} in {session.Profiles.Path}");
            return ExitCodes.Ok;
        }));
        return command;
    }

    public static Command BuildLogout(Session session)
    {
        var command = new Command("logout", "Forget a saved profile and its secret (--profile; default: the default profile)");
        command.SetAction(session.Action(() =>
        {
            var file = session.Profiles.Read();
            var name = session.Value(session.Globals.Profile) ?? file.Default
                ?? throw new CliException(ExitCodes.Usage, "no default profile; name one with --profile");
            if (!file.Profiles.ContainsKey(name))
                throw new CliException(ExitCodes.NotFound, $"no profile '{ServerSelection.Clip(name)}' in {session.Profiles.Path}");
            var profiles = new Dictionary<string, Profile>(file.Profiles, StringComparer.Ordinal);
            profiles.Remove(name);
            session.Profiles.Write(new ProfileFile { Default = file.Default == name ? null : file.Default, Profiles = profiles });
            if (session.Terminal.Json) session.Terminal.WriteJson(new { profile = name, removed = true });
            else session.Terminal.Line($"Profile '{name}' removed");
            return Task.FromResult(ExitCodes.Ok);
        }));
        return command;
    }

    public static Command BuildProfiles(Session session)
    {
        var command = new Command("profiles", "List the saved profiles (never their secrets) and where they are kept");
        var use = new Command("use", "Make a saved profile the default") { new Argument<string>("name") { Description = "The profile's name" } };
        use.SetAction(session.Action(() =>
        {
            var name = session.Parse.GetValue<string>("name")!;
            var file = session.Profiles.Read();
            if (!file.Profiles.ContainsKey(name))
                throw new CliException(ExitCodes.NotFound, $"no profile '{ServerSelection.Clip(name)}' in {session.Profiles.Path}");
            session.Profiles.Write(file with { Default = name });
            if (session.Terminal.Json) session.Terminal.WriteJson(new { profile = name, isDefault = true });
            else session.Terminal.Line($"Profile '{name}' is now the default");
            return Task.FromResult(ExitCodes.Ok);
        }));
        command.Subcommands.Add(use);
        command.SetAction(session.Action(() =>
        {
            var file = session.Profiles.Read();
            var views = file.Profiles.OrderBy(p => p.Key, StringComparer.Ordinal)
                .Select(p => new ProfileView(p.Key, p.Value.Url, p.Value.ClientId, p.Key == file.Default)).ToList();
            if (session.Terminal.Json) session.Terminal.WriteJson(new { path = session.Profiles.Path, profiles = views });
            else
            {
                session.Terminal.Out.Write(Terminal.Table(views.Select(v => new[] { v.IsDefault ? "*" : "", v.Name, v.Url, v.ClientId }),
                    "", "PROFILE", "URL", "CLIENT ID"));
                session.Terminal.Line(session.Profiles.Path);
            }
            return Task.FromResult(ExitCodes.Ok);
        }));
        return command;
    }
}
