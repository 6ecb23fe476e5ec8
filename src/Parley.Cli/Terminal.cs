using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using Parley.Protocol;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace Parley.Cli;

/// <summary>
/// Where a command writes. With <c>--json</c>, standard output carries exactly one JSON document (or, for a stream,
/// one per line) and nothing else; people's output (tables, progress) never mixes into it. Progress goes to standard
/// error, so <c>parley … | jq</c> and a watching person both get what they need.
/// </summary>
public sealed class Terminal
{
    /// <summary>The wire records as the platform spells them (camelCase, nulls left out); the CLI's own records likewise.</summary>
    static readonly JsonSerializerOptions JsonOptions = new(JsonSerializerDefaults.Web)
    {
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        TypeInfoResolver = JsonTypeInfoResolver.Combine(ParleyJson.Default, new DefaultJsonTypeInfoResolver()),
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.CamelCase) },
        WriteIndented = true,
    };

    static readonly JsonSerializerOptions JsonLineOptions = new(JsonOptions) { WriteIndented = false };

    readonly TextWriter _stdout;

    public Terminal(TextWriter stdout, TextWriter stderr, bool json)
    {
        _stdout = stdout;
        Json = json;
        Out = Console(stdout);
        Error = Console(stderr);
    }

    public bool Json { get; }

    /// <summary>People's output on standard output.</summary>
    public IAnsiConsole Out { get; }

    /// <summary>Progress and notes on standard error.</summary>
    public IAnsiConsole Error { get; }

    static IAnsiConsole Console(TextWriter writer)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(writer) });
        // Piped into a file or another program there is no terminal width: do not wrap ids and times at 80 columns.
        if (!console.Profile.Capabilities.Interactive || writer != System.Console.Out && writer != System.Console.Error)
            console.Profile.Width = 240;
        return console;
    }

    public void WriteJson<T>(T value)
    {
        _stdout.WriteLine(JsonSerializer.Serialize(value, JsonOptions));
        _stdout.Flush();
    }

    /// <summary>One document per line, for streams (<c>conversations tail --json</c>).</summary>
    public void WriteJsonLine<T>(T value)
    {
        _stdout.WriteLine(JsonSerializer.Serialize(value, JsonLineOptions));
        _stdout.Flush();
    }

    /// <summary>Writes <paramref name="value"/> as JSON or, for people, as <paramref name="human"/> renders it.</summary>
    public void Show<T>(T value, Func<T, IRenderable> human)
    {
        if (Json) WriteJson(value);
        else Out.Write(human(value));
    }

    /// <summary>A page of a listing: the listing as JSON, or a table of its entities with the page line under it.</summary>
    public void Listing<T>(EntityListing<T> listing, Func<T, string[]> row, params string[] columns)
    {
        if (Json)
        {
            WriteJson(listing);
            return;
        }
        Out.Write(Table(listing.Entities.Select(row), columns));
        PageLine(listing);
    }

    /// <summary>"Page 2 of 5 (112 in all)" under a listing people read.</summary>
    public void PageLine<T>(EntityListing<T> listing) =>
        Line(listing.PageCount > 1 ? $"Page {listing.PageNumber} of {listing.PageCount} ({listing.Total} in all); --page N for another" : $"{listing.Total} in all");

    public void Line(string text)
    {
        if (!Json) Out.WriteLine(text, Style.Plain);
    }

    /// <summary>A table of rows; <paramref name="columns"/> are the headers, each row's cells plain text (never markup).</summary>
    public static Table Table(IEnumerable<string[]> rows, params string[] columns)
    {
        var table = new Table().Border(TableBorder.Simple);
        foreach (var column in columns) table.AddColumn(new TableColumn(Markup.Escape(column)));
        foreach (var row in rows) table.AddRow(row.Select(cell => (IRenderable)new Text(cell ?? "")).ToArray());
        return table;
    }

    /// <summary>Name/value pairs, one per line (an entity shown in full).</summary>
    public static Grid Fields(IEnumerable<(string Name, string? Value)> fields)
    {
        var grid = new Grid().AddColumn(new GridColumn().NoWrap().PadRight(2)).AddColumn();
        foreach (var (name, value) in fields)
            if (value is not null) grid.AddRow(new Text(name, new Style(decoration: Decoration.Bold)), new Text(value));
        return grid;
    }
}
