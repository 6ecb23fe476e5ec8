namespace Parley.Storage.Tests;

/// <summary>Notification channels and their subscriptions (docs/notifications.md "Several nodes"), as every adapter must keep them.</summary>
public abstract partial class ConversationStoreContract
{
    [ContractFact]
    public async Task NotificationChannels_CreatedOnOneStore_AreSubscribedAndReadOnAnother()
    {
        var a = await CreateStoreAsync();
        var b = await OpenSecondAsync(a);   // another node on the same database
        var client = Id();
        var id = "streaming-" + Id();
        await a.NotificationChannels.CreateAsync(id, client, null, T0.AddHours(24), default);

        var fresh = await b.NotificationChannels.GetAsync(id, default);
        Assert.Equal((id, client, T0.AddHours(24)), (fresh!.Id, fresh.ClientId, fresh.Expires));
        Assert.Empty(fresh.Topics);

        // Added on B (and extended), then added to again on A: the union, ordered, whoever reads it.
        var after = await b.NotificationChannels.SubscribeAsync(id, ["v2.topic.b", "v2.topic.a"], replace: false, T0.AddHours(25), default);
        Assert.Equal<string>(["v2.topic.a", "v2.topic.b"], after!.Topics);
        Assert.Equal(T0.AddHours(25), after.Expires);
        await a.NotificationChannels.SubscribeAsync(id, ["v2.topic.c", "v2.topic.a"], replace: false, T0.AddHours(26), default);
        Assert.Equal<string>(["v2.topic.a", "v2.topic.b", "v2.topic.c"], (await b.NotificationChannels.GetAsync(id, default))!.Topics);

        // Replace, and replace with nothing (DELETE …/subscriptions).
        Assert.Equal<string>(["v2.topic.d"], (await b.NotificationChannels.SubscribeAsync(id, ["v2.topic.d"], replace: true, T0.AddHours(26), default))!.Topics);
        Assert.Empty((await a.NotificationChannels.SubscribeAsync(id, [], replace: true, T0.AddHours(26), default))!.Topics);
        Assert.Null(await a.NotificationChannels.SubscribeAsync("streaming-none", ["v2.topic.a"], replace: false, T0, default));
    }

    [ContractFact]
    public async Task NotificationChannels_ListByClientSoonestFirst_DeleteAndExpireTakeTheSubscriptionsAlong()
    {
        var store = await CreateStoreAsync();
        var client = Id();
        string[] ids = ["streaming-" + Id(), "streaming-" + Id(), "streaming-" + Id()];
        await store.NotificationChannels.CreateAsync(ids[0], client, null, T0.AddHours(3), default);
        await store.NotificationChannels.CreateAsync(ids[1], client, null, T0.AddHours(1), default);
        await store.NotificationChannels.CreateAsync(ids[2], client, null, T0.AddMinutes(1), default);
        await store.NotificationChannels.CreateAsync("streaming-" + Id(), Id(), null, T0.AddHours(2), default);   // another client's
        await store.NotificationChannels.SubscribeAsync(ids[2], ["v2.topic.x"], replace: false, T0.AddMinutes(1), default);

        Assert.Equal([ids[2], ids[1], ids[0]], (await store.NotificationChannels.ListByClientAsync(client, T0, default)).Select(c => c.Id));
        // An expired channel is not listed, and the sweep removes it with its subscriptions.
        Assert.Equal([ids[1], ids[0]], (await store.NotificationChannels.ListByClientAsync(client, T0.AddMinutes(1), default)).Select(c => c.Id));
        Assert.True(await store.NotificationChannels.DeleteExpiredAsync(T0.AddMinutes(1), default) >= 1);
        Assert.Null(await store.NotificationChannels.GetAsync(ids[2], default));
        // Re-created under the same id, it starts with no topics (nothing of the old one's was left behind).
        await store.NotificationChannels.CreateAsync(ids[2], client, null, T0.AddHours(5), default);
        Assert.Empty((await store.NotificationChannels.GetAsync(ids[2], default))!.Topics);

        Assert.True(await store.NotificationChannels.DeleteAsync(ids[1], default));
        Assert.False(await store.NotificationChannels.DeleteAsync(ids[1], default));
        Assert.Null(await store.NotificationChannels.GetAsync(ids[1], default));
        var reopened = await ReopenAsync(store);
        Assert.Equal([ids[0], ids[2]], (await reopened.NotificationChannels.ListByClientAsync(client, T0, default)).Select(c => c.Id));
    }

    [ContractFact]
    public async Task NotificationChannels_KeepTheirUser_AndListByUser()
    {
        var store = await CreateStoreAsync();
        var (client, user) = (Id(), Id());
        string[] ids = ["streaming-" + Id(), "streaming-" + Id(), "streaming-" + Id()];
        await store.NotificationChannels.CreateAsync(ids[0], client, user, T0.AddHours(2), default);
        await store.NotificationChannels.CreateAsync(ids[1], client, null, T0.AddHours(1), default);
        await store.NotificationChannels.CreateAsync(ids[2], Id(), user, T0.AddHours(1), default);   // the same user through another client

        Assert.Equal(user, (await store.NotificationChannels.GetAsync(ids[0], default))!.UserId);
        Assert.Null((await store.NotificationChannels.GetAsync(ids[1], default))!.UserId);
        Assert.Equal([(ids[1], (string?)null), (ids[0], user)],
            (await store.NotificationChannels.ListByClientAsync(client, T0, default)).Select(c => (c.Id, c.UserId)));
        Assert.Equal([ids[2], ids[0]], (await store.NotificationChannels.ListByUserAsync(user, T0, default)).Select(c => c.Id));
        Assert.Equal(user, (await store.NotificationChannels.SubscribeAsync(ids[0], ["v2.topic.a"], replace: false, T0.AddHours(3), default))!.UserId);
    }
}
