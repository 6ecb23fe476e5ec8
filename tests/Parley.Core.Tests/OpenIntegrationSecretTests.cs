using System.Collections.Immutable;
using Parley.Core;

namespace Parley.Core.Tests;

/// <summary>Which secrets sign and verify an integration's webhooks, as a rotation runs its course.</summary>
public sealed class OpenIntegrationSecretTests
{
    static readonly DateTimeOffset T0 = new(2026, 11, 26, 9, 0, 0, TimeSpan.Zero);

    static OpenIntegration Integration() => new("i1", "Partner", "https://partner.example/hook", "secret-a",
        ImmutableDictionary<string, string>.Empty, true, DisconnectMode.ReadOnly, T0, T0, "c", "c") { QueueId = "q" };

    [Fact]
    public void Rotation_KeepsTheOldSecretInForceUntilTheOverlapEnds()
    {
        var rotated = Integration().RotateSecret("secret-b", TimeSpan.FromMinutes(10), T0);

        Assert.Equal(["secret-b", "secret-a"], rotated.SecretsInForce(T0));
        Assert.Equal(["secret-b", "secret-a"], rotated.SecretsInForce(T0 + TimeSpan.FromMinutes(10) - TimeSpan.FromTicks(1)));
        Assert.Equal(["secret-b"], rotated.SecretsInForce(T0 + TimeSpan.FromMinutes(10)));
    }

    [Fact]
    public void Rotation_WithoutOverlap_OrToTheSameSecret_LeavesOneSecret()
    {
        Assert.Equal(["secret-b"], Integration().RotateSecret("secret-b", TimeSpan.Zero, T0).SecretsInForce(T0));
        var same = Integration().RotateSecret("secret-a", TimeSpan.FromHours(1), T0);
        Assert.Equal(["secret-a"], same.SecretsInForce(T0));
        Assert.Null(same.PreviousSecretToken);
    }

    [Fact]
    public void ASecondRotation_DropsTheOldestSecret()
    {
        var twice = Integration().RotateSecret("secret-b", TimeSpan.FromHours(1), T0).RotateSecret("secret-c", TimeSpan.FromHours(1), T0);

        Assert.Equal(["secret-c", "secret-b"], twice.SecretsInForce(T0));
    }

    [Fact]
    public void ShortenOverlap_EndsItSooner_ButNeverExtendsIt()
    {
        var rotated = Integration().RotateSecret("secret-b", TimeSpan.FromMinutes(10), T0);

        Assert.Equal(["secret-b"], rotated.ShortenOverlap(TimeSpan.Zero, T0).SecretsInForce(T0));
        Assert.Equal(T0 + TimeSpan.FromMinutes(10), rotated.ShortenOverlap(TimeSpan.FromDays(1), T0).PreviousSecretExpiresAt);
        Assert.Null(Integration().ShortenOverlap(TimeSpan.Zero, T0).PreviousSecretExpiresAt);
    }
}
