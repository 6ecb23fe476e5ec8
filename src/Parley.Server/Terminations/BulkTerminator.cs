using Parley.Core;

namespace Parley.Server.Terminations;

// PLACEHOLDER until branch 'bulk' lands (its file replaces this one at the merge): the engine seam of issue 14.

public sealed class BulkTerminator(IConversationStore store, Conversations conversations, IAuditLog audit)
{
    public async Task<BulkCounts> EndAsync(LiveFilter filter, Actor by, EndLever lever, string? reason, IProgress<BulkCounts>? progress, CancellationToken ct)
    {
        var counts = new BulkCounts();
        string? after = null;
        while (true)
        {
            var page = await store.ListLiveAsync(filter, 500, after, ct);
            if (page.Count == 0) return counts;
            foreach (var c in page)
            {
                var outcome = await conversations.HandleAsync(c.Id, new EndConversation(by, lever, reason), ct);
                var sockets = outcome.Status == OutcomeStatus.Done ? await Conversations.AwaitDeliveryAsync(outcome, audit, ct) : 0;
                counts += new BulkCounts(1, outcome.Status == OutcomeStatus.Done ? 1 : 0, outcome.Status == OutcomeStatus.NoOp ? 1 : 0, 0, sockets, 0);
            }
            after = page[^1].Id;
        }
    }
}
