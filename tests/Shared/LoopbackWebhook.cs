using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Parley.Testing;

/// <summary>
/// The start-up every test webhook receiver shares: a quiet Kestrel on loopback serving <c>POST /webhook</c> with the
/// receiver's handler, started, with the URL to give Parley (the port read back when the system chose it).
/// </summary>
public static class LoopbackWebhook
{
    /// <param name="port">0: a free port of the system's choosing.</param>
    public static async Task<(WebApplication App, string Url)> StartAsync(RequestDelegate handle, int port = 0)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls($"http://127.0.0.1:{port}");
        var app = builder.Build();
        app.MapPost("/webhook", handle);
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return (app, address + "/webhook");
    }
}
