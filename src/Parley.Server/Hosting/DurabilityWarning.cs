using Parley.Core;

namespace Parley.Server;

/// <summary>
/// Says at start, and in the banner's store line, when the store acknowledges commits before they are on disk
/// (<c>Parley:Storage:Durability</c> other than <c>full</c>; docs/durability.md).
/// </summary>
public static class DurabilityWarning
{
    /// <summary>The banner's words for the SQLite store at a level.</summary>
    public static string SqliteBanner(Durability d) => d.Level switch
    {
        DurabilityLevel.Os => "synchronous=NORMAL, durability os: no fsync per commit",
        DurabilityLevel.Interval => $"synchronous=NORMAL, durability interval: WAL fsynced every {d.FsyncInterval.TotalMilliseconds:0} ms",
        _ => "synchronous=FULL",
    };

    /// <summary>The warning printed at start when the level is not <c>full</c> (nothing at <c>full</c> or in memory).</summary>
    public static string? Text(ParleyOptions o) => o.Durability.Level == DurabilityLevel.Full || o.InMemory ? null
        : $"parley: warning: Parley:Storage:Durability is {o.Durability}: a message is acknowledged before it is on disk, " +
          (o.Durability.Level == DurabilityLevel.Os
              ? "and an OS crash or power loss can lose those acknowledged since the last checkpoint."
              : $"and an OS crash or power loss can lose those acknowledged in the last {o.Durability.FsyncInterval.TotalMilliseconds:0} ms.") +
          " A crash of Parley alone loses nothing. docs/durability.md";

    public static void Print(ParleyOptions o)
    {
        if (Text(o) is { } warning) Console.Error.WriteLine(warning);
    }
}
