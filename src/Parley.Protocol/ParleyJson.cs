using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;

namespace Parley.Protocol;

/// <summary>Source-generated JSON for every wire type: camelCase, nulls left out, as the platform writes.</summary>
[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(GuestRequest))]
[JsonSerializable(typeof(SessionResponse))]
[JsonSerializable(typeof(StructuredMessage))]
[JsonSerializable(typeof(JwtResponse))]
[JsonSerializable(typeof(TooManyRequestsBody))]
[JsonSerializable(typeof(EmptyBody))]
[JsonSerializable(typeof(WebMessagingMessageEntityList))]
[JsonSerializable(typeof(DeploymentConfig))]
[JsonSerializable(typeof(ErrorBody))]
[JsonSerializable(typeof(OAuthError))]
[JsonSerializable(typeof(TokenResponse))]
[JsonSerializable(typeof(MessageConversation))]
[JsonSerializable(typeof(EntityListing<MessageConversation>))]
[JsonSerializable(typeof(ConversationWire))]
[JsonSerializable(typeof(StateChangeRequest))]
[JsonSerializable(typeof(AdditionalMessage))]
[JsonSerializable(typeof(MessageTypingEventRequest))]
[JsonSerializable(typeof(MessageData))]
[JsonSerializable(typeof(AgentlessRequest))]
[JsonSerializable(typeof(AgentlessResponse))]
[JsonSerializable(typeof(AnalyticsConversation))]
[JsonSerializable(typeof(AnalyticsConversationList))]
[JsonSerializable(typeof(ConversationQuery))]
[JsonSerializable(typeof(AnalyticsQueryResponse))]
[JsonSerializable(typeof(TerminationAuditWire))]
[JsonSerializable(typeof(EntityListing<TerminationAuditWire>))]
[JsonSerializable(typeof(DeploymentWire))]
[JsonSerializable(typeof(EntityListing<DeploymentWire>))]
[JsonSerializable(typeof(GuestSessionWire))]
[JsonSerializable(typeof(EntityListing<GuestSessionWire>))]
[JsonSerializable(typeof(OAuthClientRequest))]
[JsonSerializable(typeof(OAuthClientWire))]
[JsonSerializable(typeof(EntityListing<OAuthClientWire>))]
[JsonSerializable(typeof(CredentialAuditWire))]
[JsonSerializable(typeof(EntityListing<CredentialAuditWire>))]
[JsonSerializable(typeof(SigningKeyWire))]
[JsonSerializable(typeof(EntityListing<SigningKeyWire>))]
[JsonSerializable(typeof(SigningKeyRotateRequest))]
[JsonSerializable(typeof(OpenIntegrationRequest))]
[JsonSerializable(typeof(OpenIntegrationWire))]
[JsonSerializable(typeof(EntityListing<OpenIntegrationWire>))]
[JsonSerializable(typeof(OpenInbound))]
[JsonSerializable(typeof(OpenNormalized))]
[JsonSerializable(typeof(DeliveryWire))]
[JsonSerializable(typeof(EntityListing<DeliveryWire>))]
[JsonSerializable(typeof(ChannelWire))]
[JsonSerializable(typeof(EntitiesWire<ChannelWire>))]
[JsonSerializable(typeof(EntitiesWire<ChannelTopicWire>))]
[JsonSerializable(typeof(EntitiesWire<AvailableTopicWire>))]
[JsonSerializable(typeof(QueueMessageConversationEvent))]
[JsonSerializable(typeof(QueueConversationEvent))]
[JsonSerializable(typeof(BulkTerminationRequest))]
[JsonSerializable(typeof(BulkTerminationWire))]
[JsonSerializable(typeof(EntityListing<BulkTerminationWire>))]
[JsonSerializable(typeof(TerminationPolicyRequest))]
[JsonSerializable(typeof(TerminationPolicyWire))]
[JsonSerializable(typeof(EntityListing<TerminationPolicyWire>))]
[JsonSerializable(typeof(PolicyPreviewWire))]
[JsonSerializable(typeof(TerminationReceiptWire))]
[JsonSerializable(typeof(EntityListing<TerminationReceiptWire>))]
[JsonSerializable(typeof(CustomerDetailEvent))]
[JsonSerializable(typeof(NotificationMetadata))]
[JsonSerializable(typeof(ChannelFrame))]
[JsonSerializable(typeof(QueueWire))]
[JsonSerializable(typeof(EntityListing<QueueWire>))]
[JsonSerializable(typeof(UserWire))]
[JsonSerializable(typeof(EntityListing<UserWire>))]
[JsonSerializable(typeof(UserRequest))]
[JsonSerializable(typeof(UserPasswordRequest))]
[JsonSerializable(typeof(JsonElement))]
[JsonSerializable(typeof(string))]
public partial class ParleyJson : JsonSerializerContext
{
    /// <summary>
    /// The instance every endpoint uses: as <see cref="Default"/>, but without escaping quotes and apostrophes, so error
    /// texts read as written (the bodies are served as application/json, never embedded in HTML).
    /// </summary>
    public static ParleyJson Wire { get; } = new(new JsonSerializerOptions(JsonSerializerDefaults.Web)
    {
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    });

