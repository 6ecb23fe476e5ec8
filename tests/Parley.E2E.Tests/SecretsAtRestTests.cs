using System.Buffers.Text;
using System.Collections.Immutable;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Configuration;
using Parley.Core;
using Parley.Server;
using Parley.Storage.Sqlite;

namespace Parley.E2E.Tests;

/// <summary>
/// Secrets at rest: the webhook secrets and the token-signing key never reach the database's files in plain text, keep
/// working across restarts, an older plain-text database is encrypted at start, and the key ring is owner-only.
/// </summary>
public sealed class SecretsAtRestTests
{
    const string IntegrationsPath = "/api/v2/conversations/messaging/integrations/open";
    const string Marker = "parley-dp1:";   // docs/production.md: what an encrypted value starts with

    static ParleyOptions AllowLoopback(ParleyOptions o) => o with { WebhooksAllowPrivateNetworks = true };

    static string NewSecret() => "whsec-" + Convert.ToHexString(RandomNumberGenerator.GetBytes(16));

    static string TempDir(string prefix) => Path.Combine(Path.GetTempPath(), prefix + Guid.NewGuid().ToString("N"));

    [Fact]
    public async Task AFreshServer_StoresNoSecretInPlainText_AndAfterARestartTokensAndWebhookSignaturesStillVerify()
    {
        string secret = NewSecret(), rotated = NewSecret();
        await using var receiver = await WebhookReceiver.StartAsync();
        await using var server = await ParleyServer.StartAsync(AllowLoopback);
        using var platform = await server.PlatformAsync();
        var id = await CreateIntegrationAsync(platform, receiver.Url, secret);
        // A rotation, so that both secret columns (the new and the one still in its overlap) hold a secret.
        var (rotate, _) = await platform.PatchAsync($"{IntegrationsPath}/{id}",
            new { outboundNotificationWebhookSignatureSecretToken = rotated, secretRotationOverlapSeconds = 3600 });
        Assert.Equal(HttpStatusCode.OK, rotate.StatusCode);
        await OpenMessagingTests.AgentlessAsync(platform, id, "+1", "before the restart");
        var before = await receiver.NextAsync();
        Assert.True(before.IsSignedWith(rotated));
        Assert.True(before.HasTimestampedSignature(secret, before.At));

        var token = platform.Http.DefaultRequestHeaders.Authorization!.Parameter!;
        var key = await SigningKeyAsync(server.DataDir);
        Assert.True(IsSignedWith(token, key), "the key decrypted from the database is the one that signs tokens");

        // Read directly: every stored secret is encrypted, and no file of the data folder (db, -wal) holds one in plain text.
        var (current, previous) = await StoredIntegrationSecretsAsync(server.DataDir, id);
        Assert.StartsWith(Marker, current);
        Assert.StartsWith(Marker, previous);
        Assert.StartsWith(Marker, Encoding.ASCII.GetString((await StoredSigningKeyAsync(server.DataDir))[..Marker.Length]));
        Assert.True(File.Exists(Path.Combine(server.DataDir, "parley.db-wal")));
        AssertNowhere(server.DataDir, secret, rotated, key);

        await server.RestartAsync();

        using var sameToken = new HttpClient { BaseAddress = server.BaseAddress };
        sameToken.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        Assert.Equal(HttpStatusCode.OK, (await sameToken.GetAsync($"{IntegrationsPath}/{id}")).StatusCode);
        using var again = new PlatformClient(sameToken);
        await OpenMessagingTests.AgentlessAsync(again, id, "+2", "after the restart");
        var after = await receiver.NextAsync();
        Assert.Equal("after the restart", (string?)after.Json["text"]);
        Assert.True(after.IsSignedWith(rotated), "the receiver's secret still verifies after the restart");
        Assert.True(after.HasTimestampedSignature(rotated, after.At));
        Assert.True(after.HasTimestampedSignature(secret, after.At), "the secret in its overlap too");
        AssertNowhere(server.DataDir, secret, rotated, key);
    }

