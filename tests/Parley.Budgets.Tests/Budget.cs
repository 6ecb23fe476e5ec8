namespace Parley.Budgets.Tests;

/// <summary>Counts what an operation allocates: after a warm-up (JIT, caches, pools), the bytes of many runs ÷ runs.</summary>
static class Budget
{
    /// <summary>Bytes allocated per call of a synchronous operation on this thread: exact, whatever else the process does.</summary>
    public static long PerCall(Action operation, int runs = 1_000)
    {
        for (var i = 0; i < 200; i++) operation();
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < runs; i++) operation();
        return (GC.GetAllocatedBytesForCurrentThread() - before) / runs;
    }

    /// <summary>Asserts a measured value is within its budget, naming both so a failure says how far over it went.</summary>
    public static void Within(long budget, long measured, string what) =>
        Assert.True(measured <= budget,
            $"{what}: {measured} B per operation, over its budget of {budget} B (docs/performance.md: how to update a budget deliberately).");
}
