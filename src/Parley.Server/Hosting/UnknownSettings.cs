using Microsoft.Extensions.Primitives;

namespace Parley.Server;

/// <summary>
/// Refuses the start when the <c>Parley</c> section holds a key Parley does not read: a misspelled setting
/// (<c>Parley__Limits__MaxConection</c>) would otherwise be ignored silently and the default kept. A key is known when
/// <see cref="ParleyOptions.FromEnvironment"/> reads it, so a setting added there is known without a second list to keep.
/// </summary>
public static class UnknownSettings
{
    public const string Section = "Parley";

    /// <summary>The one line naming the first unknown key and the nearest known one; null when every key is known.</summary>
    public static string? Find(IConfiguration config, IReadOnlyCollection<string> known)
    {
        foreach (var (key, value) in config.GetSection(Section).AsEnumerable().OrderBy(p => p.Key, StringComparer.OrdinalIgnoreCase))
        {
            if (value is null || key.Equals(Section, StringComparison.OrdinalIgnoreCase)) continue;
            // A key read as a list (Key:0, Key:1 …) knows its items.
            if (known.Any(k => key.Equals(k, StringComparison.OrdinalIgnoreCase)
                || key.StartsWith(k + ":", StringComparison.OrdinalIgnoreCase))) continue;
            var nearest = known.Where(k => k.StartsWith(Section + ":", StringComparison.OrdinalIgnoreCase))
                .MinBy(k => Distance(k.ToLowerInvariant(), key.ToLowerInvariant()));
            var clipped = ParleyOptions.Clip(key, 120);
            return $"{clipped} (environment {clipped.Replace(":", "__")}) is not a Parley setting" +
                (nearest is null ? "." : $"; did you mean {nearest}?") + " docs/configuration.md lists every setting.";
        }
        return null;
    }

    /// <summary>Levenshtein distance: edits (insert, delete, substitute) from one key to the other.</summary>
    internal static int Distance(string a, string b)
    {
        var previous = new int[b.Length + 1];
        var current = new int[b.Length + 1];
        for (var j = 0; j <= b.Length; j++) previous[j] = j;
        for (var i = 1; i <= a.Length; i++)
        {
            current[0] = i;
            for (var j = 1; j <= b.Length; j++)
                current[j] = Math.Min(Math.Min(current[j - 1] + 1, previous[j] + 1), previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
            (previous, current) = (current, previous);
        }
        return previous[b.Length];
    }
}

/// <summary>A configuration that remembers which keys were read (a section read counts for everything under it).</summary>
sealed class KeysRead(IConfiguration inner, ISet<string> keys) : IConfiguration
{
    public string? this[string key]
    {
        get { keys.Add(key); return inner[key]; }
        set => inner[key] = value;
    }

    public IConfigurationSection GetSection(string key)
    {
        keys.Add(key);
        return inner.GetSection(key);
    }

    public IEnumerable<IConfigurationSection> GetChildren() => inner.GetChildren();

    public IChangeToken GetReloadToken() => inner.GetReloadToken();
}
