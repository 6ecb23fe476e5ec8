using System.Reflection;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Parley.Protocol;
using Xunit.Abstractions;

namespace Parley.E2E.Tests;

/// <summary>
/// Frames and answers are rendered on the source generator's fast path (<see cref="ParleyJson.FastPath{T}"/>): for every
/// wire type, a value with every field filled (texts that need escaping, nested objects, lists, maps) must come out byte
/// for byte as the serializer's metadata path writes it, into the frame's writer and into the answer's.
/// </summary>
public sealed class ParleyJsonFastPathTests(ITestOutputHelper output)
{
    const string Awkward = "Grüße ✓ <b>&amp;</b> 'quoted' \"twice\" \\ / \u2028 \u0001 🎉";

    static readonly JsonWriterOptions FrameWriter = new();   // the guest frames' writer: the default encoder
    static readonly JsonWriterOptions AnswerWriter = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping, SkipValidation = true };

    [Fact]
    public void EveryWireType_WritesTheSameBytes_OnTheFastPath()
    {
        var compared = new List<string>();
        foreach (var property in typeof(ParleyJson).GetProperties(BindingFlags.Public | BindingFlags.Instance)
                     .Where(p => p.PropertyType.IsGenericType && p.PropertyType.GetGenericTypeDefinition() == typeof(JsonTypeInfo<>)))
        {
            var type = (JsonTypeInfo)property.GetValue(ParleyJson.Wire)!;
            if (type.Kind == JsonTypeInfoKind.None) continue;      // a scalar: no fast path of its own
            var json = Sample(type.Type, ParleyJson.Wire.Options, depth: 0);
            var value = JsonSerializer.Deserialize(json, type);
            var fast = (JsonTypeInfo)typeof(ParleyJson).GetMethod(nameof(ParleyJson.FastPath))!.MakeGenericMethod(type.Type)
                .Invoke(null, [type])!;
            Assert.NotSame(type, fast);
            Assert.Null(fast.Options.Encoder);                      // the options the serializer's fast path needs
            foreach (var writer in new[] { FrameWriter, AnswerWriter })
                Assert.Equal(Encoding.UTF8.GetString(Render(value, type, writer)), Encoding.UTF8.GetString(Render(value, fast, writer)));
            compared.Add(type.Type.Name);
        }
        output.WriteLine($"{compared.Count} types: {string.Join(", ", compared)}");
        Assert.Contains(nameof(StructuredMessage), compared);
        Assert.Contains(nameof(MessageData), compared);
        Assert.Contains(nameof(ErrorBody), compared);
        Assert.True(compared.Count >= 40, $"only {compared.Count} wire types compared");
    }

    [Fact]
    public void AnotherContextsType_IsLeftAsItIs()
    {
        var type = (JsonTypeInfo<StructuredMessage>)JsonSerializerOptions.Default.GetTypeInfo(typeof(StructuredMessage));
        Assert.Same(type, ParleyJson.FastPath(type));
    }

    static byte[] Render(object? value, JsonTypeInfo type, JsonWriterOptions options)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer, options))
        {
            writer.WriteStartObject();
            writer.WritePropertyName("body"u8);
            JsonSerializer.Serialize(writer, value, type);
            writer.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>JSON for a value of <paramref name="t"/> with every field present, built from the type's own metadata.</summary>
    static string Sample(Type t, JsonSerializerOptions o, int depth)
    {
        t = Nullable.GetUnderlyingType(t) ?? t;
        if (t == typeof(string) || t == typeof(object)) return JsonSerializer.Serialize(Awkward);
        if (t == typeof(JsonElement)) return $$"""{"a":[1,{{JsonSerializer.Serialize(Awkward)}}],"b":null}""";
        if (t.IsEnum) return JsonSerializer.Serialize(Enum.GetValues(t).GetValue(Enum.GetValues(t).Length - 1), t, o);
        if (t == typeof(DateTimeOffset)) return "\"2026-12-03T10:00:00.123+00:00\"";
        if (t == typeof(DateTime)) return "\"2026-12-03T10:00:00.123Z\"";
        if (t == typeof(bool)) return "true";
        if (t.IsPrimitive || t == typeof(decimal)) return "7";
        var info = o.GetTypeInfo(t);
        switch (info.Kind)
        {
            case JsonTypeInfoKind.Enumerable:
                return $"[{Sample(info.ElementType!, o, depth + 1)}]";
            case JsonTypeInfoKind.Dictionary:
                return $$"""{"clé ✓ 'k'":{{Sample(info.ElementType!, o, depth + 1)}}}""";
            case JsonTypeInfoKind.Object when depth < 6:
                return "{" + string.Join(",", info.Properties.Select(p => $"{JsonSerializer.Serialize(p.Name)}:{Sample(p.PropertyType, o, depth + 1)}")) + "}";
            case JsonTypeInfoKind.Object:
                return "null";
            default:
                return JsonSerializer.Serialize(t.IsValueType ? Activator.CreateInstance(t) : null, t, o);
        }
    }
}
