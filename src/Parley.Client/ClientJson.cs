using System.Text.Json;
using System.Text.Json.Serialization;

namespace Parley.Client;

/// <summary>A subscription request's entry: <c>{"id":"&lt;topic&gt;"}</c>.</summary>
sealed record TopicRef(string Id);

/// <summary>The few request shapes only the client writes (the server reads them without a record of its own).</summary>
[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(List<TopicRef>))]
partial class ClientJson : JsonSerializerContext;
