using Parley.Core;

namespace Parley.E2E.Tests;

/// <summary>The real store, every call passed on: a test overrides only the call it holds at a gate.</summary>
abstract class DelegatingConversationStore(IConversationStore inner) : IConversationStore
{
    protected IConversationStore Inner => inner;

    public virtual Task<IReadOnlyList<LiveConversation>> ListLiveAsync(LiveFilter filter, int max, string? afterId, CancellationToken ct) =>
        inner.ListLiveAsync(filter, max, afterId, ct);
    public virtual Task<IReadOnlyList<CommitResult>> CommitManyAsync(IReadOnlyList<Commit> commits, CancellationToken ct) => inner.CommitManyAsync(commits, ct);
    public Task<Conversation?> LoadAsync(string conversationId, CancellationToken ct) => inner.LoadAsync(conversationId, ct);
    public Task<CommitResult> CommitAsync(Commit commit, CancellationToken ct) => inner.CommitAsync(commit, ct);
    public Task<Page<ConversationMessage>> ListMessagesAsync(string conversationId, int pageSize, int pageNumber, CancellationToken ct) =>
        inner.ListMessagesAsync(conversationId, pageSize, pageNumber, ct);
    public Task<ConversationMessage?> GetMessageAsync(string messageId, CancellationToken ct) => inner.GetMessageAsync(messageId, ct);
    public Task<ConversationMessage?> FindByExternalKeyAsync(string externalKey, CancellationToken ct) => inner.FindByExternalKeyAsync(externalKey, ct);
    public Task<bool> SetMessageStatusAsync(string messageId, string status, CancellationToken ct) => inner.SetMessageStatusAsync(messageId, status, ct);
    public Task<Page<Conversation>> QueryAsync(ConversationFilter filter, CancellationToken ct) => inner.QueryAsync(filter, ct);
    public Task<IReadOnlyList<string>> ListIdleAsync(DateTimeOffset now, int max, CancellationToken ct) => inner.ListIdleAsync(now, max, ct);
    public Task<DateTimeOffset?> LastActivityAsync(string conversationId, CancellationToken ct) => inner.LastActivityAsync(conversationId, ct);
}
