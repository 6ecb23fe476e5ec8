using Parley.Core;
using Parley.Server.OAuth;

namespace Parley.Server.Users;

/// <summary>What the start did about the admin user, for the banner: its username, and the password only when this start generated it.</summary>
public sealed record AdminSeed(string Username, string? GeneratedPassword, bool PasswordFromSettings);

/// <summary>
/// Creates, at start, what a person needs to log in: the admin user and the console's public OAuth client. Like the demo
/// client, re-applied at every start: a PARLEY_DEMO_ADMIN_PASSWORD that differs from the stored one replaces it (and
/// raises the user's credential version, ending its tokens). Without the variable, a password is generated when the
/// user is created, printed in that start's banner, and kept only as a hash: a later start cannot print it again (set
/// the variable to choose a new one). The user keeps the admin role: a start puts it back if it was removed.
/// </summary>
public static class UserBootstrap
{
    /// <summary>Who the audit says made the start's changes.</summary>
    const string Starter = "parley";

    public static async Task<AdminSeed> SeedAsync(StoragePorts store, ParleyOptions o, TimeProvider clock)
    {
        await SeedConsoleClientAsync(store, o, clock);
        var now = clock.GetUtcNow();
        var existing = await store.Users.FindByUsernameAsync(o.DemoAdminUser, default);
        if (existing is null)
        {
            var generated = o.DemoAdminPassword is null ? Passwords.Generate() : null;
            // At the configured cost even when generated: a login must cost the same for every username, known or not.
            var hash = Passwords.Hash(generated ?? o.DemoAdminPassword!, o.PasswordIterations);
            var admin = new User(Guid.NewGuid().ToString(), "Administrator", o.DemoAdminUser, null, [Roles.Admin], hash, now, now);
            // Another node starting on the same store may have created it first: then that node printed the password.
            if (await store.Users.SaveUserAsync(admin, Audit(CredentialAction.UserCreated, admin.Id, now, "roles: admin"), default))
                return new AdminSeed(o.DemoAdminUser, generated, generated is null);
            return new AdminSeed(o.DemoAdminUser, null, o.DemoAdminPassword is not null);
        }
        if (o.DemoAdminPassword is { } password && !Passwords.Matches(password, existing.PasswordHash))
            await store.Users.SaveUserAsync(existing with
            {
                PasswordHash = Passwords.Hash(password, o.PasswordIterations), CredentialVersion = existing.CredentialVersion + 1, DateModified = now,
            }, Audit(CredentialAction.UserPasswordChanged, existing.Id, now, "PARLEY_DEMO_ADMIN_PASSWORD"), default);
        // The user this setting names is the admin: a start gives back the admin role if it was taken away (tokens carry the
        // roles' permissions, so the change ends the user's tokens, as a change of roles through the API does).
        if ((await store.Users.FindByUsernameAsync(o.DemoAdminUser, default))! is var current && !current.Roles.Contains(Roles.Admin))
        {
            var restored = current with { Roles = [.. current.Roles, Roles.Admin], CredentialVersion = current.CredentialVersion + 1, DateModified = now };
            await store.Users.SaveUserAsync(restored, Audit(CredentialAction.UserUpdated, current.Id, now,
                "PARLEY_DEMO_ADMIN_USER: admin role restored; roles: " + string.Join(", ", restored.Roles)), default);
        }
        return new AdminSeed(o.DemoAdminUser, null, o.DemoAdminPassword is not null);
    }

    /// <summary>
    /// The console's client, created when absent (an admin may change its redirect URIs later): public (no secret, so it
    /// can only redeem codes with PKCE), the CODE grant, redirecting to this server's own <c>/console/</c>.
    /// </summary>
    static async Task SeedConsoleClientAsync(StoragePorts store, ParleyOptions o, TimeProvider clock)
    {
        if (await store.Credentials.GetClientAsync(ParleyOptions.ConsoleClientId, default) is not null) return;
        var now = clock.GetUtcNow();
        var client = new OAuthClient(ParleyOptions.ConsoleClientId, "Parley console", OAuthClient.NoSecret, [Permissions.All], now,
            "The operations console: users log in with the authorization code grant and PKCE.", now, Starter, Starter,
            AuthorizedGrantType: OAuthClient.Code, RegisteredRedirectUris: ["/console/"]);
        await store.Credentials.SaveClientAsync(client, Audit(CredentialAction.ClientCreated, client.Id, now, "grant: CODE; redirect: /console/"), default);
    }

    static CredentialAudit Audit(CredentialAction action, string entity, DateTimeOffset at, string detail) =>
        new(Guid.NewGuid().ToString(), action, entity, Starter, at, detail);
}
