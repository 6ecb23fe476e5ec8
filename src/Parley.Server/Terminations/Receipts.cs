using System.Threading.Channels;
using Parley.Core;
using Parley.Protocol;
using Parley.Server.Notifications;

namespace Parley.Server.Terminations;

/// <summary>
/// Records, on this node, the outcome of every end frame written to a guest socket here (docs/ending-sessions.md
/// "Receipts"). Off the end's own path: the socket write only queues a row; one background loop writes what is queued in
/// batches, one transaction for many rows (a bulk end of thousands pays a few commits, not one per socket), then tells
/// every node the receipts changed. The queue is bounded (<see cref="ParleyOptions.ReceiptQueueRows"/>): a row that
/// finds it full, or a batch the store refuses after retries, is lost, and its receipt stays pending; never delivered.
/// </summary>
public sealed class ReceiptRecorder(IReceiptStore store, IServiceProvider services, ParleyOptions options, ILoggerFactory loggers)
    : BackgroundService
{
    // Resolved when first needed: a backplane's construction needs this node's socket hub, which needs this recorder.
    IChangeBroadcast Nodes => field ??= services.GetRequiredService<IChangeBroadcast>();

    const int BatchRows = 2000;
    readonly ILogger _log = loggers.CreateLogger(ParleyLog.Conversations);
    readonly Channel<SocketReceipt> _queue = Channel.CreateBounded<SocketReceipt>(
        new BoundedChannelOptions(options.ReceiptQueueRows) { SingleReader = true, FullMode = BoundedChannelFullMode.DropWrite });
    long _lost;

    /// <summary>This node's id, as its socket rows name it (<c>Parley:Node:Id</c>).</summary>
    public string NodeId => options.NodeId;

    /// <summary>Rows not recorded since start (queue full, or the store refused their batch).</summary>
    public long Lost => Interlocked.Read(ref _lost);

    /// <summary>Queues one socket's outcome; never waits.</summary>
    public void Record(string terminationId, string conversationId, string socketId, bool delivered, DateTimeOffset at, string? error)
    {
        if (!_queue.Writer.TryWrite(new SocketReceipt(terminationId, conversationId, NodeId, socketId, delivered, at, error)))
            Interlocked.Increment(ref _lost);
    }

    protected override async Task ExecuteAsync(CancellationToken stop)
    {
        var batch = new List<SocketReceipt>(BatchRows);
        try
        {
            while (await _queue.Reader.WaitToReadAsync(stop))
                await WriteBatchAsync(batch, stop);
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested) { }
        // Stopping: what is queued still goes in (best effort, briefly).
        await WriteBatchAsync(batch, CancellationToken.None);
    }

    async Task WriteBatchAsync(List<SocketReceipt> batch, CancellationToken stop)
    {
        batch.Clear();
        while (batch.Count < BatchRows && _queue.Reader.TryRead(out var row)) batch.Add(row);
        if (batch.Count == 0) return;
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await store.RecordSocketsAsync(batch, CancellationToken.None);
                break;
            }
            catch (Exception e) when (attempt < 3 && !stop.IsCancellationRequested && e is StoreUnavailableException)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(200 * attempt), CancellationToken.None);
            }
            catch (Exception e)
            {
                Interlocked.Add(ref _lost, batch.Count);
                _log.LogWarning(e, "{Rows} socket receipt rows could not be recorded; their terminations' receipts stay pending.", batch.Count);
                return;
            }
        }
        foreach (var id in batch.Select(r => r.TerminationId).Distinct()) Nodes.ReceiptChanged(id);
    }
}

/// <summary>
/// Reads a termination's receipt: its audit row, the socket rows every node recorded, and its channel deliveries as the
/// outbox holds them now. The state never claims what did not happen (docs/ending-sessions.md "Receipts"):
/// <list type="bullet">
/// <item><b>pending</b> while the fan-out has not answered (the audit row has no socket count yet), or fewer sockets are
/// recorded as delivered than the fan-out counted as written, or any channel delivery is still pending;</item>
/// <item><b>failed</b> otherwise, if any socket write failed or any channel delivery is dead;</item>
/// <item><b>none</b> otherwise, if the fan-out counted no socket written and nothing was recorded (no socket rows, no
/// channel deliveries): the end had nothing to deliver;</item>
/// <item><b>delivered</b> otherwise.</item>
/// </list>
/// </summary>
public sealed class ReceiptReader(IReceiptStore store, IAuditLog audit)
{
    public async Task<TerminationReceiptWire?> GetAsync(string terminationId, CancellationToken ct) =>
        await store.GetAuditAsync(terminationId, ct) is { } row ? await ReceiptOfAsync(row, ct) : null;

    /// <summary>The receipts of a conversation's terminations (every termination when null), newest first, one page.</summary>
    public async Task<Page<TerminationReceiptWire>> ListAsync(string? conversationId, int pageSize, int pageNumber, CancellationToken ct)
    {
        var page = await audit.ListAsync(conversationId, pageSize, pageNumber, ct);
        var list = new List<TerminationReceiptWire>(page.Entities.Count);
        foreach (var row in page.Entities) list.Add(await ReceiptOfAsync(row, ct));
        return new Page<TerminationReceiptWire>(list, page.PageSize, page.PageNumber, page.Total);
    }

    async Task<TerminationReceiptWire> ReceiptOfAsync(TerminationAudit row, CancellationToken ct) =>
        Build(row, await store.ListSocketsAsync(row.Id, ct), await store.ListChannelDeliveriesAsync(row.Id, ct));

    public static string UriOf(string terminationId) => $"/api/v2/parley/receipts/{terminationId}";

