using System.Buffers;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Parley.Server.OAuth;

namespace Parley.Server.Protocol;

/// <summary>Authentication, permission and body checks shared by every Platform API endpoint.</summary>
public static class PlatformRequest
{
    /// <summary>
    /// Every Platform endpoint declares the permission it needs: the policy <c>perm:&lt;permission&gt;</c> on the Platform
    /// bearer scheme (<see cref="PlatformAuth"/>) answers 401 without a valid token, or when the token's client was deleted or
    /// has had its secret regenerated since; 403 without the permission. The caller's current permissions count, not those
    /// it had when the token was issued. The permission is also endpoint metadata (<see cref="RequiredPermission"/>), which
    /// the permission matrix and the OpenAPI document read. An endpoint that does two things (a policy that also ends
    /// conversations) names several: every one is required, and the 403 names those the caller lacks.
    /// </summary>
    public static TBuilder RequirePermission<TBuilder>(this TBuilder builder, string permission, params string[] more) where TBuilder : IEndpointConventionBuilder
    {
        string[] all = [permission, .. more];
        builder.WithMetadata([.. all.Select(p => (object)new RequiredPermission(p)), PlatformResults.ErrorResponse(401), PlatformResults.ErrorResponse(403)]);
        return builder.RequireAuthorization([.. all.Select(PlatformAuth.PolicyFor)]);
    }

    /// <summary>
    /// A Platform endpoint open to any current caller, with no permission (the platform's <c>GET /api/v2/users/me</c>):
    /// the policy <see cref="PlatformAuth.CallerPolicy"/> (401 without a valid token), and the metadata
    /// <see cref="AnyCaller"/> (<paramref name="who"/>: which tokens it serves), which puts it in the OpenAPI document.
    /// </summary>
    public static TBuilder RequireCaller<TBuilder>(this TBuilder builder, string who) where TBuilder : IEndpointConventionBuilder =>
        builder.WithMetadata(new AnyCaller(who), PlatformResults.ErrorResponse(401)).RequireAuthorization(PlatformAuth.CallerPolicy);

    /// <summary>
    /// A group under <c>/api/v2</c> (<paramref name="area"/>, e.g. <c>/conversations</c>) whose endpoints are the Platform
    /// API's: a current Platform caller is required (each endpoint adds its permission), and the OpenAPI document tags
    /// them with <paramref name="tag"/>.
    /// </summary>
    public static RouteGroupBuilder MapPlatformGroup(this IEndpointRouteBuilder app, string area, string tag) =>
        app.MapGroup("/api/v2" + area).RequireAuthorization(PlatformAuth.CallerPolicy).WithTags(tag);

    /// <summary>The verified caller of this Platform request (set by the authentication, <see cref="ICallerResolver"/>).</summary>
    public static Caller Caller(this HttpContext http) => (Caller)http.Items[typeof(Caller)]!;

    /// <summary>The body limit (<see cref="ParleyOptions.MaxRequestBodyBytes"/>) as the platform's 413.</summary>
    public static ApiError TooLarge(long limit) =>
        new(413, "request.entity.too.large", $"The request body is larger than {limit} bytes; nothing was read past the limit.");

    /// <summary>
    /// Reads the whole body, never more than <see cref="ParleyOptions.MaxRequestBodyBytes"/>: a declared length over the
    /// limit is refused before reading, and a chunked body is cut off at it (also Kestrel's own limit, the same number).
    /// </summary>
    public static async Task<(byte[]? Body, ApiError? Error)> ReadBodyAsync(this HttpContext http)
    {
        var (body, error) = await ReadPooledBodyAsync(http);
        if (error is not null) return (null, error);
        using (body) return (body!.WrittenMemory.ToArray(), null);
    }

