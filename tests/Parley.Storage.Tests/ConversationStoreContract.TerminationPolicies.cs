using System.Collections.Immutable;
using Parley.Core;

namespace Parley.Storage.Tests;

/// <summary>Termination policies (docs/ending-sessions.md "Policies"), as every adapter must keep them.</summary>
public abstract partial class ConversationStoreContract
{
    static async Task<(string Deployment, string Integration)> ChannelsAsync(StoragePorts store)
    {
        var deployment = new Deployment(Id(), "web", ["*"], true, DisconnectMode.Send, false, T0) { QueueId = "queue-web" };
        await store.Directory.UpsertDeploymentAsync(deployment, default);
        var integration = new OpenIntegration(Id(), "Partner", "https://partner.example/hook", "secret-0123456789abcdef",
            ImmutableDictionary<string, string>.Empty, false, DisconnectMode.Send, T0, T0, "c", "c") { QueueId = "queue-open" };
        await store.Directory.UpsertIntegrationAsync(integration, default);
        return (deployment.Id, integration.Id);
    }

    static TerminationPolicy NewPolicy(ChannelKind channel, string channelId, PolicyType type, DateTimeOffset created) =>
        new(Id(), "rule " + type, channel, channelId, type, true, null, created, created, "client-a");

    static void AssertSamePolicy(TerminationPolicy expected, TerminationPolicy? actual)
    {
        Assert.NotNull(actual);
        Assert.Equal(expected with { Days = [] }, actual with { Days = [] });
        Assert.Equal<DayOfWeek>(expected.Days, actual.Days);
    }

    [ContractFact]
    public async Task TerminationPolicies_RoundTripEveryType_ListByChannel_UpdateAndDelete_OnAnotherNode()
    {
        var store = await CreateStoreAsync();
        var other = await OpenSecondAsync(store);
        var (deployment, integration) = await ChannelsAsync(store);
        var duration = NewPolicy(ChannelKind.WebMessaging, deployment, PolicyType.MaxDuration, T0) with
        {
            MaxDuration = TimeSpan.FromMinutes(30), Reason = "too long",
        };
        var campaign = NewPolicy(ChannelKind.Open, integration, PolicyType.Campaign, T0.AddSeconds(1)) with
        {
            Campaign = "spring", StartedBy = "bot", EndAt = T0.AddHours(3), Enabled = false,
        };
        var hours = NewPolicy(ChannelKind.WebMessaging, deployment, PolicyType.BusinessHours, T0.AddSeconds(2)) with
        {
            CloseAt = new TimeOnly(18, 30), TimeZone = "Europe/Paris", Days = [DayOfWeek.Monday, DayOfWeek.Friday],
        };
        foreach (var p in new[] { duration, campaign, hours }) Assert.True(await store.TerminationPolicies.CreateAsync(p, default));

        AssertSamePolicy(duration, await other.TerminationPolicies.GetAsync(duration.Id, default));
        AssertSamePolicy(campaign, await other.TerminationPolicies.GetAsync(campaign.Id, default));
        AssertSamePolicy(hours, await other.TerminationPolicies.GetAsync(hours.Id, default));
        Assert.Null(await other.TerminationPolicies.GetAsync(Id(), default));
        Assert.Equal([duration.Id, hours.Id], (await other.TerminationPolicies.ListAsync(ChannelKind.WebMessaging, deployment, default)).Select(p => p.Id));
        Assert.Equal([campaign.Id], (await other.TerminationPolicies.ListAsync(ChannelKind.Open, integration, default)).Select(p => p.Id));
        Assert.Empty(await other.TerminationPolicies.ListAsync(ChannelKind.Open, deployment, default));   // the kind must match too
        Assert.Equal([duration.Id, campaign.Id, hours.Id], (await other.TerminationPolicies.ListAsync(null, null, default))
            .Where(p => p.ChannelId == deployment || p.ChannelId == integration).Select(p => p.Id));
        Assert.DoesNotContain(campaign.Id, (await other.TerminationPolicies.ListEnabledAsync(default)).Select(p => p.Id));

        // An update replaces the fields (days cleared: every day), keeps creation; then delete, once.
        var changed = hours with { Name = "closing", Days = [], CloseAt = new TimeOnly(7, 5), Enabled = false, DateModified = T0.AddHours(1) };
        Assert.True(await other.TerminationPolicies.UpdateAsync(changed, default));
        AssertSamePolicy(changed, await store.TerminationPolicies.GetAsync(hours.Id, default));
        Assert.False(await store.TerminationPolicies.UpdateAsync(changed with { Id = Id() }, default));
        Assert.True(await store.TerminationPolicies.DeleteAsync(hours.Id, default));
        Assert.False(await other.TerminationPolicies.DeleteAsync(hours.Id, default));
        Assert.Null(await (await ReopenAsync(store)).TerminationPolicies.GetAsync(hours.Id, default));
    }

    [ContractFact]
    public async Task TerminationPolicies_BelongToTheirChannel_RefusedWithoutIt_DeletedWithIt()
    {
        var store = await CreateStoreAsync();
        var (deployment, integration) = await ChannelsAsync(store);
        var onDeployment = NewPolicy(ChannelKind.WebMessaging, deployment, PolicyType.MaxDuration, T0) with { MaxDuration = TimeSpan.FromHours(1) };
        var onIntegration = NewPolicy(ChannelKind.Open, integration, PolicyType.MaxDuration, T0) with { MaxDuration = TimeSpan.FromHours(1) };
        Assert.True(await store.TerminationPolicies.CreateAsync(onDeployment, default));
        Assert.True(await store.TerminationPolicies.CreateAsync(onIntegration, default));

        // No such channel (or the wrong kind of channel): nothing stored.
        var orphan = NewPolicy(ChannelKind.WebMessaging, Id(), PolicyType.MaxDuration, T0) with { MaxDuration = TimeSpan.FromHours(1) };
        Assert.False(await store.TerminationPolicies.CreateAsync(orphan, default));
        Assert.False(await store.TerminationPolicies.CreateAsync(orphan with { Id = Id(), Channel = ChannelKind.Open, ChannelId = deployment }, default));
        Assert.Null(await store.TerminationPolicies.GetAsync(orphan.Id, default));
        Assert.False(await store.TerminationPolicies.UpdateAsync(onDeployment with { ChannelId = Id() }, default));
        Assert.Equal(deployment, (await store.TerminationPolicies.GetAsync(onDeployment.Id, default))!.ChannelId);

        // The channel's delete takes its policies, and only those.
        Assert.True(await store.Directory.DeleteDeploymentAsync(deployment, default));
        Assert.Null(await store.TerminationPolicies.GetAsync(onDeployment.Id, default));
        Assert.NotNull(await store.TerminationPolicies.GetAsync(onIntegration.Id, default));
        Assert.True(await store.Directory.DeleteIntegrationAsync(integration, default));
        Assert.Null(await store.TerminationPolicies.GetAsync(onIntegration.Id, default));
    }
}