    public static TerminationReceiptWire Build(TerminationAudit row, IReadOnlyList<SocketReceipt> sockets, IReadOnlyList<OutboxDelivery> channels)
    {
        var delivered = sockets.Count(s => s.Delivered);
        var failed = sockets.Count - delivered;
        var told = row.SocketsNotified;
        // Sockets still unaccounted for: the fan-out has not answered, or counted more writes than are recorded yet.
        var socketsPending = told is not { } n || delivered < n;
        var channelsPending = channels.Any(c => c.State == DeliveryState.Pending);
        var anyFailed = failed > 0 || channels.Any(c => c.State == DeliveryState.Dead);
        // Nothing delivered because there was nothing to deliver (no Disconnect frame, no socket, no end notice): say so,
        // rather than "delivered" with nothing behind it.
        var nothing = told == 0 && sockets.Count == 0 && channels.Count == 0;
        var state = socketsPending || channelsPending ? ReceiptStates.Pending
            : anyFailed ? ReceiptStates.Failed
            : nothing ? ReceiptStates.NothingToDeliver
            : ReceiptStates.Delivered;
        return new TerminationReceiptWire
        {
            Id = row.Id,
            ConversationId = row.ConversationId,
            State = state,
            Lever = row.Lever.ToString(),
            At = Wire.Time(row.At),
            // Those the fan-out counted as written (or more, when a late node recorded its own) and those that failed.
            SocketsTargeted = told is { } t ? Math.Max(t, delivered) + failed : null,
            Sockets = [.. sockets.Select(s => new SocketReceiptWire
            {
                Node = s.NodeId, SocketId = s.SocketId, State = s.Delivered ? ReceiptStates.Delivered : ReceiptStates.Failed,
                At = Wire.Time(s.At), Error = s.Error,
            })],
            Channels = [.. channels.Select(c => new ChannelReceiptWire
            {
                DeliveryId = c.Item.Id, IntegrationId = c.Item.Destination,
                State = c.State switch { DeliveryState.Delivered => ReceiptStates.Delivered, DeliveryState.Dead => ReceiptStates.Failed, _ => ReceiptStates.Pending },
                Attempts = c.Attempts, LastStatus = c.LastStatus, LastError = c.LastError,
                DeliveredAt = c.DeliveredAt is { } at ? Wire.Time(at) : null,
            })],
            SelfUri = UriOf(row.Id),
        };
    }
}

/// <summary>
/// This node's leg of the receipts topic (<see cref="NotificationTopics.TerminationReceipts"/>): a receipt changed
/// somewhere, so when a channel here is subscribed, read it as stored and publish it. One loop, in the order the changes
/// came, so a later state is never overtaken by an earlier one; a burst beyond the queue is dropped (at most once, like
/// every notification).
/// </summary>
public sealed class ReceiptNotifications(NotificationHub hub, IServiceProvider services, ILoggerFactory loggers) : IDisposable
{
    static readonly string Topic = NotificationTopics.TerminationReceipts.Pattern;
    readonly ILogger _log = loggers.CreateLogger("Parley.Notifications");
    readonly Channel<string> _changed = Channel.CreateBounded<string>(new BoundedChannelOptions(10_000)
        { SingleReader = true, FullMode = BoundedChannelFullMode.DropWrite });
    readonly CancellationTokenSource _stop = new();
    Task? _loop;
    readonly Lock _gate = new();

    public void Changed(string terminationId)
    {
        if (!hub.HasSubscribers(Topic)) return;
        _changed.Writer.TryWrite(terminationId);
        lock (_gate) _loop ??= Task.Run(RunAsync);
    }

    async Task RunAsync()
    {
        // Resolved here: the reader's audit log is the one the container hands out, built after this publisher.
        var reader = services.GetRequiredService<ReceiptReader>();
        try
        {
            await foreach (var id in _changed.Reader.ReadAllAsync(_stop.Token))
            {
                try
                {
                    if (!hub.HasSubscribers(Topic) || await reader.GetAsync(id, _stop.Token) is not { } receipt) continue;
                    hub.Publish(Topic, () => Wire.NotificationFrame(Topic, receipt, ParleyJson.Wire.TerminationReceiptWire, Guid.NewGuid().ToString()));
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    _log.LogWarning(e, "A termination receipt could not be read for its notification; its next change publishes it.");
                }
            }
        }
        catch (OperationCanceledException) { }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _stop.Dispose();
    }
}

/// <summary>
/// The audit port as the server uses it: recording a termination's socket count (the fan-out answered) is a change of
/// its receipt, so every node is told.
/// </summary>
public sealed class ReceiptSignallingAuditLog(IAuditLog inner, IChangeBroadcast nodes) : IAuditLog
{
    public async Task SetSocketsNotifiedAsync(string auditId, int sockets, CancellationToken ct)
    {
        await inner.SetSocketsNotifiedAsync(auditId, sockets, ct);
        nodes.ReceiptChanged(auditId);
    }

    /// <summary>A bulk termination's batch: still one write (the adapter's), then each receipt's change.</summary>
    public async Task SetSocketsNotifiedAsync(IReadOnlyList<(string AuditId, int Sockets)> counts, CancellationToken ct)
    {
        await inner.SetSocketsNotifiedAsync(counts, ct);
        foreach (var (id, _) in counts) nodes.ReceiptChanged(id);
    }

    public Task<Page<TerminationAudit>> ListAsync(string? conversationId, int pageSize, int pageNumber, CancellationToken ct) =>
        inner.ListAsync(conversationId, pageSize, pageNumber, ct);
}
