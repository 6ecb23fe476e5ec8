using Npgsql;
using System.Security.Cryptography;

namespace Parley.Cluster.Tests.Engines;

/// <summary>
/// A PostgreSQL cluster of the test's own, so a fault test can stop it without touching the shared server other tests
/// use. <c>initdb</c> once (about 2 s; a test class shares one through a fixture), started with <c>pg_ctl</c> on a free
/// loopback port, with a role and database <c>parley</c>; <see cref="StopAsync"/> and <see cref="StartAsync"/> again on
/// the same port, so the nodes' connection string stays valid. As root the server runs as the <c>postgres</c> account
/// (PostgreSQL refuses root), as scripts/services-lib.sh does; as anyone else, as that user.
/// </summary>
public sealed class PrivatePostgres : IAsyncDisposable
{
    readonly string _root;
    readonly string _password = Convert.ToHexString(RandomNumberGenerator.GetBytes(16)).ToLowerInvariant();
    readonly string _bin = BinDir();
    readonly string? _user = EngineProcess.IsRoot ? "postgres" : null;

    public int Port { get; } = EngineProcess.FreePort();
    string Data => Path.Combine(_root, "data");
    string Sockets => Path.Combine(_root, "run");
    public string LogPath => Path.Combine(_root, "postgres.log");
    /// <summary>An Npgsql connection string for the role <c>parley</c> (what <c>ConnectionStrings__Postgres</c> holds).</summary>
    public string ConnectionString => $"Host=127.0.0.1;Port={Port};Database=parley;Username=parley;Password={_password}";
    public bool IsRunning { get; private set; }

    PrivatePostgres(string root) => _root = root;

    /// <summary>Initialises a fresh cluster, starts it and creates the role and database.</summary>
    public static async Task<PrivatePostgres> CreateAsync()
    {
        var root = Directory.CreateTempSubdirectory("parley-pg-").FullName;
        var pg = new PrivatePostgres(root);
        try
        {
            Directory.CreateDirectory(pg.Sockets);
            var passwordFile = Path.Combine(root, "pw");
            await File.WriteAllTextAsync(passwordFile, pg._password);
            if (pg._user is { } user) await EngineProcess.RunAsync("chown", ["-R", user, root], TimeSpan.FromSeconds(10));
            // Superuser "postgres" with the password, by SCRAM over TCP; the Unix socket only for the OS account.
            // --no-sync: a test cluster needs no fsync at initdb (nor after: the server runs with fsync=off below).
            await pg.ToolAsync("initdb", ["-D", pg.Data, "-U", "postgres", "--pwfile", passwordFile, "--auth-local=peer",
                "--auth-host=scram-sha-256", "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync", "--no-instructions"], TimeSpan.FromSeconds(60));
            File.Delete(passwordFile);
            await pg.StartAsync();
            await pg.ToolAsync("psql", ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", pg.Sockets, "-p", pg.Port.ToString(), "-U", "postgres",
                "-d", "postgres", "-c", $"CREATE ROLE parley LOGIN CREATEDB PASSWORD '{pg._password}'",
                "-c", "CREATE DATABASE parley OWNER parley"], TimeSpan.FromSeconds(30), fromPath: true);
            return pg;
        }
        catch
        {
            await pg.DisposeAsync();
            throw;
        }
    }

    /// <summary>Starts the server on its port and returns once it accepts connections.</summary>
    public async Task StartAsync()
    {
        // fsync off: the faults staged here are process deaths, not power loss; what was written survives them.
        await ToolAsync("pg_ctl", ["start", "-D", Data, "-l", LogPath, "-w", "-t", "60", "-s",
            "-o", $"-p {Port} -c listen_addresses=127.0.0.1 -k {Sockets} -c fsync=off -c full_page_writes=off -c max_connections=200"],
            TimeSpan.FromSeconds(90));
        IsRunning = true;
    }

    /// <summary>
    /// Stops the server: <c>fast</c> (clients are disconnected, a clean shutdown) or <c>immediate</c> (every backend
    /// killed at once, as a crash; the next start recovers from the WAL).
    /// </summary>
    public async Task StopAsync(bool immediate = false)
    {
        if (!IsRunning) return;
        await ToolAsync("pg_ctl", ["stop", "-D", Data, "-m", immediate ? "immediate" : "fast", "-w", "-t", "60", "-s"], TimeSpan.FromSeconds(90));
        IsRunning = false;
        NpgsqlConnection.ClearAllPools();   // this test process's pooled connections died with the server
    }

    Task<string> ToolAsync(string tool, IEnumerable<string> args, TimeSpan timeout, bool fromPath = false) =>
        EngineProcess.RunAsync(fromPath && !File.Exists(Path.Combine(_bin, tool)) ? tool : Path.Combine(_bin, tool), args, timeout, _user);

    /// <summary>True when initdb and pg_ctl can be found.</summary>
    public static bool Installed
    {
        get
        {
            try { return BinDir() is not null; }
            catch (InvalidOperationException) { return false; }
        }
    }

    /// <summary>Debian keeps initdb and pg_ctl under /usr/lib/postgresql/VERSION/bin; the newest wins (as scripts/services-lib.sh).</summary>
    static string BinDir()
    {
        if (Environment.GetEnvironmentVariable("PARLEY_PG_BINDIR") is { Length: > 0 } configured) return configured;
        var newest = Directory.Exists("/usr/lib/postgresql")
            ? Directory.GetDirectories("/usr/lib/postgresql").Select(d => Path.Combine(d, "bin"))
                .Where(d => File.Exists(Path.Combine(d, "pg_ctl")))
                .OrderByDescending(d => int.TryParse(Path.GetFileName(Path.GetDirectoryName(d)), out var major) ? major : 0)
                .FirstOrDefault()
            : null;
        return newest ?? throw new InvalidOperationException("pg_ctl not found under /usr/lib/postgresql/*/bin (set PARLEY_PG_BINDIR).");
    }

    public async ValueTask DisposeAsync()
    {
        try { await StopAsync(immediate: true); } catch (Exception e) when (e is InvalidOperationException or TimeoutException) { }
        try { Directory.Delete(_root, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
