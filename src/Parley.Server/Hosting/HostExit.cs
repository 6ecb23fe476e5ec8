namespace Parley.Server;

/// <summary>
/// The exit code once the host has stopped: 0 after a normal stop (Ctrl+C, SIGTERM), non-zero when a background service
/// faulted, which stops the host (<c>HostOptions.BackgroundServiceExceptionBehavior</c> <c>StopHost</c>, the default,
/// logs it as Critical and stops): <see cref="Environment.ExitCode"/> when something has set one, otherwise 1.
/// </summary>
static class HostExit
{
    public const int Faulted = 1;

    public static int Code(IServiceProvider services)
    {
        var faulted = services.GetServices<IHostedService>().OfType<BackgroundService>().Any(s => s.ExecuteTask is { IsFaulted: true });
        if (Environment.ExitCode != 0) return Environment.ExitCode;
        return faulted ? Faulted : 0;
    }
}
