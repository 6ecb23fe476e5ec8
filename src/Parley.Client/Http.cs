using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Parley.Protocol;

namespace Parley.Client;

/// <summary>
/// Every API call goes through here: the bearer token, one retry with a new token when the server refuses the old one
/// (client credentials only), the platform's error body turned into <see cref="ParleyApiException"/>.
/// </summary>
sealed class Http(HttpClient client, ParleyClientOptions options, TokenSource tokens)
{
    public const string CorrelationHeader = "ININ-Correlation-Id";

    public ParleyClientOptions Options => options;

    /// <summary>A request and its answer, read whole. Non-2xx answers are returned too, for callers that decide on them.</summary>
    public async Task<Answer> SendAsync(HttpMethod method, string pathAndQuery, HttpContent? content, CancellationToken ct,
        IEnumerable<KeyValuePair<string, string>>? headers = null)
    {
        var uri = Combine(options.BaseAddress, pathAndQuery);
        string? refused = null;
        // Content is buffered once so the retry with a fresh token can send it again.
        var body = content is null ? null : await content.ReadAsByteArrayAsync(ct);
        var contentType = content?.Headers.ContentType;
        for (var attempt = 0; ; attempt++)
        {
            using var request = new HttpRequestMessage(method, uri);
            if (body is not null)
            {
                request.Content = new ByteArrayContent(body);
                request.Content.Headers.ContentType = contentType;
            }
            request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
            if (headers is not null) foreach (var (name, value) in headers) request.Headers.TryAddWithoutValidation(name, value);
            var token = await tokens.GetAsync(refused, ct);
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
            HttpResponseMessage response;
            try { response = await client.SendAsync(request, ct); }
            catch (HttpRequestException e) { throw new ParleyApiException(0, null, e.Message, null, method.Method, uri.AbsolutePath, inner: e); }
            using (response)
            {
                if (response.StatusCode == System.Net.HttpStatusCode.Unauthorized && attempt == 0 && tokens.CanRenew)
                {
                    refused = token;   // expired or revoked: one more try with a new token
                    continue;
                }
                var bytes = await response.Content.ReadAsByteArrayAsync(ct);
                return new Answer((int)response.StatusCode, bytes, response.Headers, method.Method, uri.AbsolutePath);
            }
        }
    }

    public async Task<T> GetAsync<T>(string path, JsonTypeInfo<T> type, CancellationToken ct) =>
        (await SendAsync(HttpMethod.Get, path, null, ct)).Read(type);

    public async Task<TOut> SendJsonAsync<TIn, TOut>(HttpMethod method, string path, TIn body, JsonTypeInfo<TIn> inType,
        JsonTypeInfo<TOut> outType, CancellationToken ct) =>
        (await SendAsync(method, path, JsonContent.Create(body, inType), ct)).Read(outType);

    public async Task DeleteAsync(string path, CancellationToken ct) => (await SendAsync(HttpMethod.Delete, path, null, ct)).EnsureSuccess();

    public static string? CorrelationId(HttpResponseMessage response) =>
        response.Headers.TryGetValues(CorrelationHeader, out var values) ? values.FirstOrDefault() : null;

    /// <summary><c>?a=1&amp;b=2</c> of the parameters that are set, escaped.</summary>
    public static string Query(string path, params (string Name, object? Value)[] parameters)
    {
        var set = parameters.Where(p => p.Value is not null)
            .Select(p => $"{p.Name}={Uri.EscapeDataString(Convert.ToString(p.Value, System.Globalization.CultureInfo.InvariantCulture)!)}")
            .ToList();
        return set.Count == 0 ? path : path + "?" + string.Join('&', set);
    }

    public static string Segment(string id) => Uri.EscapeDataString(id);

    /// <summary>The base address and a path: a gateway's path prefix on the base (<c>https://host/api-gw</c>) is kept, not replaced.</summary>
    public static Uri Combine(Uri baseAddress, string pathAndQuery) =>
        new(baseAddress.GetLeftPart(UriPartial.Path).TrimEnd('/') + pathAndQuery);
}

/// <summary>An answer read whole: status, body, headers.</summary>
sealed record Answer(int Status, byte[] Body, HttpResponseHeaders Headers, string Method, string Path)
{
    public bool IsSuccess => Status is >= 200 and < 300;

    public string? Header(string name) => Headers.TryGetValues(name, out var values) ? values.FirstOrDefault() : null;

    public T Read<T>(JsonTypeInfo<T> type)
    {
        EnsureSuccess();
        try
        {
            return JsonSerializer.Deserialize(Body, type) ?? throw Malformed(typeof(T).Name, null);
        }
        catch (JsonException e) { throw Malformed(typeof(T).Name, e); }
    }

    ParleyApiException Malformed(string expected, Exception? inner) =>
        new(Status, null, $"The answer is not the expected {expected} JSON.", Header(Http.CorrelationHeader), Method, Path, inner: inner);

    public void EnsureSuccess()
    {
        if (!IsSuccess) throw Failure();
    }

    /// <summary>The platform's error body when there is one; else the text (clipped by the exception).</summary>
    public ParleyApiException Failure()
    {
        ErrorBody? error = null;
        try { error = Body.Length == 0 ? null : JsonSerializer.Deserialize(Body, ParleyJson.Wire.ErrorBody); }
        catch (JsonException) { }
        if (error is not null)
            return new ParleyApiException(Status, error.Code, error.Message, error.ContextId ?? Header(Http.CorrelationHeader), Method, Path, error);
        var text = Body.Length == 0 ? null : System.Text.Encoding.UTF8.GetString(Body);
        return new ParleyApiException(Status, null, text, Header(Http.CorrelationHeader), Method, Path);
    }
}
