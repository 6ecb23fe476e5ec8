using System.Collections.Immutable;
using System.Security.Cryptography;
using Parley.Core;
using Parley.Storage.Sqlite;

namespace Parley.Storage.Tests;

/// <summary>The store's side of secrets at rest, with a cipher of the test's own (AES-GCM under a key it holds).</summary>
public sealed class SecretCipherTests : IAsyncLifetime
{
    readonly string _dir = Path.Combine(Path.GetTempPath(), "parley-secrets-" + Guid.NewGuid().ToString("N"));
    string DbPath => Path.Combine(_dir, "parley.db");

    sealed class TestCipher(byte[] key) : ISecretCipher
    {
        public int Protected;

        public byte[] Protect(byte[] plaintext)
        {
            Protected++;
            var output = new byte[12 + 16 + plaintext.Length];
            RandomNumberGenerator.Fill(output.AsSpan(0, 12));
            using var aes = new AesGcm(key, 16);
            aes.Encrypt(output.AsSpan(0, 12), plaintext, output.AsSpan(28), output.AsSpan(12, 16));
            return output;
        }

        public byte[] Unprotect(byte[] data)
        {
            var plaintext = new byte[data.Length - 28];
            using var aes = new AesGcm(key, 16);
            aes.Decrypt(data.AsSpan(0, 12), data.AsSpan(28), data.AsSpan(12, 16), plaintext);   // throws CryptographicException on a wrong key
            return plaintext;
        }
    }

    static OpenIntegration Integration(string id, string secret, string? previous = null) =>
        new(id, "Channel", "https://example.com/hook", secret, ImmutableDictionary<string, string>.Empty, true, DisconnectMode.ReadOnly,
            DateTimeOffset.UnixEpoch, DateTimeOffset.UnixEpoch, "test", "test")
        {
            PreviousSecretToken = previous, PreviousSecretExpiresAt = previous is null ? null : DateTimeOffset.UnixEpoch.AddDays(1), QueueId = "q",
        };

    [Fact]
    public async Task PlainTextRows_AreEncryptedAtOpen_OnlyOnce_AndReadBackAsTheyWere()
    {
        var signingKey = RandomNumberGenerator.GetBytes(32);
        await using (var old = await SqliteStore.OpenAsync(DbPath))
        {
            await old.Ports.Directory.UpsertIntegrationAsync(Integration("a", "secret-a", "previous-a"), default);
            await old.Ports.Directory.GetOrCreateSigningKeyAsync(() => signingKey, default);
        }
        var cipher = new TestCipher(RandomNumberGenerator.GetBytes(32));

        await using (var store = await SqliteStore.OpenAsync(DbPath, cipher))
        {
            Assert.Equal(3, store.SecretsEncryptedAtOpen);
            var a = (await store.Ports.Directory.GetIntegrationAsync("a", default))!;
            Assert.Equal(("secret-a", "previous-a"), (a.SecretToken, a.PreviousSecretToken));
            Assert.Equal(signingKey, await store.Ports.Directory.GetOrCreateSigningKeyAsync(() => new byte[32], default));
            await store.Ports.Directory.UpsertIntegrationAsync(Integration("b", "secret-b"), default);
        }
        var written = cipher.Protected;
        await using (var again = await SqliteStore.OpenAsync(DbPath, cipher))
        {
            Assert.Equal(0, again.SecretsEncryptedAtOpen);
            Assert.Equal(written, cipher.Protected);   // nothing re-encrypted
            Assert.Equal("secret-b", (await again.Ports.Directory.GetIntegrationAsync("b", default))!.SecretToken);
        }
    }

    [Fact]
    public async Task AnotherKey_CannotOpenTheStore()
    {
        await using (var store = await SqliteStore.OpenAsync(DbPath, new TestCipher(RandomNumberGenerator.GetBytes(32))))
            await store.Ports.Directory.UpsertIntegrationAsync(Integration("a", "secret-a"), default);

        var refused = await Assert.ThrowsAsync<SecretsUnreadableException>(() =>
            SqliteStore.OpenAsync(DbPath, new TestCipher(RandomNumberGenerator.GetBytes(32))));
        Assert.Contains("open_integrations.secret_token", refused.Message);
        Assert.DoesNotContain("secret-a", refused.Message);
    }

    public Task InitializeAsync() => Task.CompletedTask;

    public Task DisposeAsync()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
        return Task.CompletedTask;
    }
}
