using Parley.E2E.Tests;

namespace Parley.Browser.Tests;

/// <summary>The pages load in a real browser under their own Content-Security-Policy: no script or style is refused.</summary>
[Collection(BrowserCollection.Name)]
public sealed class ServingTests(BrowserFixture browser)
{
    [Theory]
    [InlineData("messenger")]
    [InlineData("console")]
    public async Task Page_LoadsItsBundles_WithNoPolicyViolation(string page)
    {
        await using var server = await ParleyServer.StartAsync();
        var (context, tab) = await browser.NewPageAsync(server.BaseAddress);
        await using var _ = context;
        var problems = new List<string>();
        tab.Console += (_, m) => { if (m.Type == "error") problems.Add($"{m.Text} ({m.Location})"); };
        tab.PageError += (_, e) => problems.Add(e);
        var failed = new List<string>();
        tab.RequestFailed += (_, r) => failed.Add(r.Url);

        var response = await tab.GotoAsync($"/{page}");   // without the slash: redirected
        Assert.NotNull(response);
        Assert.Equal(200, response.Status);
        Assert.EndsWith($"/{page}/", tab.Url);
        await tab.WaitForLoadStateAsync(LoadState.NetworkIdle);
        await Screenshots.SaveAsync(tab, page);
        Assert.Empty(failed);
        Assert.Empty(problems);
    }
}
