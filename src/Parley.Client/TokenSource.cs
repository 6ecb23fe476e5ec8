using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Parley.Protocol;

namespace Parley.Client;

/// <summary>
/// The bearer token of every request: a fixed one, or a client-credentials token fetched on first use and renewed
/// before it expires (or at once when the server refuses it). One fetch at a time; callers waiting for it share it.
/// </summary>
sealed class TokenSource(HttpClient http, ParleyClientOptions options)
{
    readonly SemaphoreSlim _gate = new(1, 1);
    readonly Uri _endpoint = options.TokenEndpoint ?? Http.Combine(options.BaseAddress, "/oauth/token");
    string? _token = options.AccessToken;
    DateTimeOffset _renewAt = DateTimeOffset.MaxValue;

    public bool CanRenew => options.ClientId is not null;

    /// <summary>The current token; a new one when it is due for renewal or when <paramref name="refused"/> (the server said 401 to it).</summary>
    public async ValueTask<string> GetAsync(string? refused, CancellationToken ct)
    {
        if (!CanRenew) return _token!;
        var token = Volatile.Read(ref _token);
        if (token is not null && token != refused && options.Clock.GetUtcNow() < _renewAt) return token;
        await _gate.WaitAsync(ct);
        try
        {
            // Another caller may have renewed it while this one waited.
            if (_token is not null && _token != refused && options.Clock.GetUtcNow() < _renewAt) return _token;
            var (fresh, lifetime) = await FetchAsync(ct);
            var margin = TimeSpan.FromTicks(Math.Min(options.TokenRefreshMargin.Ticks, lifetime.Ticks / 2));
            _renewAt = options.Clock.GetUtcNow() + lifetime - margin;
            Volatile.Write(ref _token, fresh);
            return fresh;
        }
        finally { _gate.Release(); }
    }

    async Task<(string Token, TimeSpan Lifetime)> FetchAsync(CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, _endpoint)
        {
            Content = new FormUrlEncodedContent([new("grant_type", "client_credentials")]),
        };
        request.Headers.Authorization = new AuthenticationHeaderValue("Basic",
            Convert.ToBase64String(Encoding.UTF8.GetBytes($"{options.ClientId}:{options.ClientSecret}")));
        HttpResponseMessage response;
        try { response = await http.SendAsync(request, ct); }
        catch (HttpRequestException e) { throw new ParleyApiException(0, null, e.Message, null, "POST", _endpoint.AbsolutePath, inner: e); }
        using (response)
        {
            var text = await response.Content.ReadAsStringAsync(ct);
            if (!response.IsSuccessStatusCode) throw OAuthFailure(response, text);
            TokenResponse? body;
            try { body = JsonSerializer.Deserialize(text, ParleyJson.Wire.TokenResponse); }
            catch (JsonException e) { throw new ParleyApiException((int)response.StatusCode, null, "The token endpoint's answer is not a token.", null, "POST", _endpoint.AbsolutePath, inner: e); }
            if (body is null || string.IsNullOrEmpty(body.AccessToken))
                throw new ParleyApiException((int)response.StatusCode, null, "The token endpoint's answer has no access_token.", null, "POST", _endpoint.AbsolutePath);
            return (body.AccessToken, TimeSpan.FromSeconds(Math.Max(1, body.ExpiresIn)));
        }
    }

    /// <summary>The token endpoint answers in RFC 6749's form (<c>error</c>, <c>error_description</c>); a proxy might not.</summary>
    ParleyApiException OAuthFailure(HttpResponseMessage response, string text)
    {
        string? code = null, message = null;
        try
        {
            using var doc = JsonDocument.Parse(text);
            if (doc.RootElement.ValueKind == JsonValueKind.Object)
            {
                if (doc.RootElement.TryGetProperty("error", out var e) && e.ValueKind == JsonValueKind.String) code = e.GetString();
                if (doc.RootElement.TryGetProperty("error_description", out var d) && d.ValueKind == JsonValueKind.String) message = d.GetString();
                else if (doc.RootElement.TryGetProperty("message", out var m) && m.ValueKind == JsonValueKind.String) message = m.GetString();
            }
        }
        catch (JsonException) { message = text.Length == 0 ? null : text; }
        return new ParleyApiException((int)response.StatusCode, code, message, Http.CorrelationId(response), "POST", _endpoint.AbsolutePath);
    }
}
