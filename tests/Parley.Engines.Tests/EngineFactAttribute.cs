namespace Parley.Engines.Tests;

/// <summary>
/// A test that needs a real server named by a connection-string variable. Without the variable it is reported as
/// skipped, with the command that provides one, rather than passing without having run; in CI (<c>CI=true</c>) it is not
/// skipped but fails, since .ci/run starts the servers and a missing variable there is a broken run.
/// </summary>
public sealed class EngineFactAttribute : FactAttribute
{
    public EngineFactAttribute(string variable)
    {
        if (string.IsNullOrWhiteSpace(Environment.GetEnvironmentVariable(variable))
            && !string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase))
        {
            Skip = $"{variable} is not set: start the local servers with `eval \"$(scripts/start-services)\"` "
                + "(.ci/run does this, so in CI the test runs).";
        }
    }

    public static string Require(string variable) =>
        Environment.GetEnvironmentVariable(variable) is { Length: > 0 } value ? value
            : throw new InvalidOperationException($"{variable} is not set: start the local servers with `eval \"$(scripts/start-services)\"`.");
}
