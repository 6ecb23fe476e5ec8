using System.Reflection;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Microsoft.AspNetCore.Http.Metadata;
using Parley.Protocol;

namespace Parley.Server.Protocol;

/// <summary>
/// Typed answers of the Platform API that describe themselves to the OpenAPI document (as <c>Ok&lt;T&gt;</c> does) but
/// write with the wire's own serializer settings (<see cref="ParleyJson.Wire"/>: nulls left out, texts unescaped), so the
/// bytes on the wire are what they were with <c>Results.Json(value, typeInfo)</c>.
/// </summary>
public static class PlatformResults
{
    public static WireJson<T> Json<T>(T value, JsonTypeInfo<T> type) => new(value, type);
    public static WireCreated<T> Created<T>(T value, JsonTypeInfo<T> type) => new(value, type);
    public static WireAccepted<T> Accepted<T>(T value, JsonTypeInfo<T> type) => new(value, type);

    /// <summary>The error answers an endpoint may give besides 401/403, each in the platform's error body (OpenAPI).</summary>
    public static TBuilder Errors<TBuilder>(this TBuilder builder, params int[] statuses) where TBuilder : IEndpointConventionBuilder =>
        builder.WithMetadata([.. statuses.Select(ErrorResponse)]);

    internal static ProducesResponseTypeMetadata ErrorResponse(int status) => new(status, typeof(ErrorBody), ["application/json"]);

    /// <summary>
    /// Rendered whole into a pooled buffer, then written with its length: one write, no chunked framing for the server to
    /// add or the client to take apart, and none of the asynchronous serializer's state per call (BENCHMARKS.md, round
    /// two, tenth run). The bytes are those the serializer writes with the same options.
    /// </summary>
    internal static async Task WriteAsync<T>(HttpContext http, int status, T value, JsonTypeInfo<T> type)
    {
        using var body = new PooledBufferWriter();
        using (var json = new Utf8JsonWriter(body, WriterOptions(type.Options)))
            JsonSerializer.Serialize(json, value, ParleyJson.FastPath(type));
        http.Response.StatusCode = status;
        http.Response.ContentType = "application/json; charset=utf-8";
        http.Response.ContentLength = body.WrittenCount;
        await http.Response.Body.WriteAsync(body.WrittenMemory, http.RequestAborted);
    }

    /// <summary>What the serializer itself writes with under <paramref name="o"/> (its own writer options, not public).</summary>
    static JsonWriterOptions WriterOptions(JsonSerializerOptions o) => new()
    {
        Encoder = o.Encoder,
        Indented = o.WriteIndented,
        IndentCharacter = o.IndentCharacter,
        IndentSize = o.IndentSize,
        NewLine = o.NewLine,
        MaxDepth = o.MaxDepth == 0 ? 64 : o.MaxDepth,
        SkipValidation = true,
    };
}

/// <summary>A status with a JSON body of <typeparamref name="T"/>; each subclass names its status to the OpenAPI document.</summary>
public abstract class WireResult<T>(T value, JsonTypeInfo<T> type, int status) : IResult, IStatusCodeHttpResult, IValueHttpResult, IValueHttpResult<T>
{
    public T Value => value;
    object? IValueHttpResult.Value => value;
    public int StatusCode => status;
    int? IStatusCodeHttpResult.StatusCode => StatusCode;
    public Task ExecuteAsync(HttpContext http) => PlatformResults.WriteAsync(http, StatusCode, value, type);
    protected static void Produces(EndpointBuilder builder, int code) =>
        builder.Metadata.Add(new ProducesResponseTypeMetadata(code, typeof(T), ["application/json"]));
}

/// <summary>200 with a JSON body of <typeparamref name="T"/>.</summary>
public sealed class WireJson<T>(T value, JsonTypeInfo<T> type) : WireResult<T>(value, type, 200), IEndpointMetadataProvider
{
    public static void PopulateMetadata(MethodInfo method, EndpointBuilder builder) => Produces(builder, 200);
}

/// <summary>201 with a JSON body of <typeparamref name="T"/> (the created resource).</summary>
public sealed class WireCreated<T>(T value, JsonTypeInfo<T> type) : WireResult<T>(value, type, 201), IEndpointMetadataProvider
{
    public static void PopulateMetadata(MethodInfo method, EndpointBuilder builder) => Produces(builder, 201);
}

/// <summary>202 with a JSON body of <typeparamref name="T"/> (work accepted, e.g. a redelivery queued).</summary>
public sealed class WireAccepted<T>(T value, JsonTypeInfo<T> type) : WireResult<T>(value, type, 202), IEndpointMetadataProvider
{
    public static void PopulateMetadata(MethodInfo method, EndpointBuilder builder) => Produces(builder, 202);
}