    /// <summary>
    /// <see cref="ReadBodyAsync"/>'s reading, into a pooled buffer (one of the declared length when there is one), which
    /// the caller disposes: a request's body costs no allocation of its own (BENCHMARKS.md, round two, tenth run: 8 KB
    /// and more per call before).
    /// </summary>
    static async Task<(PooledBufferWriter? Body, ApiError? Error)> ReadPooledBodyAsync(HttpContext http)
    {
        var limit = http.RequestServices.GetRequiredService<ParleyOptions>().MaxRequestBodyBytes;
        var request = http.Request;
        if (request.ContentLength > limit) return (null, TooLarge(limit));
        var body = new PooledBufferWriter((int)Math.Clamp(request.ContentLength ?? 0, 1, 8192));
        try
        {
            while (body.WrittenCount != request.ContentLength)   // all it declared: Kestrel reads no further anyway
            {
                if (body.WrittenCount >= limit)
                {
                    // At the limit the body must end: one byte more is a body over it.
                    if (await request.Body.ReadAsync(new byte[1], http.RequestAborted) == 0) break;
                    body.Dispose();
                    return (null, TooLarge(limit));
                }
                var free = body.GetMemory();
                var read = await request.Body.ReadAsync(free[..(int)Math.Min(free.Length, limit - body.WrittenCount)], http.RequestAborted);
                if (read == 0) break;
                body.Advance(read);
            }
        }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            body.Dispose();
            return (null, TooLarge(limit));
        }
        catch
        {
            body.Dispose();
            throw;
        }
        return (body, null);
    }

    /// <summary>
    /// Reads a JSON body. Malformed JSON, a wrong content type or an oversized body is answered in the platform's
    /// error form; <paramref name="required"/> false lets an empty body through as null.
    /// </summary>
    public static async Task<(T? Body, ApiError? Error)> ReadJsonAsync<T>(this HttpContext http, JsonTypeInfo<T> type, bool required = true)
        where T : class
    {
        var (bytes, error) = await ReadPooledBodyAsync(http);
        if (error is not null) return (null, error);
        try
        {
            if (bytes!.WrittenCount == 0)
                return required ? (null, ApiError.BadRequest("A JSON request body is required.")) : (null, null);
            var contentType = http.Request.ContentType;
            if (contentType is not null && !contentType.Contains("json", StringComparison.OrdinalIgnoreCase))
                return (null, ApiError.UnsupportedMediaType(contentType));
            var body = JsonSerializer.Deserialize(bytes.WrittenMemory.Span, type);
            return body is null ? (null, ApiError.BadRequest("The JSON request body must be an object.")) : (body, null);
        }
        catch (JsonException e) when (UnknownField(e) is { } field)
        {
            // A request type that refuses unknown fields ([JsonUnmappedMemberHandling(Disallow)]): a misspelt field must
            // not be dropped silently (a bulk termination's filter would widen). Named by its path, never by a .NET type.
            return (null, ApiError.BadRequest($"The field '{ApiError.Clip(field)}' is not known; check its spelling.", ApiError.Clip(field)));
        }
        catch (JsonException e)
        {
            return (null, ApiError.MalformedJson(e.Message));
        }
        finally
        {
            bytes!.Dispose();
        }
    }

    /// <summary>The JSON path of the unknown property System.Text.Json refused (<c>filter.deploymentID</c>), or null for other errors.</summary>
    static string? UnknownField(JsonException e)
    {
        const string Prefix = "The JSON property '";
        if (!e.Message.StartsWith(Prefix, StringComparison.Ordinal) || !e.Message.Contains("could not be mapped", StringComparison.Ordinal)) return null;
        var end = e.Message.IndexOf('\'', Prefix.Length);
        if (end < 0) return null;
        var name = e.Message[Prefix.Length..end];
        var path = e.Path is { Length: > 2 } p && p.StartsWith("$.", StringComparison.Ordinal) ? p[2..] : null;
        // The path may already end at the property, or at the object holding it.
        return path is null ? name : path.EndsWith(name, StringComparison.Ordinal) ? path : $"{path}.{name}";
    }

    /// <summary>Paging parameters as the platform takes them: size 1…<paramref name="maxSize"/> (default 25), number from 1.</summary>
    public static ApiError? Paging(int? pageSize, int? pageNumber, out int size, out int number, int maxSize = 100, string prefix = "")
    {
        size = pageSize ?? 25;
        number = pageNumber ?? 1;
        if (size < 1 || size > maxSize) return ApiError.InvalidValue(prefix + "pageSize", size.ToString(), $"1 to {maxSize}");
        if (number < 1) return ApiError.InvalidValue(prefix + "pageNumber", number.ToString(), "1 or more");
        return null;
    }

    /// <summary>An entity listing with the platform's paging links.</summary>
    public static Parley.Protocol.EntityListing<T> Listing<T>(List<T> entities, string self, int size, int number, long total, int pageCount) => new()
    {
        Entities = entities, PageSize = size, PageNumber = number, Total = total, PageCount = pageCount,
        SelfUri = $"{self}?pageSize={size}&pageNumber={number}",
        FirstUri = $"{self}?pageSize={size}&pageNumber=1",
        LastUri = $"{self}?pageSize={size}&pageNumber={Math.Max(1, pageCount)}",
        NextUri = number < pageCount ? $"{self}?pageSize={size}&pageNumber={number + 1}" : null,
        PreviousUri = number > 1 ? $"{self}?pageSize={size}&pageNumber={number - 1}" : null,
    };
}
