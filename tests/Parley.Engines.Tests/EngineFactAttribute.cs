namespace Parley.Engines.Tests;

/// <summary>
/// A test that needs a real server named by a connection-string variable. Without the variable it is reported as
/// skipped, with the command that provides one, rather than passing without having run.
/// </summary>
public sealed class EngineFactAttribute : FactAttribute
{
    public EngineFactAttribute(string variable)
    {
        if (string.IsNullOrWhiteSpace(Environment.GetEnvironmentVariable(variable)))
        {
            Skip = $"{variable} is not set: start the local servers with `eval \"$(scripts/start-services)\"` "
                + "(.ci/run does this, so in CI the test runs).";
        }
    }

    public static string Require(string variable) =>
        Environment.GetEnvironmentVariable(variable)
        ?? throw new InvalidOperationException($"{variable} is not set.");
}
