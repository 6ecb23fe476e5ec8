using BenchmarkDotNet.Running;

// dotnet run -c Release --project bench/Parley.Micro -- --filter '*' --job short   (docs/performance.md)
BenchmarkSwitcher.FromAssembly(typeof(Parley.Micro.ParseBenchmarks).Assembly).Run(args);
