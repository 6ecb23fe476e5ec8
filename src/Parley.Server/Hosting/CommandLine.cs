using System.CommandLine;
using System.CommandLine.Help;
using System.Reflection;

namespace Parley.Server;

/// <summary>
/// Parley's command line (System.CommandLine): <c>--help</c> and <c>--version</c> print and end the process before
/// anything listens; <c>--urls</c>, <c>--port</c>, <c>--data</c> and <c>--in-memory</c> become host configuration
/// (<c>urls</c>, <c>Parley:DataDir</c>, <c>Parley:Storage:InMemory</c>); every other token is handed to the host's
/// configuration as ASP.NET Core reads it (<c>--Parley:Limits:MaxConnections=10</c>, <c>--environment Production</c>).
/// docs/configuration.md.
/// </summary>
public static class ParleyCommandLine
{
    /// <summary>What the command line asks for: the host's arguments to start with, or an exit code (help, version, an error).</summary>
    public readonly record struct Outcome(string[] HostArgs, int? Exit);

    /// <summary>The version <c>--version</c> prints: the assembly's informational version without its <c>+commit</c> suffix.</summary>
    public static string Version
    {
        get
        {
            var assembly = typeof(ParleyCommandLine).Assembly;
            var version = assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
                ?? assembly.GetName().Version?.ToString() ?? "0.0.0";
            var plus = version.IndexOf('+');
            return plus < 0 ? version : version[..plus];
        }
    }

    public static Outcome Parse(string[] args, TextWriter output, TextWriter error)
    {
        var urls = new Option<string[]>("--urls")
        {
            Arity = ArgumentArity.OneOrMore,   // given again, the last one wins (as in ASP.NET Core)
            Description = "Addresses to listen on, separated by ';' (default http://localhost:5000; port 0 picks a free port)",
            HelpName = "url;url",
        };
        var port = new Option<string>("--port", "-p") { Description = "Listen on http://localhost:<port> (shorthand for --urls; 0: a free port on 127.0.0.1)", HelpName = "port" };
        var data = new Option<string>("--data", "-d")
        {
            Description = "The data folder: the SQLite database, its key ring and its lock (default ./parley-data; PARLEY_DATA_DIR)",
            HelpName = "folder",
        };
        var inMemory = new Option<bool>("--in-memory")
        {
            Description = "Keep everything in memory: nothing is written to disk and everything is lost at exit (for CI runs)",
        };
        var root = new RootCommand(
            "Parley: a self-hosted web messaging server that speaks the Genesys Cloud messaging protocol.\n" +
            "Any other setting follows as ASP.NET Core reads it: --Parley:Limits:MaxConnections=2000, --environment Production;\n" +
            "environment variables (Parley__Limits__MaxConnections) and appsettings.json work too. docs/configuration.md lists every setting.")
        {
            urls, port, data, inMemory,
        };
        root.TreatUnmatchedTokensAsErrors = false;
        var version = root.Options.OfType<VersionOption>().Single();

        // No response files: an argument starting with '@' is a value, not a file to read.
        var result = root.Parse(args, new ParserConfiguration { ResponseFileTokenReplacer = null });
        if (result.Action is HelpAction)
        {
            result.Invoke(new InvocationConfiguration { Output = output, Error = error });
            return new([], 0);
        }
        if (result.Errors.Count > 0) return Refuse(error, result.Errors[0].Message);
        if (result.GetResult(version) is not null)
        {
            output.WriteLine(Version);
            return new([], 0);
        }

        var host = new List<string>();
        if (ForwardedToHost(result.UnmatchedTokens, host) is { } stray) return Refuse(error, stray);
        var given = result.GetValue(urls)?.LastOrDefault();
        var shorthand = result.GetValue(port);
        if (given is not null && shorthand is not null) return Refuse(error, "Give --urls or --port, not both.");
        if (given is not null) host.AddRange(["--urls", given]);
        if (shorthand is not null)
        {
            if (!int.TryParse(shorthand, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var p) || p > 65535)
                return Refuse(error, $"--port must be a number from 0 to 65535, not '{ParleyOptions.Clip(shorthand, 20)}'.");
            // Kestrel binds port 0 (a free port) on an address, not on "localhost" (which is two).
            host.AddRange(["--urls", p == 0 ? "http://127.0.0.1:0" : $"http://localhost:{p}"]);
        }
        if (result.GetValue(data) is { } folder)
        {
            if (folder.Trim().Length == 0) return Refuse(error, "--data needs a folder.");
            host.Add($"--Parley:DataDir={folder}");
        }
        if (result.GetValue(inMemory)) host.Add("--Parley:Storage:InMemory=true");
        return new([.. host], null);
    }

    /// <summary>
    /// Copies the tokens Parley does not define to the host's arguments, in ASP.NET Core's forms (<c>--key value</c>,
    /// <c>--key=value</c>, <c>/key value</c>, <c>key=value</c>). A word that is none of these would be ignored by the
    /// host's configuration, so it is refused instead (a mistyped <c>parley help</c> must not start a server), as is a
    /// single-dash switch, which ASP.NET Core rejects with a stack trace. Returns the refusal, or null.
    /// </summary>
    static string? ForwardedToHost(IReadOnlyList<string> tokens, List<string> host)
    {
        for (var i = 0; i < tokens.Count; i++)
        {
            var token = tokens[i];
            var isKey = token.StartsWith("--", StringComparison.Ordinal) || token.StartsWith('/');
            if (token.StartsWith('-') && !token.StartsWith("--", StringComparison.Ordinal))
                return $"Unknown option '{ParleyOptions.Clip(token, 60)}'.";
            if (isKey && token.TrimStart('-', '/').Length == 0) return $"Unknown option '{ParleyOptions.Clip(token, 60)}'.";
            host.Add(token);
            if (token.Contains('=')) continue;
            if (!isKey) return $"Unexpected argument '{ParleyOptions.Clip(token, 60)}'.";
            // --key value: the value is the next token (ASP.NET Core reads it so whatever it looks like, unless it is a key too).
            if (i + 1 < tokens.Count && !tokens[i + 1].StartsWith("--", StringComparison.Ordinal)) host.Add(tokens[++i]);
            else return $"'{ParleyOptions.Clip(token, 60)}' needs a value: {ParleyOptions.Clip(token, 60)}=value or {ParleyOptions.Clip(token, 60)} value.";
        }
        return null;
    }

    static Outcome Refuse(TextWriter error, string message)
    {
        error.WriteLine($"parley: {message.Split('\n')[0].Trim().TrimEnd('.')}. parley --help lists the options.");
        return new([], 1);
    }
}
