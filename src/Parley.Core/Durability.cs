namespace Parley.Core;

/// <summary>
/// When a durable store acknowledges a commit (<c>Parley:Storage:Durability</c>; docs/durability.md). Only
/// <see cref="Full"/> keeps the promise that an acknowledged message survives a power loss; the others trade that for
/// throughput and say so at start.
/// </summary>
public enum DurabilityLevel
{
    /// <summary>The commit returns after its write-ahead log is fsynced (the default).</summary>
    Full,
    /// <summary>The commit returns once its write reached the operating system, no fsync: lost only on an OS crash or power loss.</summary>
    Os,
    /// <summary>As <see cref="Os"/>, and the log is fsynced at most <see cref="Durability.FsyncInterval"/> after a commit.</summary>
    Interval,
}

/// <summary>A store's durability level, and for <see cref="DurabilityLevel.Interval"/> how often the log is fsynced.</summary>
public sealed record Durability(DurabilityLevel Level, TimeSpan FsyncInterval)
{
    public static readonly TimeSpan DefaultFsyncInterval = TimeSpan.FromMilliseconds(10);

    /// <summary>Today's behaviour: every acknowledged commit is on disk.</summary>
    public static readonly Durability Full = new(DurabilityLevel.Full, DefaultFsyncInterval);

    /// <summary>The setting's value as written in configuration: <c>full</c>, <c>os</c> or <c>interval</c> (with its interval).</summary>
    public override string ToString() => Level switch
    {
        DurabilityLevel.Os => "os",
        DurabilityLevel.Interval => $"interval ({FsyncInterval.TotalMilliseconds:0} ms)",
        _ => "full",
    };
}
