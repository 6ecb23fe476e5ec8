using System.Security.Cryptography;

namespace Parley.Server;

/// <summary>
/// A start that fails ends the process with exit code 1 and one line on standard error naming the problem, never a stack
/// trace: a refused setting (<see cref="StartupRefused"/>), an address in use, a certificate Kestrel cannot load, a
/// configuration file that does not parse. Set <c>PARLEY_STARTUP_TRACE=1</c> to see the exception in full as well.
/// </summary>
public static class StartFailure
{
    public const int ExitCode = 1;

    public static int Report(Exception e, bool listening)
    {
        Console.Error.WriteLine($"parley: {Describe(e, listening)}");
        if (Environment.GetEnvironmentVariable("PARLEY_STARTUP_TRACE") is "1" or "true") Console.Error.WriteLine(e);
        return ExitCode;
    }

    /// <summary>The one line, without the "parley: " prefix.</summary>
    public static string Describe(Exception e, bool listening)
    {
        while (e is AggregateException { InnerExceptions.Count: 1 } one) e = one.InnerException!;
        if (e is StartupRefused) return e.Message;
        var message = FirstLine(e.Message);
        // A certificate file missing or unreadable surfaces as a plain FileNotFoundException: its loader is on the stack.
        var certificate = e is CryptographicException || message.Contains("certificate", StringComparison.OrdinalIgnoreCase)
            || (e is IOException && e.StackTrace?.Contains("Certificate", StringComparison.Ordinal) == true);
        if (certificate)
            return $"could not load the HTTPS certificate: {message} Give Kestrel one it can read: Kestrel__Certificates__Default__Path and " +
                "Kestrel__Certificates__Default__Password (docs/production.md).";
        if (listening && e is IOException or InvalidOperationException)
            return $"could not start listening: {message}";
        // A configuration source that does not parse (appsettings.json, a '-x' switch), or anything else that stopped the start.
        var inner = e.InnerException is { } cause ? $" ({FirstLine(cause.Message)})" : "";
        return $"could not start: {message}{inner}";
    }

    static string FirstLine(string message) => ParleyOptions.Clip(message.Split('\n')[0].Trim(), 300);
}
