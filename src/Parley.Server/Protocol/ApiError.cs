using System.Diagnostics;
using Parley.Protocol;

namespace Parley.Server.Protocol;

/// <summary>
/// The one writer of the Platform API's error body (docs/compatibility.md §Platform errors): <c>message</c>, <c>code</c>, <c>status</c>,
/// <c>contextId</c> (the request's correlation id, also in the <c>ININ-Correlation-Id</c> header), <c>details</c>, <c>errors</c>.
/// </summary>
public sealed class ApiError(int status, string code, string message, string? fieldName = null) : IResult
{
    public int Status => status;
    public string Code => code;
    public string Message => message;

    public Task ExecuteAsync(HttpContext http)
    {
        LogRefusal(http);
        var contextId = ContextId(http);
        var body = new ErrorBody
        {
            Message = message, Code = code, Status = status, ContextId = contextId,
            MessageWithParams = message,
            Details = fieldName is null ? [] : [new ErrorDetail(FieldName: fieldName)],
        };
        ParleyTelemetry.Refused(status, code);
        if (status == 429) http.Response.Headers.RetryAfter = "1";
        // A 503's Retry-After is its producer's: a full node's (5 s), or the store outage's, set in one place for every
        // surface (ErrorBodyExceptionHandler.StoreRetryAfter).
        return PlatformResults.WriteAsync(http, status, body, ParleyJson.Wire.ErrorBody);
    }

    /// <summary>
    /// A 401, 403, 409, 429 or 503 is logged as a refusal (event 4001) with its reason, never with the request's
    /// credentials or body. A store outage is not: <see cref="StoreOutages"/> logs that, once per ten seconds.
    /// </summary>
    void LogRefusal(HttpContext http)
    {
        if (status is not (401 or 403 or 409 or 429 or 503) || ReferenceEquals(this, StoreUnavailable)) return;
        var log = http.RequestServices?.GetService<ILoggerFactory>()?.CreateLogger(ParleyLog.Refusals);
        if (log is not null && log.IsEnabled(LogLevel.Information))
            log.PlatformRefused(http.Request.Method, Clip(AccessLog.SafePath(http.Request.PathBase.Value + http.Request.Path.Value), 200), status, code, ParleyLog.Clip(message, 300));
    }

    public static string ContextId(HttpContext http)
    {
        if (http.Items["parley.contextId"] is string id) return id;
        id = Activity.Current?.TraceId.ToString() ?? Guid.NewGuid().ToString();
        http.Items["parley.contextId"] = id;
        return id;
    }

    /// <summary>
    /// Input quoted back in an answer, cut to <paramref name="max"/> characters: an error never echoes an unbounded value.
    /// </summary>
    public static string Clip(string? value, int max = 100) =>
        value is null ? "" : value.Length <= max ? value : value[..max] + $"… ({value.Length} characters)";

    /// <summary>The first few offending items, each clipped, and how many more there were.</summary>
    public static string Sample(IEnumerable<string> items, int count = 5)
    {
        var all = items.ToList();
        var shown = string.Join(", ", all.Take(count).Select(i => Clip(i)));
        return all.Count > count ? $"{shown} and {all.Count - count} more" : shown;
    }

    // The platform's codes and texts (docs/compatibility.md §Platform errors); Parley's own additions say what to do instead.
    public static ApiError NotFound(string what, string id) =>
        new(404, "not.found", $"The requested resource was not found: {what} {Clip(id)}.");
    public static ApiError BadRequest(string message, string? field = null) => new(400, "bad.request", message, field);
    public static ApiError InvalidValue(string field, string value, string allowed) =>
        new(400, "invalid.value", $"Value [{Clip(value)}] is not valid for field [{field}]. Allowable values are: {allowed}", field);
    public static ApiError MalformedJson(string detail) =>
        new(400, "bad.request", $"The request could not be understood by the server due to malformed syntax: {Clip(detail, 300)}");
    public static readonly ApiError AuthenticationRequired =
        new(401, "authentication.required", "No authentication bearer token specified in authorization header.");
    public static readonly ApiError BadCredentials = new(401, "bad.credentials", "Invalid login credentials.");
    public static readonly ApiError CredentialsExpired =
        new(401, "credentials.expired", "The supplied credentials are expired and cannot be used.");
    public static ApiError MissingPermissions(string permission) =>
        new(403, "missing.permissions", $"Unable to perform the requested action. You are missing the following permission(s): {permission}");
    public static ApiError Conflict(string code, string message) => new(409, code, message);
    public static ApiError UnsupportedMediaType(string? contentType) =>
        new(415, "unsupported.media.type", $"Unsupported Media Type '{Clip(contentType)}': send application/json.");
    /// <summary>
    /// The store could not be reached: the request was not acknowledged. Almost always nothing changed; a store lost
    /// between its commit and its answer is the exception, so the text does not promise it (docs/health.md).
    /// </summary>
    public static readonly ApiError StoreUnavailable =
        new(503, "service.unavailable", "The service is temporarily unavailable: its store cannot be reached, and the request was not acknowledged. Retry shortly (a store lost mid-write may have kept it: read before resending).");
    public static ApiError Internal() => new(500, "internal.server.error", "The server failed to process the request; nothing was changed.");
}
