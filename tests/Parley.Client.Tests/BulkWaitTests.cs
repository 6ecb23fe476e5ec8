using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Parley.E2E.Tests;
using Parley.Protocol;
using static Parley.Client.Tests.ClientHarness;

namespace Parley.Client.Tests;

/// <summary>
/// <see cref="BulkTerminationsClient.WaitAsync(BulkTerminationWire, IProgress{BulkTerminationWire}?, TimeSpan?, TimeSpan?, TimeSpan?, CancellationToken)"/>
/// gives up on a job that stays PENDING. A job that never finishes is made by a middleware in front of the real server
/// that answers the job's reads (a stuck node would look like this from the client).
/// </summary>
public sealed class BulkWaitTests
{
    static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);   // a guard against a wait that never gives up, not the measure
    const string JobId = "0193f1c2-0000-7000-8000-00000000beef";

    static Task<ParleyServer> StuckJobServerAsync(Func<int, int> matchedAtRead)
    {
        var reads = 0;
        return ParleyServer.StartAsync(beforeStart: app => app.Use(async (HttpContext http, RequestDelegate next) =>
        {
            if (http.Request.Method == "GET" && http.Request.Path.Value == $"/api/v2/parley/terminations/{JobId}")
            {
                var matched = matchedAtRead(Interlocked.Increment(ref reads));
                http.Response.ContentType = "application/json";
                await http.Response.WriteAsync($$"""{"id":"{{JobId}}","state":"PENDING","matched":{{matched}},"ended":1,"alreadyEnded":0,"failed":0}""");
                return;
            }
            await next(http);
        }));
    }

    static BulkTerminationWire Job() => new() { Id = JobId, State = TerminationJobStates.Pending };

    [Fact]
    public async Task AJobWhoseCountsStopMoving_IsGivenUpOn_AfterTheStallTime_NamingTheJobAndItsCounts()
    {
        await using var server = await StuckJobServerAsync(_ => 7);
        using var client = DemoClient(server);
        await client.BulkTerminations.GetAsync(JobId);   // token and first request out of the way: the waits below measure reads

        var e = await Assert.ThrowsAsync<BulkTerminationTimeoutException>(() => client.BulkTerminations.WaitAsync(Job(),
            pollInterval: TimeSpan.FromMilliseconds(10), stallTimeout: TimeSpan.FromMilliseconds(200)).WaitAsync(Timeout));

        Assert.IsAssignableFrom<TimeoutException>(e);
        Assert.Equal(JobId, e.JobId);
        Assert.Equal(7, e.Last.Matched);
        Assert.Contains(JobId, e.Message, StringComparison.Ordinal);
        Assert.Contains("have not moved", e.Message, StringComparison.Ordinal);
        Assert.Contains("matched 7, ended 1", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AJobThatKeepsMovingButNeverEnds_IsGivenUpOn_AfterTheTimeout()
    {
        await using var server = await StuckJobServerAsync(read => read);   // one more match at every read: never a stall
        using var client = DemoClient(server);
        await client.BulkTerminations.GetAsync(JobId);   // token and first request out of the way: the waits below measure reads
        var readings = 0;

        var e = await Assert.ThrowsAsync<BulkTerminationTimeoutException>(() => client.BulkTerminations.WaitAsync(Job(),
            new SyncProgress(() => readings++), TimeSpan.FromMilliseconds(10), timeout: TimeSpan.FromMilliseconds(300),
            stallTimeout: TimeSpan.FromSeconds(30)).WaitAsync(Timeout));

        Assert.Contains("still PENDING", e.Message, StringComparison.Ordinal);
        Assert.Equal(JobId, e.JobId);
        Assert.Equal(e.Last.Matched, readings);   // the job as handed in, then every read after the warm-up one (its counts moving each time)
    }

    sealed class SyncProgress(Action reported) : IProgress<BulkTerminationWire>
    {
        public void Report(BulkTerminationWire value) => reported();
    }
}
