using Parley.Core;
using Parley.Protocol;
using Parley.Server.OAuth;
using Parley.Server.Protocol;

namespace Parley.Server.Users;

/// <summary>
/// Users on the platform's paths: <c>GET /api/v2/users/me</c> (JSDK <c>UsersApi.getUsersMe</c>) for a user's token, and a
/// small administration (list, get, create, change, new password, delete; docs/users.md), where roles are a Parley field.
/// As with clients, a caller can grant only what it holds: no one creates, changes or deletes a user stronger than itself.
/// </summary>
public static class UsersApi
{
    const string Users = "/api/v2/users", UsersArea = "/users";
    public const int MaxNameLength = 200;
    const int MaxUsernameLength = 256;

    public static void MapUsersApi(this IEndpointRouteBuilder app)
    {
        // Mapping only: each answer's type is declared for the OpenAPI document (the handlers write the same bytes as before).
        const string json = "application/json";
        // The group is /api/v2 itself: one at /api/v2/users would give the listing the pattern /api/v2/users/ (a trailing slash).
        var users = app.MapPlatformGroup("", "Users");
        users.MapGet(UsersArea + "/me", MeAsync).RequireCaller("a user's token (authorization code grant); a client-credentials token is refused with 400")
            .Produces<UserWire>().Errors(400, 404);
        users.MapGet(UsersArea, ListAsync).RequirePermission(Permissions.UserView).Produces<EntityListing<UserWire>>().Errors(400);
        users.MapPost(UsersArea, CreateAsync).RequirePermission(Permissions.UserAdd).Accepts<UserRequest>(json).Produces<UserWire>().Errors(400, 409, 413, 415);
        users.MapGet(UsersArea + "/{userId}", GetAsync).RequirePermission(Permissions.UserView).Produces<UserWire>().Errors(404);
        users.MapPatch(UsersArea + "/{userId}", UpdateAsync).RequirePermission(Permissions.UserEdit)
            .Accepts<UserRequest>(json).Produces<UserWire>().Errors(400, 404, 413, 415);
        users.MapPost(UsersArea + "/{userId}/password", SetPasswordAsync).RequirePermission(Permissions.UserEdit)
            .Accepts<UserPasswordRequest>(json).Produces(204).Errors(400, 404, 413, 415);
        users.MapDelete(UsersArea + "/{userId}", DeleteAsync).RequirePermission(Permissions.UserDelete).Produces(204).Errors(404);
    }

    /// <summary>The platform's answer to a client-credentials token on users/me.</summary>
    static readonly ApiError NotAUser = ApiError.BadRequest(
        "This request requires a user context. Client credentials cannot be used for requests to this resource.");

    static UserWire ToWire(User u, string[]? permissions) => new()
    {
        Id = u.Id, Name = u.Name, Email = u.Email, Username = u.Username, Version = u.CredentialVersion + 1,
        Authorization = permissions is null ? null
            : new UserAuthorizationWire([.. u.Roles.Select(r => new AddressableRef(r, r))], [.. permissions]),
        DateCreated = Wire.Time(u.DateCreated), DateModified = Wire.Time(u.DateModified), SelfUri = $"{Users}/{u.Id}",
    };

    /// <summary>Administration answers show the roles and what they grant.</summary>
    static UserWire Full(User u) => ToWire(u, Roles.PermissionsOf(u.Roles));

    static async Task<IResult> MeAsync(string? expand, HttpContext http, UserDirectory users, CancellationToken ct)
    {
        var caller = http.Caller();
        if (caller.UserId is null) return NotAUser;
        if (await users.GetAsync(caller.UserId, ct) is not { } user) return ApiError.NotFound("user", caller.UserId);
        var withAuthorization = expand?.Split(',').Contains("authorization", StringComparer.OrdinalIgnoreCase) == true;
        return Results.Json(ToWire(user, withAuthorization ? caller.Permissions : null), ParleyJson.Wire.UserWire);
    }

    static async Task<IResult> ListAsync(int? pageSize, int? pageNumber, UserDirectory users, CancellationToken ct)
    {
        if (PlatformRequest.Paging(pageSize, pageNumber, out var size, out var number) is { } bad) return bad;
        var page = await users.Store.ListUsersAsync(size, number, ct);
        return Results.Json(PlatformRequest.Listing(page.Entities.Select(Full).ToList(), Users, size, number, page.Total, page.PageCount),
            ParleyJson.Wire.EntityListingUserWire);
    }

