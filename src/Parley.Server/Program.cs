using Parley.Server;

var app = await ParleyApp.BuildAsync(args);
await app.RunAsync();

public partial class Program;
