using Parley.Cli;

return await ParleyCli.RunAsync(args, Console.Out, Console.Error, Environment.GetEnvironmentVariable);
