namespace Parley.Server;

/// <summary>Parley will not start as configured; the message is one line saying what to change (printed without a stack trace).</summary>
public sealed class StartupRefused(string message) : Exception(message);