    [Fact]
    public async Task RotatedSigningKeys_AreEncryptedToo_AndTheirTokensVerifyAfterARestart()
    {
        await using var server = await ParleyServer.StartAsync();
        using var platform = await server.PlatformAsync();
        var original = platform.Http.DefaultRequestHeaders.Authorization!.Parameter!;
        var (rotate, created) = await platform.PostAsync("/api/v2/parley/oauth/signingkeys/rotate", new { overlapSeconds = 3600 });
        Assert.Equal(HttpStatusCode.Created, rotate.StatusCode);
        var kid = (string)created!["kid"]!;
        using var rotated = await server.PlatformAsync();
        var token = rotated.Http.DefaultRequestHeaders.Authorization!.Parameter!;
        Assert.Equal(kid, OAuthHelpers.Kid(token));

        var stored = await StoredRotatedKeyAsync(server.DataDir, kid);
        Assert.StartsWith(Marker, Encoding.ASCII.GetString(stored[..Marker.Length]));
        var key = SecretsAtRest.Open(new ParleyOptions { DataDir = server.DataDir }).Unprotect(stored[Marker.Length..]);
        Assert.True(IsSignedWith(token, key), "the rotated key decrypted from the database is the one that signs");
        AssertNowhere(server.DataDir, key, await SigningKeyAsync(server.DataDir));

        await server.RestartAsync();

        foreach (var bearer in new[] { original, token })
        {
            using var http = new HttpClient { BaseAddress = server.BaseAddress };
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
            Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/api/v2/oauth/clients")).StatusCode);
        }
        using var afterRestart = await server.PlatformAsync();
        Assert.True(IsSignedWith(afterRestart.Http.DefaultRequestHeaders.Authorization!.Parameter!, key));
    }

    /// <summary>
    /// The next delivery carrying <paramref name="text"/>. Delivery is at least once: a restart right after the receiver
    /// took a message, before the relay recorded the 200, sends that message again first — a legitimate repeat, skipped.
    /// </summary>
    static async Task<WebhookReceiver.Received> NextWithTextAsync(WebhookReceiver receiver, string text)
    {
        for (var i = 0; i < 10; i++)
        {
            var next = await receiver.NextAsync();
            if ((string?)next.Json["text"] == text) return next;
        }
        throw new Xunit.Sdk.XunitException($"no delivery with text '{text}' among the next 10");
    }

