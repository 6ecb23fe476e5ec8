using System.CommandLine;
using System.Globalization;
using Parley.Client;
using Parley.Protocol;
using Spectre.Console;
using Spectre.Console.Rendering;

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

    /// <summary><c>list</c> with paging: a page read by <paramref name="fetch"/>, as JSON or a table of <paramref name="row"/>s.</summary>
    public static Command List<T>(Session session, string description, Func<ParleyClient, int?, int?, CancellationToken, Task<EntityListing<T>>> fetch,
        Func<T, string[]> row, params string[] columns)
    {
        var paging = new Paging();
        var command = new Command("list", description);
        paging.AddTo(command);
        command.SetAction(session.Action(async () =>
        {
            var listing = await fetch(session.Client(), session.Value(paging.Size), session.Value(paging.Number), session.Cancellation);
            session.Terminal.Listing(listing, row, columns);
            return ExitCodes.Ok;
        }));
        return command;
    }

    /// <summary><c>show &lt;id&gt;</c>: one entity, read by <paramref name="get"/>, shown as JSON or as <paramref name="render"/> draws it.</summary>
    public static Command Show<T>(Session session, string what, string description, Func<ParleyClient, string, CancellationToken, Task<T>> get,
        Func<T, IRenderable> render)
    {
        var id = Id(what);
        var command = new Command("show", description) { id };
        command.SetAction(session.Action(async () =>
        {
            session.Terminal.Show(await get(session.Client(), session.Value(id)!, session.Cancellation), render);
            return ExitCodes.Ok;
        }));
        return command;
    }

    /// <summary><c>delete &lt;id&gt;</c>: <c>{"id","deleted":true}</c> with --json, a line for people.</summary>
    public static Command Delete(Session session, string what, Func<ParleyClient, string, CancellationToken, Task> delete)
    {
        var id = Id(what);
        var command = new Command("delete", $"Delete a {what}") { id };
        command.SetAction(session.Action(async () =>
        {
            var deleted = session.Value(id)!;
            await delete(session.Client(), deleted, session.Cancellation);
            if (session.Terminal.Json) session.Terminal.WriteJson(new { id = deleted, deleted = true });
            else session.Terminal.Line($"{char.ToUpperInvariant(what[0])}{what[1..]} {deleted} deleted");
            return ExitCodes.Ok;
        }));
        return command;
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
