using Xunit.Abstractions;
using Xunit.Sdk;

namespace Parley.Storage.Tests;

/// <summary>
/// A store test: a fact of <see cref="ConversationStoreContract"/> (run once per adapter) or of an engine's own tests. When its test class
/// needs a server (<see cref="RequiresEngineAttribute"/>) that is not configured, the test is reported skipped, naming
/// the command that provides one; with <c>CI=true</c> it runs anyway and fails loudly, so CI never passes without it.
/// </summary>
[XunitTestCaseDiscoverer("Parley.Storage.Tests.ContractFactDiscoverer", "Parley.Storage.Tests")]
[AttributeUsage(AttributeTargets.Method)]
public sealed class ContractFactAttribute : FactAttribute;

/// <summary>The test class runs against a real server named by the connection-string <see cref="Variable"/>.</summary>
[AttributeUsage(AttributeTargets.Class)]
public sealed class RequiresEngineAttribute(string variable) : Attribute
{
    public string Variable => variable;

    /// <summary>Why a test of this class is skipped here, or null when it runs (the variable is set, or this is CI).</summary>
    public static string? SkipReason(string variable) =>
        !string.IsNullOrWhiteSpace(Environment.GetEnvironmentVariable(variable))
            || string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase)
            ? null
            : $"{variable} is not set: start the local servers with `eval \"$(scripts/start-services)\"` (.ci/run does this, so in CI the test runs).";
}

public sealed class ContractFactDiscoverer(IMessageSink sink) : IXunitTestCaseDiscoverer
{
    public IEnumerable<IXunitTestCase> Discover(ITestFrameworkDiscoveryOptions options, ITestMethod method, IAttributeInfo attribute)
    {
        var engine = method.TestClass.Class.GetCustomAttributes(typeof(RequiresEngineAttribute)).FirstOrDefault();
        var skip = engine is null ? null : RequiresEngineAttribute.SkipReason(engine.GetConstructorArguments().Cast<string>().First());
        yield return skip is null
            ? new XunitTestCase(sink, options.MethodDisplayOrDefault(), options.MethodDisplayOptionsOrDefault(), method)
            : new XunitSkippedDataRowTestCase(sink, options.MethodDisplayOrDefault(), options.MethodDisplayOptionsOrDefault(), method, skip);
    }
}