    [Fact]
    public async Task AnOldPlainTextDatabase_IsEncryptedAtStart_AndASecondStartLeavesItAsItIs()
    {
        var dir = TempDir("parley-old-");
        try
        {
            byte[] key = RandomNumberGenerator.GetBytes(32), pending = RandomNumberGenerator.GetBytes(32);
            string secret = NewSecret(), previous = NewSecret(), later = NewSecret();
            await using var receiver = await WebhookReceiver.StartAsync();
            // Written the old way: the store without a cipher writes secrets as they are, as every earlier version did.
            // A rotated signing key that starts signing tomorrow sits beside the original one.
            await WritePlainTextAsync(dir, "old-1", receiver.Url, secret, previous, key, pending);
            Assert.True(Contains(dir, secret) && Contains(dir, previous) && Contains(dir, key) && Contains(dir, pending),
                "the plain-text database this test starts from");

            await using var server = await ParleyServer.StartAsync(o => AllowLoopback(o) with { DataDir = dir });
            using var platform = await server.PlatformAsync();

            Assert.True(IsSignedWith(platform.Http.DefaultRequestHeaders.Authorization!.Parameter!, key), "the migrated key still signs");
            var (current, old) = await StoredIntegrationSecretsAsync(dir, "old-1");
            Assert.StartsWith(Marker, current);
            Assert.StartsWith(Marker, old);
            Assert.StartsWith(Marker, Encoding.ASCII.GetString((await StoredRotatedKeyAsync(dir, "pending"))[..Marker.Length]));
            AssertNowhere(dir, secret, previous, key, pending);
            await OpenMessagingTests.AgentlessAsync(platform, "old-1", "+1", "migrated");
            var delivered = await receiver.NextAsync();
            Assert.True(delivered.IsSignedWith(secret));
            Assert.True(delivered.HasTimestampedSignature(previous, delivered.At));

            // Half migrated: an encrypted row beside a plain-text one (an older node wrote it). The next start encrypts
            // only the new one; the encrypted row is left byte for byte as it was.
            await server.RestartAsync(whileStopped: () => WritePlainTextAsync(dir, "old-2", receiver.Url, later, null, null, null));
            Assert.Equal((current, old), await StoredIntegrationSecretsAsync(dir, "old-1"));
            Assert.StartsWith(Marker, (await StoredIntegrationSecretsAsync(dir, "old-2")).Current);
            AssertNowhere(dir, secret, previous, later, key, pending);
            using var again = await server.PlatformAsync();
            Assert.True(IsSignedWith(again.Http.DefaultRequestHeaders.Authorization!.Parameter!, key));
            await OpenMessagingTests.AgentlessAsync(again, "old-2", "+2", "second");
            Assert.True((await NextWithTextAsync(receiver, "second")).IsSignedWith(later));
            await OpenMessagingTests.AgentlessAsync(again, "old-1", "+3", "first");
            Assert.True((await NextWithTextAsync(receiver, "first")).IsSignedWith(secret));
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [Fact]
    public async Task TheKeyRing_IsOwnerOnly_InTheDataFolderByDefault_OrWhereKeysPathSays()
    {
        await using (var server = await ParleyServer.StartAsync())
            AssertOwnerOnlyKeyRing(Path.Combine(server.DataDir, "data-protection-keys"));

        // Elsewhere (off the database's disk and backup), and a folder left open by hand is closed at start.
        var keys = TempDir("parley-keys-");
        try
        {
            Directory.CreateDirectory(keys);
            if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(keys, (UnixFileMode)0b111_101_101);
            await using var server = await ParleyServer.StartAsync(o => o with { DataProtectionKeysPath = keys });
            AssertOwnerOnlyKeyRing(keys);
            Assert.False(Directory.Exists(Path.Combine(server.DataDir, "data-protection-keys")));
            using var platform = await server.PlatformAsync();   // the signing key was decrypted with these keys
        }
        finally { Directory.Delete(keys, recursive: true); }
    }

    [Fact]
    public async Task LosingTheKeysFolder_RefusesTheStart_InOneClearLine()
    {
        var dir = TempDir("parley-lost-");
        try
        {
            await using (var first = ParleyProcess.Launch(new() { DataDir = dir }))
                await first.ListeningAsync();   // the signing key is stored, encrypted
            Directory.Delete(Path.Combine(dir, "data-protection-keys"), recursive: true);

            await using var second = ParleyProcess.Launch(new() { DataDir = dir });

            Assert.Equal(1, await second.ExitCodeAsync());
            var stderr = second.Stderr.Trim();
            Assert.Single(stderr.Split('\n'));
            Assert.StartsWith("parley: ", stderr);
            Assert.Contains("cannot decrypt", stderr);
            Assert.Contains(Path.Combine(dir, "data-protection-keys"), stderr);
            Assert.Contains("Parley:DataProtection:KeysPath", stderr);
            Assert.DoesNotContain("   at ", stderr);
            Assert.DoesNotContain("Exception", stderr);
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [Fact]
    public async Task WithACertificate_TheKeysAreEncryptedToo_AndWithoutItTheStartIsRefused()
    {
        var dir = TempDir("parley-cert-");
        var pfx = dir + ".pfx";
        try
        {
            using (var rsa = RSA.Create(2048))
            using (var certificate = new CertificateRequest("CN=Parley data protection", rsa, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1)
                       .CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddYears(1)))
                await File.WriteAllBytesAsync(pfx, certificate.Export(X509ContentType.Pfx, "pfx-password"));
            var secret = NewSecret();
            await using var receiver = await WebhookReceiver.StartAsync();
            Func<ParleyOptions, ParleyOptions> withCertificate = o => AllowLoopback(o) with
            {
                DataDir = dir, DataProtectionCertificatePath = pfx, DataProtectionCertificatePassword = "pfx-password",
            };
            await using (var server = await ParleyServer.StartAsync(withCertificate))
            {
                using var platform = await server.PlatformAsync();
                await CreateIntegrationAsync(platform, receiver.Url, secret);
                var keyFiles = Directory.GetFiles(Path.Combine(dir, "data-protection-keys"), "*.xml");
                Assert.NotEmpty(keyFiles);
                foreach (var file in keyFiles)
                {
                    var xml = await File.ReadAllTextAsync(file);
                    Assert.Contains("encryptedSecret", xml);
                    Assert.DoesNotContain("<value>", xml);   // the unencrypted form of a Data Protection master key
                }
                await server.RestartAsync();
                using var again = await server.PlatformAsync();
                var id = (string)(await again.GetAsync(IntegrationsPath)).Body!["entities"]![0]!["id"]!;
                await OpenMessagingTests.AgentlessAsync(again, id, "+1", "with a certificate");
                Assert.True((await receiver.NextAsync()).IsSignedWith(secret));
            }

            var refused = await Assert.ThrowsAsync<StartupRefused>(() => ParleyApp.BuildAsync(["--urls", "http://127.0.0.1:0"],
                o => AllowLoopback(o) with { DataDir = dir }));
            Assert.Contains("data-protection-keys", refused.Message);
            Assert.DoesNotContain(secret, refused.Message);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
            File.Delete(pfx);
        }
    }

    [Fact]
    public void TheKeyRingSettings_AreReadFromConfiguration()
    {
        static ParleyOptions Read(Dictionary<string, string?> values) =>
            ParleyOptions.FromEnvironment(new ConfigurationBuilder().AddInMemoryCollection(values).Build());

        Assert.Equal(Path.GetFullPath(Path.Combine("/srv/parley", "data-protection-keys")),
            Read(new() { ["PARLEY_DATA_DIR"] = "/srv/parley" }).DataProtectionKeysFolder);
        var o = Read(new()
        {
            ["PARLEY_DATA_DIR"] = "/srv/parley", ["Parley:DataProtection:KeysPath"] = "/etc/parley/keys",
            ["Parley:DataProtection:CertificatePath"] = "/etc/parley/dp.pfx", ["Parley:DataProtection:CertificatePassword"] = "pw",
        });
        Assert.Equal("/etc/parley/keys", o.DataProtectionKeysFolder);
        Assert.Equal("/etc/parley/dp.pfx", o.DataProtectionCertificatePath);
        Assert.Equal("pw", o.DataProtectionCertificatePassword);
    }

    // ---------------------------------------------------------------- helpers

    static async Task<string> CreateIntegrationAsync(PlatformClient platform, string url, string secret)
    {
        var (response, body) = await platform.PostAsync(IntegrationsPath, new
        {
            name = "Partner channel", outboundNotificationWebhookUrl = url, outboundNotificationWebhookSignatureSecretToken = secret,
        });
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return (string)body!["id"]!;
    }

    static async Task WritePlainTextAsync(string dir, string id, string url, string secret, string? previous, byte[]? key, byte[]? rotated)
    {
        Directory.CreateDirectory(dir);
        var now = DateTimeOffset.UtcNow;
        await using var old = await SqliteStore.OpenAsync(Path.Combine(dir, "parley.db"));
        await old.Ports.Directory.UpsertIntegrationAsync(new OpenIntegration(id, "Old channel", url, secret, ImmutableDictionary<string, string>.Empty, true,
            DisconnectMode.ReadOnly, now, now, "old", "old")
        {
            PreviousSecretToken = previous, PreviousSecretExpiresAt = previous is null ? null : now.AddHours(1), QueueId = "old-queue",
        }, default);
        if (key is not null) await old.Ports.Directory.GetOrCreateSigningKeyAsync(() => key, default);
        if (rotated is not null)
            await old.Ports.Credentials.AddSigningKeyAsync(new SigningKey("pending", rotated, now, now.AddDays(1), null), now.AddDays(30),
                new CredentialAudit(Guid.NewGuid().ToString(), CredentialAction.SigningKeyRotated, "pending", "old", now), default);
    }

    static SqliteConnection Raw(string dir) =>
        new(new SqliteConnectionStringBuilder { DataSource = Path.Combine(dir, "parley.db"), Mode = SqliteOpenMode.ReadOnly, Pooling = false }.ToString());

    static async Task<(string Current, string? Previous)> StoredIntegrationSecretsAsync(string dir, string id)
    {
        await using var c = Raw(dir);
        await c.OpenAsync();
        await using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT secret_token, previous_secret_token FROM open_integrations WHERE id = $id";
        cmd.Parameters.AddWithValue("$id", id);
        await using var r = await cmd.ExecuteReaderAsync();
        Assert.True(await r.ReadAsync());
        return (r.GetString(0), r.IsDBNull(1) ? null : r.GetString(1));
    }

    static async Task<byte[]> StoredSigningKeyAsync(string dir)
    {
        await using var c = Raw(dir);
        await c.OpenAsync();
        await using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT key FROM signing_keys WHERE id = 1";
        return (byte[])(await cmd.ExecuteScalarAsync())!;
    }

    static async Task<byte[]> StoredRotatedKeyAsync(string dir, string kid)
    {
        await using var c = Raw(dir);
        await c.OpenAsync();
        await using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT key FROM token_signing_keys WHERE kid = $kid";
        cmd.Parameters.AddWithValue("$kid", kid);
        return (byte[])(await cmd.ExecuteScalarAsync())!;
    }

    /// <summary>The signing key as the server sees it: the stored value decrypted with the data folder's key ring.</summary>
    static async Task<byte[]> SigningKeyAsync(string dir)
    {
        var stored = await StoredSigningKeyAsync(dir);
        var cipher = SecretsAtRest.Open(new ParleyOptions { DataDir = dir });
        return cipher.Unprotect(stored[Marker.Length..]);
    }

    /// <summary>A compact HS256 JWT's signature checked with the key.</summary>
    static bool IsSignedWith(string jwt, byte[] key)
    {
        var at = jwt.LastIndexOf('.');
        return CryptographicOperations.FixedTimeEquals(
            HMACSHA256.HashData(key, Encoding.ASCII.GetBytes(jwt[..at])), Base64Url.DecodeFromChars(jwt.AsSpan(at + 1)));
    }

    /// <summary>
    /// Every file of the data folder (parley.db, -wal, -shm, the key ring) as bytes, grepped for the needle; not the lock
    /// file, which a running server holds exclusively and which holds only its process id.
    /// </summary>
    static bool Contains(string dir, byte[] needle) =>
        Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories).Where(f => Path.GetFileName(f) != DataFolderLock.FileName).Any(file =>
        {
            using var f = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            using var bytes = new MemoryStream();
            f.CopyTo(bytes);
            return bytes.GetBuffer().AsSpan(0, (int)bytes.Length).IndexOf(needle) >= 0;
        });

    static bool Contains(string dir, string needle) => Contains(dir, Encoding.UTF8.GetBytes(needle));

    static void AssertNowhere(string dir, params object[] secrets)
    {
        foreach (var secret in secrets)
            Assert.False(secret is string s ? Contains(dir, s) : Contains(dir, (byte[])secret), "a secret in plain text in the data folder");
    }

    static void AssertOwnerOnlyKeyRing(string folder)
    {
        if (OperatingSystem.IsWindows()) return;
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(folder));
        var files = Directory.GetFiles(folder);
        Assert.Contains(files, f => f.EndsWith(".xml", StringComparison.Ordinal));
        foreach (var file in files) Assert.Equal((file, UnixFileMode.UserRead | UnixFileMode.UserWrite), (file, File.GetUnixFileMode(file)));
    }
}
