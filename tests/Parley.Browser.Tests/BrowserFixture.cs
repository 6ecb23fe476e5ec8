using System.Runtime.CompilerServices;

namespace Parley.Browser.Tests;

/// <summary>
/// One headless Chromium for the test collection: the system's (Debian's <c>chromium</c>, <c>/usr/bin/chromium</c>, or
/// <c>PARLEY_CHROMIUM</c>), driven by Playwright's driver from its NuGet package; no browser is ever downloaded. Each test
/// opens its own context (cookies, localStorage) and starts its own Parley (<c>ParleyServer.StartAsync</c>).
/// </summary>
public sealed class BrowserFixture : IAsyncLifetime
{
    public static string ChromiumPath => Environment.GetEnvironmentVariable("PARLEY_CHROMIUM") is { Length: > 0 } path ? path : "/usr/bin/chromium";

    IPlaywright? _playwright;
    public IBrowser Browser { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        if (!File.Exists(ChromiumPath))
            throw new InvalidOperationException($"The browser tests need Chromium at {ChromiumPath} (Debian: apt-get install chromium; .ci/run installs it), or PARLEY_CHROMIUM naming one.");
        _playwright = await Playwright.CreateAsync();
        Browser = await _playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = ChromiumPath,
            Headless = true,
            // Root in a container has no user namespace for Chromium's sandbox; the pages are our own.
            ChromiumSandbox = false,
            Args = ["--disable-dev-shm-usage", "--disable-gpu"],
        });
    }

    public async Task DisposeAsync()
    {
        if (Browser is not null) await Browser.CloseAsync();
        _playwright?.Dispose();
    }

    /// <summary>A fresh context and page, its console errors collected (a page that throws fails the test that reads them).</summary>
    public async Task<(IBrowserContext Context, IPage Page)> NewPageAsync(Uri baseAddress)
    {
        var context = await Browser.NewContextAsync(new BrowserNewContextOptions { BaseURL = baseAddress.ToString(), ViewportSize = new() { Width = 900, Height = 700 } });
        context.SetDefaultTimeout(10_000);
        var page = await context.NewPageAsync();
        return (context, page);
    }
}

[CollectionDefinition(Name)]
public sealed class BrowserCollection : ICollectionFixture<BrowserFixture>
{
    public const string Name = "browser";
}

/// <summary>
/// Screenshots as test artifacts: <c>artifacts/screenshots/&lt;test&gt;-&lt;step&gt;.png</c> at the repository's root
/// (gitignored; <c>PARLEY_SCREENSHOTS</c> names another folder).
/// </summary>
public static class Screenshots
{
    public static string Folder { get; } = Environment.GetEnvironmentVariable("PARLEY_SCREENSHOTS") is { Length: > 0 } folder
        ? folder
        : Path.Combine(RepositoryRoot(), "artifacts", "screenshots");

    public static async Task<string> SaveAsync(IPage page, string step, [CallerMemberName] string test = "")
    {
        Directory.CreateDirectory(Folder);
        var path = Path.Combine(Folder, $"{test}-{step}.png");
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = path, FullPage = true });
        return path;
    }

    static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Parley.slnx"))) return dir.FullName;
        return Path.GetTempPath();
    }
}
