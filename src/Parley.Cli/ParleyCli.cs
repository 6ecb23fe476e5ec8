using System.CommandLine;
using System.CommandLine.Help;
using System.Net.Sockets;
using System.Reflection;
using Parley.Client;

namespace Parley.Cli;

/// <summary>
/// The <c>parley</c> command tree and how a run ends: every failure becomes one line on standard error,
/// <c>parley: &lt;what went wrong&gt;</c> (with the server's status and code when it answered), and an exit code from
/// <see cref="ExitCodes"/>; never a stack trace, never a secret. docs/cli.md.
/// </summary>
public static class ParleyCli
{
    public static async Task<int> RunAsync(string[] args, TextWriter stdout, TextWriter stderr, Func<string, string?> environment)
    {
        var globals = new GlobalOptions();
        using var session = new Session(globals, stdout, stderr, environment);
        // A command named parley rather than a RootCommand, whose name would be the assembly's (Parley.Cli) in the help.
        var version = new VersionOption();
        var root = new Command("parley", "The command line for Parley (and the Genesys Cloud calls it shares). docs/cli.md.")
        {
            new HelpOption(), version, globals.Json, globals.Profile,
            Login.Build(session), Login.BuildLogout(session), Login.BuildProfiles(session),
            Conversations.Build(session),
            Terminate.Build(session),
            Policies.Build(session),
            Receipts.Build(session),
            Audit.Build(session),
            Deliveries.Build(session),
            Deployments.Build(session),
            Integrations.Build(session),
        };

        // No response files: an argument starting with '@' is a value (a reason, a name), not a file to read.
        var parse = root.Parse(args, new ParserConfiguration { ResponseFileTokenReplacer = null });
        if (parse.Action is HelpAction) return await parse.InvokeAsync(new InvocationConfiguration { Output = stdout, Error = stderr });
        if (parse.Errors.Count > 0)
        {
            // A stray word says more than "Required command was not provided", which follows from it.
            var error = parse.UnmatchedTokens.Select(t => parse.Errors.FirstOrDefault(e => e.Message.Contains($"'{t}'", StringComparison.Ordinal)))
                .FirstOrDefault(e => e is not null) ?? parse.Errors[0];
            var command = string.Join(' ', Path(parse.CommandResult.Command));
            return Fail(stderr, ExitCodes.Usage, $"{OneLine(error.Message).TrimEnd('.')}. {command} --help lists the options");
        }
        if (parse.GetResult(version) is not null)
        {
            stdout.WriteLine(Version);
            return ExitCodes.Ok;
        }

        try
        {
            // Ctrl-C cancels the token handed to the command (a tail ends cleanly); the default exception handler is off,
            // so every failure comes here and becomes one line.
            return await parse.InvokeAsync(new InvocationConfiguration
            {
                Output = stdout, Error = stderr, EnableDefaultExceptionHandler = false, ProcessTerminationTimeout = TimeSpan.FromSeconds(2),
            });
        }
        catch (Exception e)
        {
            var (code, message) = Describe(e, session);
            return Fail(stderr, code, message);
        }
    }

    /// <summary>The tool's version: the assembly's informational version without its <c>+commit</c> suffix.</summary>
    public static string Version
    {
        get
        {
            var assembly = typeof(ParleyCli).Assembly;
            var version = assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
                ?? assembly.GetName().Version?.ToString() ?? "0.0.0";
            var plus = version.IndexOf('+');
            return plus < 0 ? version : version[..plus];
        }
    }

    static List<string> Path(Command command)
    {
        var names = new List<string>();
        for (Command? c = command; c is not null; c = c.Parents.OfType<Command>().FirstOrDefault()) names.Insert(0, c.Name);
        return names;
    }

    /// <summary>The exit code and the one line for a failure.</summary>
    public static (int Code, string Message) Describe(Exception e, Session session) => e switch
    {
        CliException cli => (cli.ExitCode, cli.Message),
        ParleyApiException { Status: 0 } api => (ExitCodes.Unreachable, $"cannot reach {session.ServerName}: {Reason(api.InnerException ?? api)}"),
        ParleyApiException api => (api.Status == 404 ? ExitCodes.NotFound : ExitCodes.Refused, ServerRefusal(api)),
        HttpRequestException http => (ExitCodes.Unreachable, $"cannot reach {session.ServerName}: {Reason(http)}"),
        OperationCanceledException when session.Cancelled => (ExitCodes.Interrupted, "interrupted"),
        BulkTerminationTimeoutException stuck => (ExitCodes.Refused, OneLine(stuck.Message)),
        TimeoutException or TaskCanceledException => (ExitCodes.Unreachable, $"cannot reach {session.ServerName}: no answer in time"),
        _ => (ExitCodes.Refused, $"unexpected failure: {OneLine(e.Message)}"),
    };

    /// <summary><c>&lt;server's message&gt; (&lt;status&gt; &lt;code&gt;)</c>, the server's words first.</summary>
    static string ServerRefusal(ParleyApiException api)
    {
        var message = api.ServerMessage is { Length: > 0 } m ? OneLine(m) : $"{api.Method} {api.Path} was refused";
        return api.Code is { Length: > 0 } code ? $"{message} ({api.Status} {OneLine(code)})" : $"{message} ({api.Status})";
    }

    /// <summary>The innermost cause of a failed connection, in the system's words (connection refused, name not known).</summary>
    static string Reason(Exception e)
    {
        for (var inner = e; inner is not null; inner = inner.InnerException)
            if (inner is SocketException socket) return OneLine(socket.Message);
        return OneLine(e.Message);
    }

    /// <summary>One line, bounded: what a server or a system says is quoted, never allowed to fill the terminal.</summary>
    public static string OneLine(string text)
    {
        var line = text.ReplaceLineEndings(" ").Trim();
        return line.Length <= 300 ? line : line[..300] + "…";
    }

    static int Fail(TextWriter stderr, int code, string message)
    {
        stderr.WriteLine($"parley: {message}");
        return code;
    }
}

/// <summary>Options every command takes.</summary>
public sealed class GlobalOptions
{
    public Option<bool> Json { get; } = new("--json") { Description = "Machine output: one JSON document on standard output, nothing else", Recursive = true };

    public Option<string> Profile { get; } = new("--profile")
    {
        Description = "The saved profile to use (parley login); default: PARLEY_URL and its credentials if set, else the default profile",
        HelpName = "name", Recursive = true,
    };
}