    static async Task<IResult> GetAsync(string userId, UserDirectory users, CancellationToken ct) =>
        await users.Store.GetUserAsync(userId, ct) is { } u ? Results.Json(Full(u), ParleyJson.Wire.UserWire) : ApiError.NotFound("user", userId);

    /// <summary>The permissions of <paramref name="roles"/> the caller does not hold, as the 403 that names them (or null).</summary>
    static ApiError? Ceiling(Caller caller, IEnumerable<string> roles)
    {
        var missing = Roles.PermissionsOf(roles).Where(p => !caller.Has(p)).ToList();
        return missing.Count == 0 ? null : ApiError.MissingPermissions(string.Join(", ", missing));
    }

    static ApiError? CheckRoles(List<string>? roles) =>
        roles?.FirstOrDefault(r => !Roles.Granted.ContainsKey(r)) is { } unknown
            ? ApiError.InvalidValue("roles", unknown, string.Join(", ", Roles.Known))
            : null;

    static ApiError? CheckName(string? name, bool required)
    {
        if (name is null) return required ? ApiError.BadRequest("The field 'name' is required.", "name") : null;
        if (string.IsNullOrWhiteSpace(name) || name.Length > MaxNameLength)
            return ApiError.BadRequest($"The field 'name' must be 1 to {MaxNameLength} characters.", "name");
        return null;
    }

    static ApiError? CheckEmail(string? email) =>
        email is not null && (email.Length > MaxUsernameLength || !email.Contains('@') || email.Any(char.IsWhiteSpace))
            ? ApiError.BadRequest("The field 'email' is not an email address.", "email")
            : null;

    static CredentialAudit Audit(CredentialAction action, string userId, Caller caller, TimeProvider clock, string? detail = null) =>
        new(Guid.NewGuid().ToString(), action, userId, caller.ClientId, clock.GetUtcNow(),
            caller.UserId is { } by ? $"by user {by}" + (detail is null ? "" : "; " + detail) : detail);

    static string Who(Caller caller) => caller.UserId is { } user ? $"user {user} (client {caller.ClientId})" : $"client {caller.ClientId}";

    static async Task<IResult> CreateAsync(HttpContext http, UserDirectory users, ParleyOptions options, TimeProvider clock, ILoggerFactory loggers,
        CancellationToken ct)
    {
        var (body, error) = await http.ReadJsonAsync(ParleyJson.Wire.UserRequest);
        if (error is not null) return error;
        var username = (body!.Username ?? body.Email)?.Trim();
        if ((CheckName(body.Name, required: true) ?? CheckEmail(body.Email) ?? CheckRoles(body.Roles)) is { } invalid) return invalid;
        if (string.IsNullOrEmpty(username) || username.Length > MaxUsernameLength || username.Any(char.IsControl))
            return ApiError.BadRequest($"A username (or an email to use as one) of 1 to {MaxUsernameLength} characters is required.", "username");
        if (Passwords.Refusal(body.Password) is { } weak) return ApiError.BadRequest(weak, "password");
        var caller = http.Caller();
        var roles = (body.Roles ?? []).Distinct().ToList();
        if (Ceiling(caller, roles) is { } denied) return denied;
        var now = clock.GetUtcNow();
        var user = new User(Guid.NewGuid().ToString(), body.Name!.Trim(), User.Normalize(username), body.Email, [.. roles],
            Passwords.Hash(body.Password!, options.PasswordIterations), now, now);
        if (!await users.SaveAsync(user, Audit(CredentialAction.UserCreated, user.Id, caller, clock, "roles: " + string.Join(", ", roles)), ct))
            return ApiError.Conflict("general.conflict", $"The username {ApiError.Clip(user.Username)} is taken.");
        loggers.CreateLogger(ParleyLog.OAuth).UserChanged(user.Id, user.Username, "created with roles " + string.Join(", ", roles), Who(caller));
        return Results.Json(Full(user), ParleyJson.Wire.UserWire);
    }

