using Microsoft.Extensions.Configuration;
using Parley.Core;
using Parley.Server;

namespace Parley.E2E.Tests;

/// <summary>Parley:Storage:Durability and FsyncIntervalMs as read at start, and what the start says of them (docs/durability.md).</summary>
public sealed class DurabilitySettingTests
{
    static ParleyOptions Read(Dictionary<string, string?> values) =>
        ParleyOptions.FromEnvironment(new ConfigurationBuilder().AddInMemoryCollection(values).Build());

    [Fact]
    public void ByDefault_TheLevelIsFull_AndTheStartSaysNothing()
    {
        var o = Read([]);
        Assert.Equal(DurabilityLevel.Full, o.Durability.Level);
        Assert.Null(DurabilityWarning.Text(o));
        Assert.Contains("synchronous=FULL", Banner.Store(o));
    }

    [Theory]
    [InlineData("os", DurabilityLevel.Os)]
    [InlineData("Interval", DurabilityLevel.Interval)]
    [InlineData("FULL", DurabilityLevel.Full)]
    public void TheLevel_IsRead(string value, DurabilityLevel level) =>
        Assert.Equal(level, Read(new() { ["Parley:Storage:Durability"] = value }).Durability.Level);

    [Fact]
    public void Interval_ReadsItsInterval_AndTheStartWarnsAndTheBannerSaysIt()
    {
        var o = Read(new() { ["Parley:Storage:Durability"] = "interval", ["Parley:Storage:FsyncIntervalMs"] = "25" });
        Assert.Equal(TimeSpan.FromMilliseconds(25), o.Durability.FsyncInterval);
        Assert.Contains("last 25 ms", DurabilityWarning.Text(o));
        Assert.Contains("durability interval", Banner.Store(o));
        Assert.Equal(TimeSpan.FromMilliseconds(10), Read(new() { ["Parley:Storage:Durability"] = "interval" }).Durability.FsyncInterval);
    }

    [Fact]
    public void Os_WarnsAtStart_ButNotInMemory()
    {
        var o = Read(new() { ["Parley:Storage:Durability"] = "os" });
        Assert.Contains("power loss", DurabilityWarning.Text(o));
        Assert.Null(DurabilityWarning.Text(o with { InMemory = true }));
    }

    [Theory]
    [InlineData("Parley:Storage:Durability", "none")]
    [InlineData("Parley:Storage:FsyncIntervalMs", "0")]
    [InlineData("Parley:Storage:FsyncIntervalMs", "soon")]
    [InlineData("Parley:Storage:FsyncIntervalMs", "5000")]
    public void AMalformedValue_RefusesTheStart(string key, string value)
    {
        var refused = Assert.Throws<StartupRefused>(() => Read(new() { [key] = value }));
        Assert.Contains(key, refused.Message);
    }
}
