using Parley.Core;

namespace Parley.Server.Terminations;

/// <summary>Bulk terminations: the engine and its API (docs/ending-sessions.md §Bulk terminations).</summary>
public static class TerminationsApi
{
    public static IServiceCollection AddTerminations(this IServiceCollection services)
    {
        services.AddSingleton<BulkTerminator>();
        return services;
    }
}
