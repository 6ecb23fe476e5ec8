namespace Parley.Server;

/// <summary>
/// The instant the last finished sweep judged at, awaitable: tests that move the clock wait for a sweep that has surely
/// run instead of sleeping. Shared by the inactivity and policy sweepers.
/// </summary>
public sealed class SweepProgress
{
    TaskCompletionSource _swept = new(TaskCreationOptions.RunContinuationsAsynchronously);
    long _lastSweptAt = long.MinValue;

    /// <summary>Completes once a sweep that judged at <paramref name="now"/> or later has finished.</summary>
    public async Task SweptAsync(DateTimeOffset now, CancellationToken ct)
    {
        while (true)
        {
            var next = Volatile.Read(ref _swept);
            if (Interlocked.Read(ref _lastSweptAt) >= now.UtcTicks) return;
            await next.Task.WaitAsync(ct);
        }
    }

    /// <summary>A sweep that judged at <paramref name="now"/> has finished what it found.</summary>
    public void Finished(DateTimeOffset now)
    {
        Interlocked.Exchange(ref _lastSweptAt, now.UtcTicks);
        Interlocked.Exchange(ref _swept, new(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
    }
}
