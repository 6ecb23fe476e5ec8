using System.CommandLine;
using System.Globalization;
using Parley.Protocol;
using Spectre.Console.Rendering;

namespace Parley.Cli;

/// <summary><c>deployments list|show|create|update|delete</c>: web messaging deployments.</summary>
public static class Deployments
{
    public static Command Build(Session session)
    {
        var command = new Command("deployments", "Web messaging deployments (Parley's own API: Genesys Cloud has another)");
        command.Subcommands.Add(Common.List(session, "The deployments", (client, size, number, ct) => client.Deployments.ListAsync(size, number, ct), d =>
            [
                Common.Shown(d.Id), Common.Shown(d.Name), Disconnect(d), Inactivity(d), Common.Shown(d.QueueId), string.Join(' ', d.AllowedOrigins ?? []),
            ], "DEPLOYMENT", "NAME", "DISCONNECT NOTICE", "INACTIVITY", "QUEUE", "ORIGINS"));
        command.Subcommands.Add(Common.Show(session, "deployment", "One deployment", (client, id, ct) => client.Deployments.GetAsync(id, ct), Render));

        var createOptions = new DeploymentOptions();
        createOptions.Name.Required = true;
        var create = new Command("create", "Create a deployment");
        createOptions.AddTo(create);
        create.SetAction(session.Action(async () =>
        {
            var created = await session.Client().Deployments.CreateAsync(createOptions.Apply(session, new DeploymentWire()), session.Cancellation);
            session.Terminal.Show(created, Render);
            return ExitCodes.Ok;
        }));
        command.Subcommands.Add(create);

        // The API replaces a deployment whole (PUT): read it, change what the options name, write it back.
        var updateId = Common.Id("deployment");
        var updateOptions = new DeploymentOptions();
        var update = new Command("update", "Change a deployment's settings (those not named keep their values)") { updateId };
        updateOptions.AddTo(update);
        update.SetAction(session.Action(async () =>
        {
            var client = session.Client();
            var id = session.Value(updateId)!;
            var current = await client.Deployments.GetAsync(id, session.Cancellation);
            var updated = await client.Deployments.UpdateAsync(id, updateOptions.Apply(session, current with { DateCreated = null, SelfUri = null }),
                session.Cancellation);
            session.Terminal.Show(updated, Render);
            return ExitCodes.Ok;
        }));
        command.Subcommands.Add(update);

        command.Subcommands.Add(Common.Delete(session, "deployment", (client, id, ct) => client.Deployments.DeleteAsync(id, ct)));
        return command;
    }

    sealed class DeploymentOptions
    {
        public Option<string> Name { get; } = new("--name") { Description = "The deployment's name", HelpName = "name" };
        public Option<string[]> Origins { get; } = new("--allowed-origin") { Description = "A page origin allowed to connect (repeatable; default *)", HelpName = "origin" };
        public Option<bool?> DisconnectNotice { get; } = new("--disconnect-notice")
        {
            Description = "Tell guests when a conversation ends (conversationDisconnect.enabled): true or false", HelpName = "true|false",
        };
        public Option<string> DisconnectType { get; } = new("--disconnect-type") { Description = "After the end the guest may: ReadOnly or Send", HelpName = "type" };
        public Option<string> Inactivity { get; } = new("--inactivity-timeout")
        {
            Description = "End a conversation after this long without a message (seconds, or 30m, 2h; 0: never)", HelpName = "span",
        };
        public Option<int?> GuestRate { get; } = new("--guest-messages-per-second") { Description = "Guest messages allowed per session per second", HelpName = "n" };
        public Option<string> Queue { get; } = new("--queue") { Description = "The queue its conversations are routed to", HelpName = "id" };

        public void AddTo(Command command)
        {
            foreach (var option in new Option[] { Name, Origins, DisconnectNotice, DisconnectType, Inactivity, GuestRate, Queue }) command.Options.Add(option);
        }

        public DeploymentWire Apply(Session session, DeploymentWire d)
        {
            var disconnect = d.ConversationDisconnect ?? new ConversationDisconnectConfig(true, "ReadOnly");
            if (session.Value(DisconnectNotice) is { } enabled) disconnect = disconnect with { Enabled = enabled };
            if (session.Value(DisconnectType) is { } type) disconnect = disconnect with { Type = type };
            int? inactivity = d.InactivityTimeoutSeconds;
            if (session.Value(Inactivity) is { } span)
                inactivity = int.TryParse(span, NumberStyles.None, CultureInfo.InvariantCulture, out var seconds) ? seconds
                    : Common.Span(span.Trim()) is { } parsed && parsed.TotalSeconds <= int.MaxValue ? (int)parsed.TotalSeconds
                    : throw new CliException(ExitCodes.Usage, $"--inactivity-timeout: '{ServerSelection.Clip(span)}' is not seconds or a span (30m, 2h)");
            return d with
            {
                Name = session.Value(Name) ?? d.Name,
                AllowedOrigins = session.Value(Origins) is { Length: > 0 } origins ? [.. origins] : d.AllowedOrigins,
                ConversationDisconnect = disconnect,
                InactivityTimeoutSeconds = inactivity,
                GuestMessagesPerSecond = session.Value(GuestRate) ?? d.GuestMessagesPerSecond,
                QueueId = session.Value(Queue) ?? d.QueueId,
            };
        }
    }

    static string Disconnect(DeploymentWire d) =>
        d.ConversationDisconnect is { } c ? (c.Enabled ? $"on ({c.Type})" : $"off ({c.Type})") : "-";

    static string Inactivity(DeploymentWire d) =>
        d.InactivityTimeoutSeconds is > 0 and var s ? TimeSpan.FromSeconds(s).ToString("c", CultureInfo.InvariantCulture) : "never";

    public static IRenderable Render(DeploymentWire d) => Terminal.Fields([
        ("Deployment", d.Id), ("Name", d.Name), ("Allowed origins", string.Join(' ', d.AllowedOrigins ?? [])), ("Disconnect notice", Disconnect(d)),
        ("Inactivity timeout", Inactivity(d)), ("Guest messages/s", d.GuestMessagesPerSecond?.ToString(CultureInfo.InvariantCulture)),
        ("Queue", d.QueueId), ("Created", d.DateCreated),
    ]);
}
