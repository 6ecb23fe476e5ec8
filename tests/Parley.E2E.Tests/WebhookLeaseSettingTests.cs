using Microsoft.Extensions.Configuration;
using Parley.Server;

namespace Parley.E2E.Tests;

/// <summary>
/// Parley:Webhooks:LeaseSeconds and TimeoutSeconds: how long a node's claim on a delivery lasts before another node may
/// take it over (the fault test WebhookInFlight_WhenItsNodeIsKilled_IsDeliveredOnceByAnother shortens it).
/// </summary>
public sealed class WebhookLeaseSettingTests
{
    static ParleyOptions Read(Dictionary<string, string?> values) =>
        ParleyOptions.FromEnvironment(new ConfigurationBuilder().AddInMemoryCollection(values).Build());

    [Fact]
    public void ByDefault_TheLeaseIsTwiceTheTimeoutPlusTenSeconds()
    {
        Assert.Equal(TimeSpan.FromSeconds(10), Read([]).WebhookTimeout);
        Assert.Equal(TimeSpan.FromSeconds(30), Read([]).WebhookLeaseOrDefault);
        Assert.Equal(TimeSpan.FromSeconds(14), Read(new() { ["Parley:Webhooks:TimeoutSeconds"] = "2" }).WebhookLeaseOrDefault);
    }

    [Fact]
    public void ALeaseAndTimeout_AreRead()
    {
        var o = Read(new() { ["Parley:Webhooks:TimeoutSeconds"] = "2", ["Parley:Webhooks:LeaseSeconds"] = "3" });
        Assert.Equal(TimeSpan.FromSeconds(2), o.WebhookTimeout);
        Assert.Equal(TimeSpan.FromSeconds(3), o.WebhookLeaseOrDefault);
    }

    [Theory]
    [InlineData("10", null)]      // not longer than the default timeout
    [InlineData("2", "2")]
    [InlineData("0", null)]
    [InlineData("soon", null)]
    public void ALeaseNotLongerThanTheTimeout_OrMalformed_RefusesTheStart(string lease, string? timeout)
    {
        var values = new Dictionary<string, string?> { ["Parley:Webhooks:LeaseSeconds"] = lease };
        if (timeout is not null) values["Parley:Webhooks:TimeoutSeconds"] = timeout;
        var refused = Assert.Throws<StartupRefused>(() => Read(values));
        Assert.Contains("Parley:Webhooks:LeaseSeconds", refused.Message);
    }
}
