namespace Parley.Testing;

/// <summary>Trial counts and seeds of the long runs: a few in the normal suite, the full count through an environment variable.</summary>
public static class Soak
{
    public static int Count(string variable, int normal) =>
        int.TryParse(Environment.GetEnvironmentVariable(variable), out var n) && n > 0 ? n : normal;

    public static int Seed(string variable) =>
        int.TryParse(Environment.GetEnvironmentVariable(variable), out var s) ? s : Random.Shared.Next();
}
