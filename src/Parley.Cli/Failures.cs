namespace Parley.Cli;

/// <summary>The exit codes of <c>parley</c> (docs/cli.md): scripts branch on them, so they never change meaning.</summary>
public static class ExitCodes
{
    public const int Ok = 0;
    /// <summary>The server answered and refused (4xx other than 404, 5xx), or an end that could not be verified.</summary>
    public const int Refused = 1;
    /// <summary>The command line or the local set-up is wrong: an unknown option, no credentials, a profile file others can read.</summary>
    public const int Usage = 2;
    /// <summary>No answer: the server could not be reached (refused connection, DNS, TLS, timeout).</summary>
    public const int Unreachable = 3;
    /// <summary>The thing named does not exist (404).</summary>
    public const int NotFound = 4;
    /// <summary>Interrupted (Ctrl-C) before the command finished.</summary>
    public const int Interrupted = 130;
}

/// <summary>A failure the command line reports as one line and an exit code, without a stack trace.</summary>
public sealed class CliException(int exitCode, string message) : Exception(message)
{
    public int ExitCode { get; } = exitCode;
}
