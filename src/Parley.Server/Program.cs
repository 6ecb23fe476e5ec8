using Parley.Server;

WebApplication app;
try
{
    app = await ParleyApp.BuildAsync(args);
}
catch (StartupRefused refused)
{
    // A configuration Parley will not run with: one line saying what to change, no stack trace.
    Console.Error.WriteLine($"parley: {refused.Message}");
    return 2;
}
try
{
    await app.StartAsync();
}
catch (Exception e) when (e is InvalidOperationException or IOException)
{
    // Kestrel could not listen as configured (an https:// URL without a certificate, an address in use): say so in one line.
    var hint = e.Message.Contains("certificate", StringComparison.OrdinalIgnoreCase)
        ? " Give Kestrel one: Kestrel__Certificates__Default__Path and Kestrel__Certificates__Default__Password (docs/production.md)."
        : "";
    Console.Error.WriteLine($"parley: could not start listening: {e.Message.Split('\n')[0].Trim()}{hint}");
    return 1;
}
await app.WaitForShutdownAsync();
return 0;

public partial class Program;