    /// <summary>The user named in the path, if the caller may change it (404, or 403 when it holds what the caller does not).</summary>
    static async Task<(User? User, IResult? Refusal)> TargetAsync(string userId, Caller caller, UserDirectory users, CancellationToken ct)
    {
        var user = await users.Store.GetUserAsync(userId, ct);
        if (user is null) return (null, ApiError.NotFound("user", userId));
        return Ceiling(caller, user.Roles) is { } denied ? (null, denied) : (user, null);
    }

    /// <summary>Name, email and roles; a change of roles ends the user's tokens (they carry the roles' permissions).</summary>
    static async Task<IResult> UpdateAsync(string userId, HttpContext http, UserDirectory users, TimeProvider clock, ILoggerFactory loggers,
        CancellationToken ct)
    {
        var (body, error) = await http.ReadJsonAsync(ParleyJson.Wire.UserRequest);
        if (error is not null) return error;
        if ((CheckName(body!.Name, required: false) ?? CheckEmail(body.Email) ?? CheckRoles(body.Roles)) is { } invalid) return invalid;
        if (body.Password is not null) return ApiError.BadRequest($"Change a password with POST {Users}/{{userId}}/password.", "password");
        if (body.Username is not null) return ApiError.BadRequest("The username cannot be changed.", "username");
        var caller = http.Caller();
        var (existing, refusal) = await TargetAsync(userId, caller, users, ct);
        if (refusal is not null) return refusal;
        var roles = body.Roles?.Distinct().ToList();
        if (roles is not null && Ceiling(caller, roles) is { } denied) return denied;
        var rolesChanged = roles is not null && !roles.Order().SequenceEqual(existing!.Roles.Order());
        var updated = existing! with
        {
            Name = body.Name?.Trim() ?? existing.Name, Email = body.Email ?? existing.Email, Roles = roles is null ? existing.Roles : [.. roles],
            CredentialVersion = existing.CredentialVersion + (rolesChanged ? 1 : 0), DateModified = clock.GetUtcNow(),
        };
        await users.SaveAsync(updated, Audit(CredentialAction.UserUpdated, userId, caller, clock, "roles: " + string.Join(", ", updated.Roles)), ct);
        loggers.CreateLogger(ParleyLog.OAuth).UserChanged(userId, updated.Username, rolesChanged ? "given roles " + string.Join(", ", updated.Roles) : "updated",
            Who(caller));
        return Results.Json(Full(updated), ParleyJson.Wire.UserWire);
    }

    /// <summary>A new password (the platform's <c>POST /api/v2/users/{userId}/password</c>): every earlier token of the user ends.</summary>
    static async Task<IResult> SetPasswordAsync(string userId, HttpContext http, UserDirectory users, ParleyOptions options, TimeProvider clock,
        ILoggerFactory loggers, CancellationToken ct)
    {
        var (body, error) = await http.ReadJsonAsync(ParleyJson.Wire.UserPasswordRequest);
        if (error is not null) return error;
        if (Passwords.Refusal(body!.NewPassword) is { } weak) return ApiError.BadRequest(weak, "newPassword");
        var caller = http.Caller();
        var (existing, refusal) = await TargetAsync(userId, caller, users, ct);
        if (refusal is not null) return refusal;
        var updated = existing! with
        {
            PasswordHash = Passwords.Hash(body.NewPassword!, options.PasswordIterations), CredentialVersion = existing.CredentialVersion + 1,
            DateModified = clock.GetUtcNow(),
        };
        await users.SaveAsync(updated, Audit(CredentialAction.UserPasswordChanged, userId, caller, clock), ct);
        loggers.CreateLogger(ParleyLog.OAuth).UserChanged(userId, updated.Username, "given a new password", Who(caller));
        return Results.NoContent();
    }

    static async Task<IResult> DeleteAsync(string userId, HttpContext http, UserDirectory users, TimeProvider clock, ILoggerFactory loggers,
        CancellationToken ct)
    {
        var caller = http.Caller();
        var (existing, refusal) = await TargetAsync(userId, caller, users, ct);
        if (refusal is not null) return refusal;
        if (!await users.DeleteAsync(userId, Audit(CredentialAction.UserDeleted, userId, caller, clock), ct)) return ApiError.NotFound("user", userId);
        loggers.CreateLogger(ParleyLog.OAuth).UserChanged(userId, existing!.Username, "deleted", Who(caller));
        return Results.NoContent();
    }
}
