using System.CommandLine;
using System.Globalization;
using Parley.Protocol;
using Spectre.Console.Rendering;

namespace Parley.Cli;

/// <summary><c>deliveries [--state dead]</c> and <c>deliveries redeliver &lt;id&gt;</c>: open messaging webhook deliveries.</summary>
public static class Deliveries
{
    /// <summary>The server's state names; the command line takes them in any case.</summary>
    static readonly string[] States = ["Pending", "Delivered", "Dead"];

    public static Command Build(Session session)
    {
        var state = new Option<string>("--state") { Description = "pending, delivered or dead (the server's default: dead, the dead letters)", HelpName = "state" };
        var integration = new Option<string>("--integration") { Description = "Only this integration's deliveries", HelpName = "id" };
        var paging = new Common.Paging();
        var command = new Command("deliveries", "Open messaging webhook deliveries: the dead letters by default; redeliver one") { state, integration };
        paging.AddTo(command);
        command.SetAction(session.Action(async () =>
        {
            var wanted = session.Value(state) is { } s
                ? States.FirstOrDefault(known => string.Equals(known, s.Trim(), StringComparison.OrdinalIgnoreCase))
                    ?? throw new CliException(ExitCodes.Usage, $"--state: '{ServerSelection.Clip(s)}' is not pending, delivered or dead")
                : null;
            var listing = await session.Client().Deliveries.ListAsync(wanted, session.Value(integration), session.Value(paging.Size),
                session.Value(paging.Number), session.Cancellation);
            session.Terminal.Listing(listing, d =>
            [
                d.Id, d.IntegrationId, d.ConversationId, d.State, d.Attempts.ToString(CultureInfo.InvariantCulture),
                d.LastStatus?.ToString(CultureInfo.InvariantCulture) ?? "-", Common.Shown(d.LastError), d.DateCreated,
            ], "DELIVERY", "INTEGRATION", "CONVERSATION", "STATE", "ATTEMPTS", "LAST STATUS", "LAST ERROR", "CREATED");
            return ExitCodes.Ok;
        }));

        var id = Common.Id("delivery");
        var redeliver = new Command("redeliver", "Queue a dead-lettered delivery again") { id };
        redeliver.SetAction(session.Action(async () =>
        {
            var delivery = await session.Client().Deliveries.RedeliverAsync(session.Value(id)!, session.Cancellation);
            session.Terminal.Show(delivery, Render);
            return ExitCodes.Ok;
        }));
        command.Subcommands.Add(redeliver);
        return command;
    }

    public static IRenderable Render(DeliveryWire d) => Terminal.Fields([
        ("Delivery", d.Id), ("Integration", d.IntegrationId), ("Conversation", d.ConversationId), ("Message", d.MessageId), ("State", d.State),
        ("Attempts", d.Attempts.ToString(CultureInfo.InvariantCulture)), ("Last status", d.LastStatus?.ToString(CultureInfo.InvariantCulture)),
        ("Last error", d.LastError), ("Created", d.DateCreated), ("Delivered", d.DateDelivered),
    ]);
}