    /// <summary>
    /// <paramref name="type"/> as the source generator's fast path writes it (straight to the writer: no serializer state,
    /// no frame stack per call), for rendering into a writer that already carries the encoder it needs. The serializer
    /// takes that path only under options without an encoder of their own, which <see cref="Wire"/>'s are not; the bytes
    /// are the same, since values are escaped by the writer and every property name is ASCII (ParleyJsonFastPathTests).
    /// </summary>
    public static JsonTypeInfo<T> FastPath<T>(JsonTypeInfo<T> type) =>
        ReferenceEquals(type.Options, Wire.Options) ? Fast<T>.Info ??= (JsonTypeInfo<T>)Default.GetTypeInfo(typeof(T))! : type;

    static class Fast<T>
    {
        public static JsonTypeInfo<T>? Info;
    }
}

public static class Wire
{
    /// <summary>The platform's time format: ISO-8601 UTC, always milliseconds and <c>Z</c> (docs/compatibility.md §Analytics details).</summary>
    public static string Time(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);

    public static string? Time(DateTimeOffset? t) => t is { } v ? Time(v) : null;

    /// <summary>
    /// A Guest API server frame: <c>{"type","class","code","body","tracingId"}</c> (docs/compatibility.md §Guest frames). Written once and the
    /// same bytes handed to every socket of the session.
    /// </summary>
    public static byte[] Frame<T>(string type, string @class, int code, T body, JsonTypeInfo<T> bodyType, string? tracingId = null)
    {
        var (buffer, w) = RenderBuffer.Take();
        {
            w.WriteStartObject();
            w.WriteString("type"u8, type);
            w.WriteString("class"u8, @class);
            w.WriteNumber("code"u8, code);
            w.WritePropertyName("body"u8);
            JsonSerializer.Serialize(w, body, ParleyJson.FastPath(bodyType));
            if (tracingId is not null) w.WriteString("tracingId"u8, tracingId);
            w.WriteEndObject();
        }
        return RenderBuffer.Done(buffer, w);
    }

    /// <summary>
    /// A notification channel frame: <c>{"topicName","version":"2","eventBody","metadata":{"CorrelationId"}}</c>
    /// (docs/notifications.md). Rendered once per event and the same bytes queued on every subscribed channel.
    /// </summary>
    public static byte[] NotificationFrame<T>(string topicName, T eventBody, JsonTypeInfo<T> bodyType, string correlationId)
    {
        var (buffer, w) = RenderBuffer.Take();
        {
            w.WriteStartObject();
            w.WriteString("topicName"u8, topicName);
            w.WriteString("version"u8, "2");
            w.WritePropertyName("eventBody"u8);
            JsonSerializer.Serialize(w, eventBody, ParleyJson.FastPath(bodyType));
            w.WriteStartObject("metadata"u8);
            w.WriteString("CorrelationId"u8, correlationId);
            w.WriteEndObject();
            w.WriteEndObject();
        }
        return RenderBuffer.Done(buffer, w);
    }

    /// <summary>An error frame: <c>class</c> "string", the body a JSON string (docs/compatibility.md §Guest errors).</summary>
    public static byte[] ErrorFrame(int code, string text, string? tracingId = null) =>
        Frame("response", "string", code, text, ParleyJson.Wire.String, tracingId);
}

/// <summary>
/// The buffer and writer a frame is rendered with, one pair per thread and reused: a frame then allocates its bytes
/// only, not a writer and a growing buffer each time (docs/performance.md). Rendering is synchronous and never nested,
/// so a thread's pair is never in use twice. The writer keeps its default options, so frames are byte for byte as before.
/// </summary>
static class RenderBuffer
{
    /// <summary>A buffer grown past this by a rare large frame is let go rather than kept by the thread.</summary>
    const int KeepAtMost = 64 * 1024;

    [ThreadStatic] static System.Buffers.ArrayBufferWriter<byte>? t_buffer;
    [ThreadStatic] static Utf8JsonWriter? t_writer;

    public static (System.Buffers.ArrayBufferWriter<byte> Buffer, Utf8JsonWriter Writer) Take()
    {
        var buffer = t_buffer ?? new System.Buffers.ArrayBufferWriter<byte>(1024);
        var writer = t_writer ?? new Utf8JsonWriter(buffer);
        t_buffer = null;   // taken: a throw midway leaves the thread a fresh pair next time, never a half-written one
        t_writer = null;
        buffer.ResetWrittenCount();
        writer.Reset(buffer);
        return (buffer, writer);
    }

    public static byte[] Done(System.Buffers.ArrayBufferWriter<byte> buffer, Utf8JsonWriter writer)
    {
        writer.Flush();
        var frame = buffer.WrittenSpan.ToArray();
        if (buffer.Capacity <= KeepAtMost) (t_buffer, t_writer) = (buffer, writer);
        return frame;
    }
}
