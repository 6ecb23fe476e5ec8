using System.CommandLine;
using System.Globalization;
using Parley.Protocol;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace Parley.Cli;

/// <summary><c>receipts &lt;terminationId&gt;</c> or <c>receipts --conversation &lt;id&gt;</c>: who was told of a termination.</summary>
public static class Receipts
{
    public static Command Build(Session session)
    {
        var id = new Argument<string?>("terminationId") { Description = "The termination's id (the audit row's id)", Arity = ArgumentArity.ZeroOrOne };
        var conversation = new Option<string>("--conversation") { Description = "The receipts of every termination of this conversation", HelpName = "id" };
        var paging = new Common.Paging();
        var command = new Command("receipts", "Who was told of a termination: each guest socket and each webhook channel, and what is pending or failed")
        {
            id, conversation,
        };
        paging.AddTo(command);
        command.SetAction(session.Action(async () =>
        {
            var terminationId = session.Value(id);
            var conversationId = session.Value(conversation);
            if (terminationId is null == conversationId is null)
                throw new CliException(ExitCodes.Usage, "name a termination id, or give --conversation (one of the two)");
            var client = session.Client();
            if (terminationId is not null)
            {
                var receipt = await client.Receipts.GetAsync(terminationId, session.Cancellation);
                session.Terminal.Show(receipt, Render);
                return ExitCodes.Ok;
            }
            var listing = await client.Receipts.ListAsync(conversationId!, session.Value(paging.Size), session.Value(paging.Number), session.Cancellation);
            if (session.Terminal.Json) session.Terminal.WriteJson(listing);
            else
            {
                foreach (var receipt in listing.Entities)
                {
                    session.Terminal.Out.Write(Render(receipt));
                    session.Terminal.Out.WriteLine();
                }
                session.Terminal.PageLine(listing);
            }
            return ExitCodes.Ok;
        }));
        return command;
    }

    public static IRenderable Render(TerminationReceiptWire r)
    {
        var rows = new List<IRenderable>
        {
            Terminal.Fields([
                ("Termination", r.Id), ("Conversation", r.ConversationId), ("State", r.State), ("Lever", r.Lever), ("At", r.At),
                ("Sockets targeted", r.SocketsTargeted?.ToString(CultureInfo.InvariantCulture) ?? "not yet known"),
            ]),
        };
        if (r.Sockets.Count > 0)
            rows.Add(Terminal.Table(r.Sockets.Select(s => new[] { s.Node, s.SocketId, s.State, Common.Shown(s.At), Common.Shown(s.Error) }),
                "NODE", "SOCKET", "STATE", "AT", "ERROR"));
        if (r.Channels.Count > 0)
            rows.Add(Terminal.Table(r.Channels.Select(c => new[]
            {
                c.DeliveryId, Common.Shown(c.IntegrationId), c.State, c.Attempts.ToString(CultureInfo.InvariantCulture),
                c.LastStatus?.ToString(CultureInfo.InvariantCulture) ?? "-", Common.Shown(c.DeliveredAt), Common.Shown(c.LastError),
            }), "DELIVERY", "INTEGRATION", "STATE", "ATTEMPTS", "LAST STATUS", "DELIVERED", "LAST ERROR"));
        if (r.Sockets.Count == 0 && r.Channels.Count == 0) rows.Add(new Text("No socket or channel was told (none was connected).", Style.Plain));
        return new Rows(rows);
    }
}
