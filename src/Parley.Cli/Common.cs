using System.CommandLine;
using System.Globalization;
using Parley.Protocol;
using Spectre.Console;

namespace Parley.Cli;

/// <summary>Options and readings several commands share.</summary>
public static class Common
{
    /// <summary><c>--page-size</c> and <c>--page</c> of a listing (the platform's paging; 1 to 100 per page).</summary>
    public sealed class Paging
    {
        public Option<int?> Size { get; } = new("--page-size") { Description = "Entries per page (1 to 100; the server's default 25)", HelpName = "n" };
        public Option<int?> Number { get; } = new("--page") { Description = "Which page (from 1)", HelpName = "n" };

        public void AddTo(Command command)
        {
            command.Options.Add(Size);
            command.Options.Add(Number);
        }
    }

    public static Argument<string> Id(string what) => new("id") { Description = $"The {what}'s id" };

    /// <summary>"Page 2 of 5 (112 in all)", under a listing people read.</summary>
    public static void PageLine<T>(Terminal terminal, EntityListing<T> listing)
    {
        if (listing.PageCount > 1) terminal.Line($"Page {listing.PageNumber} of {listing.PageCount} ({listing.Total} in all); --page N for another");
        else terminal.Line($"{listing.Total} in all");
    }

    /// <summary>
    /// A time as the API takes it (ISO-8601 UTC with milliseconds): an ISO-8601 date and time, or a span back from now
    /// (<c>30m</c>, <c>2h</c>, <c>1d</c>, <c>90s</c>).
    /// </summary>
    public static string Time(string text, string option, DateTimeOffset now)
    {
        var trimmed = text.Trim();
        if (Span(trimmed) is { } ago) return Wire.Time(now - ago);
        if (DateTimeOffset.TryParse(trimmed, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var at))
            return Wire.Time(at);
        throw new CliException(ExitCodes.Usage, $"{option}: '{ServerSelection.Clip(trimmed)}' is neither an ISO-8601 time (2026-12-01T09:00:00Z) nor a span back from now (30m, 2h, 1d)");
    }

    /// <summary><c>90s</c>, <c>30m</c>, <c>2h</c>, <c>1d</c>; null when the text is not one.</summary>
    public static TimeSpan? Span(string text)
    {
        if (text.Length < 2 || !long.TryParse(text.AsSpan(0, text.Length - 1), NumberStyles.None, CultureInfo.InvariantCulture, out var n)
            || n > 100_000_000)
            return null;
        return text[^1] switch
        {
            's' => TimeSpan.FromSeconds(n),
            'm' => TimeSpan.FromMinutes(n),
            'h' => TimeSpan.FromHours(n),
            'd' => TimeSpan.FromDays(n),
            _ => null,
        };
    }

    /// <summary>
    /// A secret that must not be a command-line argument (shell history, the process list): one line from standard
    /// input with the <c>…-stdin</c> option, else a prompt that does not echo.
    /// </summary>
    public static string ReadSecret(Session session, bool fromStdin, string prompt, string stdinOption)
    {
        string? secret;
        if (fromStdin) secret = session.Input.ReadLine();
        else if (Console.IsInputRedirected)
            throw new CliException(ExitCodes.Usage, $"standard input is not a terminal: pipe the secret with {stdinOption}");
        else secret = session.Terminal.Error.Prompt(new TextPrompt<string>(prompt).Secret(null));
        secret = secret?.Trim();
        return string.IsNullOrEmpty(secret) ? throw new CliException(ExitCodes.Usage, "no secret given") : secret;
    }

    /// <summary>A time from the wire, shown as it came (UTC), or a dash.</summary>
    public static string Shown(string? value) => value ?? "-";
}
