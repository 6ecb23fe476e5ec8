using System.Net;
using Parley.Server.GuestApi;

namespace Parley.E2E.Tests;

/// <summary>The buckets behind the guest rates, on a clock the test moves (the socket tests cover the wire).</summary>
public sealed class GuestRateLimiterTests
{
    sealed class ManualClock : TimeProvider
    {
        long _ticks = 1_000_000;
        public void Advance(TimeSpan by) => _ticks += by.Ticks;
        public override long TimestampFrequency => TimeSpan.TicksPerSecond;
        public override long GetTimestamp() => _ticks;
    }

    [Fact]
    public void SessionBucket_BurstsTheRate_ThenRefillsContinuously()
    {
        var clock = new ManualClock();
        var limiter = new GuestRateLimiter(clock);

        Assert.True(limiter.TryTakeForSession("s", 2, out _));
        Assert.True(limiter.TryTakeForSession("s", 2, out _));
        Assert.False(limiter.TryTakeForSession("s", 2, out var retryAfter));
        Assert.Equal(1, retryAfter);
        Assert.True(limiter.TryTakeForSession("another session", 2, out _));

        clock.Advance(TimeSpan.FromMilliseconds(500));   // half a second at 2/s: one more
        Assert.True(limiter.TryTakeForSession("s", 2, out _));
        Assert.False(limiter.TryTakeForSession("s", 2, out _));
    }

    [Fact]
    public void AddressBucket_BurstsTwoSecondsWorth_AndZeroIsNoLimit()
    {
        var clock = new ManualClock();
        var limiter = new GuestRateLimiter(clock);
        var address = IPAddress.Parse("203.0.113.7");

        Assert.Equal(10, Enumerable.Range(0, 20).Count(_ => limiter.TryTakeForAddress(address, 5, out _)));
        Assert.True(limiter.TryTakeForAddress(IPAddress.Parse("203.0.113.8"), 5, out _));
        Assert.All(Enumerable.Range(0, 100), _ => Assert.True(limiter.TryTakeForAddress(address, 0, out _)));
    }

    [Fact]
    public void AddressKey_IPv6CountsByItsSlash64_IPv4MappedAsIPv4()
    {
        static string Key(string a) => GuestRateLimiter.AddressKey(IPAddress.Parse(a));

        Assert.Equal(Key("2001:db8:1:2::1"), Key("2001:db8:1:2:ffff:ffff:ffff:ffff"));
        Assert.NotEqual(Key("2001:db8:1:2::1"), Key("2001:db8:1:3::1"));
        Assert.Equal(Key("192.0.2.1"), Key("::ffff:192.0.2.1"));
        Assert.NotEqual(Key("192.0.2.1"), Key("192.0.2.2"));
    }
}
