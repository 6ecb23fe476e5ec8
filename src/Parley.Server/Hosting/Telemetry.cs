using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;
using Parley.Core;

namespace Parley.Server;

/// <summary>
/// OpenTelemetry for Parley (docs/observability.md): the <c>Parley</c> meter with ASP.NET Core, HttpClient and runtime
/// metrics, scraped at <c>GET /metrics</c> (Prometheus text; <c>Parley:Metrics:Enabled</c>, <c>Parley:Metrics:Path</c>),
/// and, only when <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> is set, OTLP export of those metrics and of traces (the
/// <c>Parley</c> source, ASP.NET Core and HttpClient spans). The exporter reads the standard <c>OTEL_*</c> variables itself.
/// </summary>
public static class Telemetry
{
    public const string OtlpEndpointVariable = "OTEL_EXPORTER_OTLP_ENDPOINT";

    public static void AddParleyTelemetry(this WebApplicationBuilder builder, ParleyOptions options)
    {
        var otlp = builder.Configuration[OtlpEndpointVariable] is { Length: > 0 };
        if (!options.MetricsEnabled && !otlp) return;
        var serviceName = builder.Configuration["OTEL_SERVICE_NAME"] is { Length: > 0 } name ? name : "parley";
        var version = ParleyCommandLine.Version;   // what --version prints, not the assembly version (0.12.0.0)
        var telemetry = builder.Services.AddOpenTelemetry()
            .ConfigureResource(r => r.AddService(serviceName, serviceVersion: version, serviceInstanceId: options.NodeId));
        telemetry.WithMetrics(metrics =>
        {
            metrics.AddMeter(ParleyDiagnostics.Name)
                .AddAspNetCoreInstrumentation()
                .AddHttpClientInstrumentation()
                .AddRuntimeInstrumentation();
            if (options.MetricsEnabled) metrics.AddPrometheusExporter();
            if (otlp) metrics.AddOtlpExporter();
        });
        // Traces only go somewhere through OTLP: without it no tracer is registered, and no span is recorded.
        if (otlp)
            telemetry.WithTracing(tracing => tracing.AddSource(ParleyDiagnostics.Name)
                .AddAspNetCoreInstrumentation(o =>
                {
                    o.Filter = http => !IsScrape(http, options);
                    o.EnrichWithHttpRequest = MaskUrl;
                })
                .AddHttpClientInstrumentation()
                .AddOtlpExporter());
    }

    /// <summary>
    /// <c>GET {Parley:Metrics:Path}</c>, unauthenticated as Prometheus scrapes (counts only: no identifier, no secret, no
    /// text). An exact route: the SDK gateway prefix stripping only ever yields <c>/api/v2/…</c> or <c>/oauth/token</c>.
    /// </summary>
    public static void MapParleyMetrics(this WebApplication app, ParleyOptions options)
    {
        if (options.MetricsEnabled) app.MapPrometheusScrapingEndpoint(options.MetricsPath);
    }

    /// <summary>
    /// A server span's <c>url.path</c> and <c>url.query</c> as the access log writes them: a notification channel id (its
    /// capability) as <c>/channels/***</c>, a credential-like query value as <c>***</c> (<see cref="AccessLog.SafePath(string, string?)"/>).
    /// </summary>
    static void MaskUrl(System.Diagnostics.Activity activity, HttpRequest request)
    {
        activity.SetTag("url.path", AccessLog.SafePath(request.PathBase.Value + request.Path.Value));
        // Applied to the tag as the instrumentation set it, so its own redaction (every value, by default) is kept.
        if (activity.GetTagItem("url.query") is string query) activity.SetTag("url.query", AccessLog.SafeQuery(query));
    }

    static bool IsScrape(HttpContext http, ParleyOptions options) =>
        options.MetricsEnabled && http.Request.Path.Equals(options.MetricsPath, StringComparison.Ordinal);
}
