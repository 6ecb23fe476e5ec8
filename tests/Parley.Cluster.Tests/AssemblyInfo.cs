// Every class here starts real processes (two or more Parley nodes, engines): one class at a time on a small machine.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
