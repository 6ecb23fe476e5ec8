using System.CommandLine;
using System.Globalization;

namespace Parley.Cli;

/// <summary><c>audit [--conversation id]</c>: the termination audit, newest first.</summary>
public static class Audit
{
    public static Command Build(Session session)
    {
        var conversation = new Option<string>("--conversation") { Description = "Only this conversation's terminations", HelpName = "id" };
        var paging = new Common.Paging();
        var command = new Command("audit", "The termination audit: who ended what, by which lever, why, and how many sockets were told") { conversation };
        paging.AddTo(command);
        command.SetAction(session.Action(async () =>
        {
            var listing = await session.Client().Audit.ListTerminationsAsync(session.Value(conversation), session.Value(paging.Size),
                session.Value(paging.Number), session.Cancellation);
            session.Terminal.Listing(listing, a =>
            [
                a.Id, a.Timestamp, a.ConversationId, a.Lever, a.User is { } user ? $"{a.Client.Id} ({user.Name ?? user.Id})" : a.Client.Id,
                Common.Shown(a.Reason), a.SocketsNotified?.ToString(CultureInfo.InvariantCulture) ?? "-",
            ], "TERMINATION", "AT", "CONVERSATION", "LEVER", "BY", "REASON", "SOCKETS");
            return ExitCodes.Ok;
        }));
        return command;
    }
}
