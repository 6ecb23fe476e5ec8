using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Parley.Protocol;
using Parley.Server.Protocol;

namespace Parley.E2E.Tests;

/// <summary>A Platform answer rendered into a pooled buffer and written with its length: the serializer's own bytes.</summary>
public sealed class PlatformAnswerTests
{
    static async Task<(byte[] Body, HttpResponse Response)> WriteAsync<T>(T value, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> type)
    {
        var http = new DefaultHttpContext();
        var body = new MemoryStream();
        http.Response.Body = body;
        await PlatformResults.WriteAsync(http, 200, value, type);
        return (body.ToArray(), http.Response);
    }

    [Fact]
    public async Task AnAnswer_IsTheSerializersBytes_WithItsLength()
    {
        var message = new MessageData
        {
            Id = "m-1", Timestamp = "2026-12-03T10:00:00.000Z", Direction = "Outbound", Status = "Sent",
            TextBody = "Grüße ✓ <b>&amp;</b> 'quoted' \"twice\" \u2028 🎉", Sequence = 7,
        };
        var (bytes, response) = await WriteAsync(message, ParleyJson.Wire.MessageData);
        Assert.Equal(JsonSerializer.SerializeToUtf8Bytes(message, ParleyJson.Wire.MessageData), bytes);
        Assert.Equal(bytes.Length, response.ContentLength);
        Assert.Equal("application/json; charset=utf-8", response.ContentType);
    }

    [Fact]
    public async Task ALargeAnswer_GrowsItsBuffer_AndKeepsEveryByte()
    {
        var errors = Enumerable.Range(0, 5_000).Select(i => new ErrorBody
        {
            Message = $"error {i} " + new string('x', 40), Code = "bad.request", Status = 400, ContextId = i.ToString(),
        }).ToList();
        var body = new ErrorBody { Message = "many", Code = "bad.request", Status = 400, ContextId = "c", Errors = errors };
        var (bytes, response) = await WriteAsync(body, ParleyJson.Wire.ErrorBody);
        Assert.True(bytes.Length > 256 * 1024);
        Assert.Equal(JsonSerializer.SerializeToUtf8Bytes(body, ParleyJson.Wire.ErrorBody), bytes);
        Assert.Equal(bytes.Length, response.ContentLength);
    }
}
