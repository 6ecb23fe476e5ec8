using Parley.Core;

namespace Parley.Storage.Tests;

/// <summary>Users, authorization codes and the clients' browser grants, as every adapter must keep them.</summary>
public abstract partial class ConversationStoreContract
{
    static CredentialAudit UserAudit(CredentialAction action, string entity) => new(Id(), action, entity, "admin-client", T0);

    static User NewUser(string username, params string[] roles) =>
        new(Id(), "Name of " + username, username, username + "@example.com", [.. roles], "pbkdf2$1$AA==$AA==", T0, T0);

    [ContractFact]
    public async Task User_RoundTrips_IsFoundByUsernameInAnyCase_AndItsChangesAreAudited()
    {
        var store = await CreateStoreAsync();
        var user = NewUser("Ada", "admin", "supervisor") with { CredentialVersion = 4 };
        Assert.True(await store.Users.SaveUserAsync(user, UserAudit(CredentialAction.UserCreated, user.Id), default));

        var reopened = await ReopenAsync(store);
        var read = (await reopened.Users.GetUserAsync(user.Id, default))!;
        Assert.Equal(user with { Username = "ada", Roles = read.Roles }, read);
        Assert.Equal(["admin", "supervisor"], read.Roles.ToArray());
        Assert.Equal(user.Id, (await reopened.Users.FindByUsernameAsync("ADA", default))?.Id);
        Assert.Null(await reopened.Users.FindByUsernameAsync("bob", default));

        var changed = read with { Roles = ["supervisor"], CredentialVersion = 5, DateModified = T0.AddSeconds(1) };
        Assert.True(await reopened.Users.SaveUserAsync(changed, UserAudit(CredentialAction.UserUpdated, user.Id), default));
        var reread = (await reopened.Users.GetUserAsync(user.Id, default))!;
        Assert.Equal(changed with { Roles = reread.Roles }, reread);
        Assert.Equal(["supervisor"], reread.Roles.ToArray());
        Assert.Equal(1, (await reopened.Users.ListUsersAsync(25, 1, default)).Total);

        Assert.True(await reopened.Users.DeleteUserAsync(user.Id, UserAudit(CredentialAction.UserDeleted, user.Id), default));
        Assert.False(await reopened.Users.DeleteUserAsync(user.Id, UserAudit(CredentialAction.UserDeleted, user.Id), default));
        Assert.Null(await reopened.Users.GetUserAsync(user.Id, default));
        var audit = await reopened.Credentials.ListCredentialAuditAsync(user.Id, 25, 1, default);
        Assert.Equal([CredentialAction.UserCreated, CredentialAction.UserUpdated, CredentialAction.UserDeleted], audit.Entities.Select(a => a.Action).Order());
    }

    [ContractFact]
    public async Task User_WithAnotherUsersUsername_IsRefused_AndNothingIsWritten()
    {
        var store = await CreateStoreAsync();
        var first = NewUser("ada");
        Assert.True(await store.Users.SaveUserAsync(first, UserAudit(CredentialAction.UserCreated, first.Id), default));
        var second = NewUser("ADA ");

        Assert.False(await store.Users.SaveUserAsync(second, UserAudit(CredentialAction.UserCreated, second.Id), default));

        Assert.Null(await store.Users.GetUserAsync(second.Id, default));
        Assert.Equal(0, (await store.Credentials.ListCredentialAuditAsync(second.Id, 25, 1, default)).Total);
        Assert.Equal(first.Id, (await store.Users.FindByUsernameAsync("ada", default))?.Id);
    }

    [ContractFact]
    public async Task AuthorizationCode_IsRedeemedOnce_EvenByTwoStoresRacing()
    {
        var a = await CreateStoreAsync();
        var b = await OpenSecondAsync(a);
        var codes = Enumerable.Range(0, 10).Select(i => new AuthorizationCode(Id(), "client", "user", "https://app.example/cb", i % 2 == 0 ? "challenge" : null,
            T0.AddSeconds(60), 3)).ToList();
        foreach (var code in codes) await a.Users.SaveCodeAsync(code, T0, default);

        foreach (var code in codes)
        {
            var outcomes = await Task.WhenAll(Enumerable.Range(0, 4).Select(i => (i % 2 == 0 ? a : b).Users.RedeemCodeAsync(code.CodeHash, T0.AddSeconds(1), default)));
            Assert.Single(outcomes, o => o.Outcome == CodeRedemption.Redeemed);
            Assert.All(outcomes, o => Assert.Equal(code, o.Code));
            Assert.Equal(3, outcomes.Count(o => o.Outcome == CodeRedemption.AlreadyRedeemed));
        }
        Assert.Equal((CodeRedemption.Unknown, null), await b.Users.RedeemCodeAsync("no-such-code", T0, default));
    }

    [ContractFact]
    public async Task AuthorizationCodes_ExpiredBeforeThePurgeTime_AreDeletedBySaving()
    {
        var store = await CreateStoreAsync();
        var old = new AuthorizationCode(Id(), "client", "user", "https://app.example/cb", null, T0, 0);
        await store.Users.SaveCodeAsync(old, T0.AddDays(-1), default);
        await store.Users.SaveCodeAsync(old with { CodeHash = Id(), ExpiresAt = T0.AddHours(2) }, T0.AddHours(1), default);

        Assert.Equal(CodeRedemption.Unknown, (await store.Users.RedeemCodeAsync(old.CodeHash, T0, default)).Outcome);
    }

    [ContractFact]
    public async Task Client_GrantTypeAndRedirectUris_RoundTrip_AndOlderClientsAreClientCredentials()
    {
        var store = await CreateStoreAsync();
        var browser = new OAuthClient(Id(), "console", "pbkdf2$1$AA==$AA==", ["*"], T0, AuthorizedGrantType: OAuthClient.Code,
            RegisteredRedirectUris: ["/console/", "https://app.example/cb"]);
        await store.Credentials.SaveClientAsync(browser, UserAudit(CredentialAction.ClientCreated, browser.Id), default);
        var service = new OAuthClient(Id(), "bot", "pbkdf2$1$AA==$AA==", ["*"], T0);
        await store.Directory.UpsertClientAsync(service, default);

        var reopened = await ReopenAsync(store);
        var read = (await reopened.Credentials.GetClientAsync(browser.Id, default))!;
        Assert.Equal(OAuthClient.Code, read.AuthorizedGrantType);
        Assert.Equal(["/console/", "https://app.example/cb"], read.RedirectUris.ToArray());
        var plain = (await reopened.Directory.GetClientAsync(service.Id, default))!;
        Assert.Equal((OAuthClient.ClientCredentials, 0), (plain.AuthorizedGrantType, plain.RedirectUris.Length));
    }
}
