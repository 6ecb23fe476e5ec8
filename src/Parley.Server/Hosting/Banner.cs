using System.Diagnostics;

namespace Parley.Server;

/// <summary>
/// The lines printed once Parley listens: where, which store, the demo tenant, and a token request that can be pasted
/// into a shell as it is (no <c>&lt;secret&gt;</c> placeholder, which a shell reads as a redirect). The well-known demo
/// secret is printed; a secret of your own never is: the curl line reads it from the environment variable instead.
/// </summary>
public static class Banner
{
    /// <summary>Prints the banner for the addresses Kestrel bound (port 0 already replaced by the port it chose).</summary>
    public static void Print(IEnumerable<string> boundUrls, ParleyOptions o, ILogger log, Users.AdminSeed? admin = null)
    {
        var urls = boundUrls.ToList();
        Console.WriteLine(Text(urls, o, Environment.GetEnvironmentVariable, StartupTime(), admin));
        log.Started(string.Join(", ", urls));
    }

    /// <summary>Time from the process's start to now (the runtime's own start included), or null when the system does not say.</summary>
    static TimeSpan? StartupTime()
    {
        try { return DateTime.Now - Process.GetCurrentProcess().StartTime; }
        catch (Exception e) when (e is InvalidOperationException or NotSupportedException or System.ComponentModel.Win32Exception) { return null; }
    }

    /// <param name="environment">Reads an environment variable (the test passes its own).</param>
    /// <param name="admin">The admin user seeded at start: its password is printed only when this start generated it.</param>
    public static string Text(IReadOnlyList<string> urls, ParleyOptions o, Func<string, string?> environment, TimeSpan? startup = null,
        Users.AdminSeed? admin = null)
    {
        var local = LocalBase(urls);
        var socketBase = o.PublicUrl is { } publicUrl
            ? (publicUrl.Scheme == "https" ? "wss" : "ws") + publicUrl.GetLeftPart(UriPartial.Path).TrimEnd('/')[publicUrl.Scheme.Length..]
            : local.Replace("http://", "ws://").Replace("https://", "wss://");
        var insecure = local.StartsWith("https://", StringComparison.Ordinal) ? "-k " : "";   // a self-signed local certificate
        var (secretLine, credentials) = Secret(o, environment);
        var took = startup is { } t && t > TimeSpan.Zero ? $" (started in {t.TotalSeconds:0.00} s)" : "";
        return $"""

            Parley is listening on {string.Join(", ", urls)}{took}
              version         {ParleyCommandLine.Version}
              store           {Store(o)}
              deployment id   {o.DemoDeploymentId}
              client id       {o.DemoClientId}
              client secret   {secretLine}
              guest socket    {socketBase}/v1?deploymentId={o.DemoDeploymentId}
              token           curl {insecure}-u {credentials} -d grant_type=client_credentials {local}/oauth/token
            {AdminLines(admin)}  links           {local}/  (health, readiness, endpoints)
              messenger       {local}/messenger/  (a guest of the demo deployment, in the browser)
              console         {local}/console/

            """;
    }

    /// <summary>
    /// The admin user's lines. A generated password is shown by the start that created it, and never again (only its hash
    /// is kept); a password from the settings is never shown.
    /// </summary>
    static string AdminLines(Users.AdminSeed? admin)
    {
        if (admin is null) return "";
        var password = admin.GeneratedPassword is { } generated ? $"{generated}  (generated now and shown this once; PARLEY_DEMO_ADMIN_PASSWORD sets your own)"
            : admin.PasswordFromSettings ? "(from PARLEY_DEMO_ADMIN_PASSWORD, not shown)"
            : "(shown at the first start only; set PARLEY_DEMO_ADMIN_PASSWORD to choose a new one)";
        return $"  admin user      {admin.Username}\n  admin password  {password}\n";
    }

    public static string Store(ParleyOptions o) => o.InMemory
        ? "in memory (SQLite): nothing is written to disk, everything is lost at exit"
        : PostgresStorageRegistration.Banner(o);

    /// <summary>
    /// The address to paste into a curl on this machine: the first bound URL, a wildcard host (0.0.0.0, [::], *, +)
    /// replaced by localhost.
    /// </summary>
    static string LocalBase(IReadOnlyList<string> urls)
    {
        var url = urls.FirstOrDefault(u => u.StartsWith("http://", StringComparison.Ordinal))
            ?? urls.FirstOrDefault(u => u.StartsWith("https://", StringComparison.Ordinal)) ?? "http://localhost:5000";
        var address = BindingAddress.Parse(url);
        var host = address.Host is "0.0.0.0" or "[::]" or "::" or "*" or "+" ? "localhost" : address.Host;
        return $"{address.Scheme}://{host}:{address.Port}{address.PathBase}".TrimEnd('/');
    }

    /// <summary>What the banner says of the secret, and the curl <c>-u</c> argument (shell-quoted).</summary>
    static (string Line, string Credentials) Secret(ParleyOptions o, Func<string, string?> environment)
    {
        if (o.DemoClientSecret == ParleyOptions.DefaultClientSecret)
            return (o.DemoClientSecret, Quote($"{o.DemoClientId}:{o.DemoClientSecret}"));
        // Name the variable it came from, so the pasted line reads it there; from a file or the command line, ask for the usual one.
        var variable = new[] { "PARLEY_DEMO_CLIENT_SECRET", "Parley__Demo__ClientSecret" }.FirstOrDefault(v => environment(v) == o.DemoClientSecret);
        var line = variable is null
            ? "(your own, not shown; export PARLEY_DEMO_CLIENT_SECRET for the line below)"
            : $"(from {variable}, not shown)";
        var id = o.DemoClientId.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.') ? o.DemoClientId : null;
        var credentials = id is not null
            ? $"\"{id}:${variable ?? "PARLEY_DEMO_CLIENT_SECRET"}\""
            : $"{Quote(o.DemoClientId + ":")}\"${variable ?? "PARLEY_DEMO_CLIENT_SECRET"}\"";
        return (line, credentials);
    }

    /// <summary>A word for a POSIX shell: as it is when it is plain, else in single quotes.</summary>
    static string Quote(string word) => word.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' or ':' or '/' or '@' or '+' or '=')
        ? word
        : "'" + word.Replace("'", "'\\''") + "'";
}
