using System.Collections.Immutable;

namespace Parley.Core;

/// <summary>A business-hours policy's days as stored and as the wire spells them: English day names ("Monday"), in week order.</summary>
public static class PolicyDays
{
    /// <summary>The day a name means (any case; the full name or its first three letters), or null.</summary>
    public static DayOfWeek? Find(string name) =>
        Enum.GetValues<DayOfWeek>().Cast<DayOfWeek?>().FirstOrDefault(d =>
            string.Equals(d.ToString(), name, StringComparison.OrdinalIgnoreCase)
            || (name.Length == 3 && d.ToString()!.StartsWith(name, StringComparison.OrdinalIgnoreCase)));

    /// <summary>Distinct days, Sunday first (DayOfWeek's order).</summary>
    public static ImmutableArray<DayOfWeek> Normalise(IEnumerable<DayOfWeek> days) => [.. days.Distinct().Order()];

    public static string? Format(ImmutableArray<DayOfWeek> days) => days.IsDefaultOrEmpty ? null : string.Join(',', days);

    public static ImmutableArray<DayOfWeek> Parse(string? stored) =>
        stored is null ? [] : Normalise(stored.Split(',').Select(Enum.Parse<DayOfWeek>));
}
