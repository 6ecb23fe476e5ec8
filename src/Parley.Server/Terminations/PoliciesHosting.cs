namespace Parley.Server.Terminations;

/// <summary>Registers the termination policies' services (docs/ending-sessions.md "Policies").</summary>
public static class PoliciesHosting
{
    public static IServiceCollection AddTerminationPolicies(this IServiceCollection services)
    {
        services.AddSingleton<PolicySweeper>();
        services.AddHostedService(sp => sp.GetRequiredService<PolicySweeper>());
        return services;
    }
}
