namespace Parley.Protocol;

/// <summary>
/// The platform's <c>User</c> (JSDK <c>User</c>, <c>GET /api/v2/users/me</c>): the fields Parley has. <c>authorization</c>
/// is present with <c>expand=authorization</c> (and on Parley's user administration answers).
/// </summary>
public sealed record UserWire
{
    public required string Id { get; init; }
    public required string Name { get; init; }
    public string? Email { get; init; }
    public required string Username { get; init; }
    /// <summary>The platform's user state: active (Parley deletes a user outright, so there is no other).</summary>
    public string State { get; init; } = "active";
    public long Version { get; init; }
    public UserAuthorizationWire? Authorization { get; init; }
    public string? DateCreated { get; init; }
    public string? DateModified { get; init; }
    public string? SelfUri { get; init; }
}

/// <summary>The platform's <c>UserAuthorization</c>: the user's roles and the permissions they grant.</summary>
public sealed record UserAuthorizationWire(List<AddressableRef> Roles, List<string> Permissions);

/// <summary>
/// Create (POST) and change (PATCH) body of Parley's user administration (a Parley extension, docs/users.md): the
/// platform's <c>CreateUser</c> fields plus <c>username</c> (default: the email) and <c>roles</c> by name.
/// </summary>
public sealed record UserRequest
{
    public string? Name { get; init; }
    public string? Email { get; init; }
    public string? Username { get; init; }
    public string? Password { get; init; }
    public List<string>? Roles { get; init; }
}

/// <summary>The platform's <c>ChangePasswordRequest</c> (<c>POST /api/v2/users/{userId}/password</c>).</summary>
public sealed record UserPasswordRequest
{
    public string? NewPassword { get; init; }
}
