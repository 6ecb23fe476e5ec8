using Microsoft.Extensions.Configuration.Json;
using Microsoft.Extensions.FileProviders;
using Microsoft.Extensions.Logging.Console;
using Microsoft.Extensions.Options;

namespace Parley.Server;

/// <summary>
/// Logging as Microsoft.Extensions.Logging configures it, nothing set in code: levels per category
/// (<c>Logging:LogLevel:…</c>), the console formatter (<c>Logging:Console:FormatterName</c> simple, json or systemd) and
/// its options (<c>Logging:Console:FormatterOptions:…</c>). Parley's defaults are in the appsettings.json shipped beside
/// the server, the lowest of all sources, so any appsettings.json in the working directory, environment variable or
/// argument overrides them (docs/logging.md).
/// </summary>
public static class ParleyLogging
{
    public const string ShippedSettings = "appsettings.json";

    public static WebApplicationBuilder AddParleyLogging(this WebApplicationBuilder builder)
    {
        // The host reads appsettings.json from the content root (the working directory); the shipped one lies beside the
        // executable, wherever it is started from. Added first, so it is the default every other source overrides.
        var beside = AppContext.BaseDirectory;
        if (File.Exists(Path.Combine(beside, ShippedSettings))
            && !Path.GetFullPath(beside).TrimEnd('/', '\\').Equals(Path.GetFullPath(builder.Environment.ContentRootPath).TrimEnd('/', '\\'), StringComparison.Ordinal))
        {
            builder.Configuration.Sources.Insert(0, new JsonConfigurationSource
            {
                Path = ShippedSettings, Optional = true, ReloadOnChange = false, FileProvider = new PhysicalFileProvider(beside),
            });
        }
        // The slim builder's console sets FormatterName = simple in code, which overrides Logging:Console:FormatterName:
        // drop that, and keep the configuration's binding (AddConsole registers the simple, json and systemd formatters).
        var forced = builder.Services.Where(d => d.ServiceType == typeof(IConfigureOptions<ConsoleLoggerOptions>)
            && d.ImplementationInstance is ConfigureNamedOptions<ConsoleLoggerOptions>).ToList();
        foreach (var descriptor in forced) builder.Services.Remove(descriptor);
        builder.Logging.AddConsole();
        return builder;
    }

    /// <summary>
    /// The access log, when <c>Parley:AccessLog:Enabled</c> says so or, unset, in the Development environment. Added
    /// first, so it sees each request's final status, after the error handlers.
    /// </summary>
    public static void UseParleyAccessLog(this WebApplication app, ParleyOptions options)
    {
        if (!(options.AccessLogEnabled ?? app.Environment.IsDevelopment())) return;
        var loggers = app.Services.GetRequiredService<ILoggerFactory>();
        var log = loggers.CreateLogger(ParleyLog.Access);
        loggers.CreateLogger(ParleyLog.Hosting).AccessLogOn(ParleyLog.Access, options.AccessLogEnabled?.ToString().ToLowerInvariant() ?? "unset", app.Environment.EnvironmentName);
        app.Use(new AccessLog(log).InvokeAsync);
    }
}
