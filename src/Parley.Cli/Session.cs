using System.CommandLine;
using Parley.Client;

namespace Parley.Cli;

/// <summary>
/// One run of the tool: the parsed command line, where output goes, and (made on first use) the client of the chosen
/// server. Commands receive it and ask it for what they need.
/// </summary>
public sealed class Session(GlobalOptions globals, TextWriter stdout, TextWriter stderr, Func<string, string?> environment) : IDisposable
{
    ParleyClient? _client;
    ServerTarget? _target;
    Terminal? _terminal;

    public GlobalOptions Globals => globals;
    public Func<string, string?> Environment => environment;
    public ParseResult Parse { get; private set; } = null!;
    public CancellationToken Cancellation { get; private set; }
    public bool Cancelled => Cancellation.IsCancellationRequested;
    public Terminal Terminal => _terminal ??= new Terminal(stdout, stderr, Parse.GetValue(globals.Json));
    public TextReader Input { get; init; } = Console.In;
    public ProfileStore Profiles { get; } = ProfileStore.ForUser(environment);

    /// <summary>The server in messages (its address, never the credentials).</summary>
    public string ServerName => _target?.Url.GetLeftPart(UriPartial.Authority) ?? "the server";

    /// <summary>The value of an option or argument of the running command.</summary>
    public T? Value<T>(Option<T> option) => Parse.GetValue(option);
    public T? Value<T>(Argument<T> argument) => Parse.GetValue(argument);

    /// <summary>The client of the server this run talks to (<see cref="ServerSelection"/>).</summary>
    public ParleyClient Client()
    {
        if (_client is not null) return _client;
        _target = ServerSelection.Resolve(Parse.GetValue(globals.Profile), Profiles, environment);
        return _client = Connect(_target);
    }

    /// <summary>A client for given credentials (login checks them before saving).</summary>
    public ParleyClient Connect(ServerTarget target)
    {
        _target = target;
        // A command should fail in seconds, not minutes, when the server is gone (the bulk job's wait polls, it never holds one request).
        var http = new HttpClient(new SocketsHttpHandler { ConnectTimeout = TimeSpan.FromSeconds(10) }) { Timeout = TimeSpan.FromSeconds(60) };
        _ownedHttp = http;
        return new ParleyClient(new ParleyClientOptions
        {
            BaseAddress = target.Url, ClientId = target.ClientId, ClientSecret = target.ClientSecret, TokenEndpoint = target.TokenUrl,
        }, http);
    }

    HttpClient? _ownedHttp;

    /// <summary>The action of a command: binds this run to its parse result and token, then runs <paramref name="body"/>.</summary>
    public Func<ParseResult, CancellationToken, Task<int>> Action(Func<Task<int>> body) => (parse, ct) =>
    {
        Parse = parse;
        Cancellation = ct;
        return body();
    };

    public void Dispose()
    {
        _client?.Dispose();
        _ownedHttp?.Dispose();
    }
}
