using Parley.Core;
using Parley.Storage.Sqlite;

namespace Parley.Storage.Tests;

/// <summary>OAuth clients, the credential audit and signing keys in the SQLite store: each change and its audit row commit together.</summary>
public sealed class CredentialStoreTests : IAsyncLifetime
{
    readonly string _dir = Path.Combine(Path.GetTempPath(), "parley-cred-" + Guid.NewGuid().ToString("N"));
    SqliteStore _store = null!;
    static readonly DateTimeOffset T0 = DateTimeOffset.FromUnixTimeMilliseconds(1_800_000_000_000);

    public async Task InitializeAsync() => _store = await SqliteStore.OpenAsync(Path.Combine(_dir, "parley.db"));

    public async Task DisposeAsync()
    {
        await _store.DisposeAsync();
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }

    static CredentialAudit Audit(CredentialAction action, string entity, DateTimeOffset at) => new(Guid.NewGuid().ToString(), action, entity, "admin", at);

    [Fact]
    public async Task Client_RoundTripsEveryField_AndDeleteOfAMissingClientAuditsNothing()
    {
        var client = new OAuthClient("c1", "bot", "pbkdf2$1$AA==$AA==", ["a:b:c", "*"], T0, "desc", T0.AddSeconds(1), "admin", "admin2", 3);
        await _store.Ports.Credentials.SaveClientAsync(client, Audit(CredentialAction.ClientCreated, "c1", T0), default);
        var read = await _store.Ports.Credentials.GetClientAsync("c1", default);
        Assert.NotNull(read);
        Assert.Equal(client with { Permissions = read!.Permissions, RegisteredRedirectUris = read.RegisteredRedirectUris }, read);
        Assert.Empty(read.RedirectUris);
        Assert.Equal(client.Permissions.ToArray(), read.Permissions.ToArray());

        Assert.True(await _store.Ports.Credentials.DeleteClientAsync("c1", Audit(CredentialAction.ClientDeleted, "c1", T0.AddSeconds(2)), default));
        Assert.False(await _store.Ports.Credentials.DeleteClientAsync("c1", Audit(CredentialAction.ClientDeleted, "c1", T0.AddSeconds(3)), default));
        var audit = await _store.Ports.Credentials.ListCredentialAuditAsync("c1", 10, 1, default);
        Assert.Equal([CredentialAction.ClientDeleted, CredentialAction.ClientCreated], audit.Entities.Select(a => a.Action));
        Assert.Null(await _store.Ports.Credentials.GetClientAsync("c1", default));
    }

    [Fact]
    public async Task AddingASigningKey_RetiresOthersNoLaterThanAsked()
    {
        var original = Assert.Single(await _store.Ports.Credentials.ListSigningKeysAsync(default));
        Assert.Equal(SigningKey.OriginalKid, original.Kid);
        Assert.Null(original.Key);
        Assert.Null(original.RetiresAt);

        await _store.Ports.Credentials.AddSigningKeyAsync(new SigningKey("k2", [1, 2, 3], T0, T0, null), T0.AddDays(1), Audit(CredentialAction.SigningKeyRotated, "k2", T0), default);
        // A second rotation asking for a later retirement does not extend the original key's.
        await _store.Ports.Credentials.AddSigningKeyAsync(new SigningKey("k3", [4, 5, 6], T0, T0.AddSeconds(1), null), T0.AddDays(2),
            Audit(CredentialAction.SigningKeyRotated, "k3", T0), default);
        var keys = (await _store.Ports.Credentials.ListSigningKeysAsync(default)).ToDictionary(k => k.Kid);
        Assert.Equal(T0.AddDays(1), keys["1"].RetiresAt);
        Assert.Equal(T0.AddDays(2), keys["k2"].RetiresAt);
        Assert.Null(keys["k3"].RetiresAt);
        Assert.Equal([4, 5, 6], keys["k3"].Key);
        Assert.Equal(2, (await _store.Ports.Credentials.ListCredentialAuditAsync(null, 10, 1, default)).Total);
    }
}
