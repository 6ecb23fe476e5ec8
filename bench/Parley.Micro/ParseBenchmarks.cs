using System.Text.Json;
using BenchmarkDotNet.Attributes;
using Parley.Protocol;

namespace Parley.Micro;

/// <summary>A guest's client frame, JSON bytes → <see cref="GuestRequest"/>, as the socket endpoint parses it.</summary>
[MemoryDiagnoser]
public class ParseBenchmarks
{
    [Benchmark] public GuestRequest? OnMessage() => JsonSerializer.Deserialize(Samples.OnMessage, ParleyJson.Wire.GuestRequest);
    [Benchmark] public GuestRequest? ConfigureSession() => JsonSerializer.Deserialize(Samples.ConfigureSession, ParleyJson.Wire.GuestRequest);
    [Benchmark] public GuestRequest? Echo() => JsonSerializer.Deserialize(Samples.Echo, ParleyJson.Wire.GuestRequest);
}
