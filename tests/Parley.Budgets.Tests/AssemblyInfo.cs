// The server-path budgets count the whole process's allocations: nothing else may run beside them.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
