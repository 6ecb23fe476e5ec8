using Parley.Protocol;

namespace Parley.Client;

/// <summary>
/// The one exception the client throws for an answer it did not expect: the HTTP status, the platform's error body
/// (<see cref="Code"/>, <see cref="ServerMessage"/>; an OAuth error's <c>error</c> and <c>description</c> for the token
/// endpoint) and the request's correlation id (<see cref="ContextId"/>: the body's <c>contextId</c>, else the
/// <c>ININ-Correlation-Id</c> header), which is what the server's logs and Genesys support ask for.
/// </summary>
public sealed class ParleyApiException : Exception
{
    /// <summary>The longest server text quoted in <see cref="Exception.Message"/>: a misbehaving proxy's page is not a message.</summary>
    const int MaxQuoted = 300;

    public ParleyApiException(int status, string? code, string? serverMessage, string? contextId, string method, string path,
        ErrorBody? body = null, Exception? inner = null)
        : base(Describe(status, code, serverMessage, contextId, method, path), inner)
    {
        Status = status;
        Code = code;
        ServerMessage = serverMessage;
        ContextId = contextId;
        Method = method;
        Path = path;
        Body = body;
    }

    /// <summary>The HTTP status (0 when no answer came: the connection failed).</summary>
    public int Status { get; }

    /// <summary>The platform's error code (<c>not.found</c>, <c>conversation.already.disconnected</c>, …) or the OAuth <c>error</c>.</summary>
    public string? Code { get; }

    /// <summary>The server's own message, as it wrote it.</summary>
    public string? ServerMessage { get; }

    /// <summary>The request's correlation id, to quote when asking about it.</summary>
    public string? ContextId { get; }

    public string Method { get; }

    /// <summary>The request's path (no query string: it may carry ids a log should not).</summary>
    public string Path { get; }

    /// <summary>The platform's error body, when the answer had one.</summary>
    public ErrorBody? Body { get; }

    static string Describe(int status, string? code, string? message, string? contextId, string method, string path)
    {
        var text = message is { Length: > MaxQuoted } ? message[..MaxQuoted] + "…" : message;
        var head = status == 0 ? $"{method} {path} failed" : $"{method} {path} answered {status}";
        var what = (code, text) switch
        {
            (null, null) => "",
            (null, _) => $": {text}",
            (_, null) => $" {code}",
            _ => $" {code}: {text}",
        };
        return contextId is null ? head + what : $"{head}{what} (contextId {contextId})";
    }
}
