using Parley.Server;

// --help and --version end here, before anything is built or listens; a malformed command line ends here too.
var commandLine = ParleyCommandLine.Parse(args, Console.Out, Console.Error);
if (commandLine.Exit is { } exit) return exit;

WebApplication app;
try
{
    app = await ParleyApp.BuildAsync(commandLine.HostArgs);
}
catch (Exception e)
{
    // A configuration Parley will not run with, or a start that cannot go on: one line saying what to change, no stack trace.
    return StartFailure.Report(e, listening: false);
}
try
{
    await app.StartAsync();
}
catch (Exception e)
{
    // Kestrel could not listen as configured (an address in use, an https:// URL without a certificate), or a service
    // refused to start: one line.
    return StartFailure.Report(e, listening: true);
}
await app.WaitForShutdownAsync();
// 0 after Ctrl+C or SIGTERM; non-zero when a background service faulted and so stopped the host.
return HostExit.Code(app.Services);

public partial class Program;
