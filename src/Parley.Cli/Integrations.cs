using System.CommandLine;
using Parley.Protocol;
using Spectre.Console.Rendering;

namespace Parley.Cli;

/// <summary>
/// <c>integrations list|show|create|update|delete</c>: open messaging integrations. The webhook's signing secret is never
/// an argument: it is typed at a prompt, or piped with <c>--webhook-secret-stdin</c>.
/// </summary>
public static class Integrations
{
    public static Command Build(Session session)
    {
        var command = new Command("integrations", "Open messaging integrations (the Genesys Cloud API, with Parley's extra fields)");
        command.Subcommands.Add(Common.List(session, "The open messaging integrations",
            (client, size, number, ct) => client.Integrations.ListAsync(size, number, ct), i =>
            [
                i.Id, i.Name, i.OutboundNotificationWebhookUrl, i.Status, i.DisconnectNotification ? "yes" : "no", Common.Shown(i.QueueId),
            ], "INTEGRATION", "NAME", "WEBHOOK", "STATUS", "END NOTICE", "QUEUE"));

        command.Subcommands.Add(Common.Show(session, "integration", "One integration (its secret shows as its last four characters only)",
            (client, id, ct) => client.Integrations.GetAsync(id, ct), Render));

        var createOptions = new IntegrationOptions();
        createOptions.Name.Required = true;
        createOptions.WebhookUrl.Required = true;
        var create = new Command("create", "Create an integration: its webhook URL, and the secret its deliveries are signed with (prompted, or --webhook-secret-stdin)");
        createOptions.AddTo(create);
        create.SetAction(session.Action(async () =>
        {
            var secret = Common.ReadSecret(session, session.Value(createOptions.SecretFromStdin), "Webhook signing secret:", "--webhook-secret-stdin");
            var created = await session.Client().Integrations.CreateAsync(createOptions.Read(session, secret), session.Cancellation);
            session.Terminal.Show(created, Render);
            return ExitCodes.Ok;
        }));
        command.Subcommands.Add(create);

        var updateId = Common.Id("integration");
        var updateOptions = new IntegrationOptions();
        var update = new Command("update", "Change an integration (only what the options name; a new secret with --webhook-secret-stdin)") { updateId };
        updateOptions.AddTo(update);
        update.SetAction(session.Action(async () =>
        {
            var secret = session.Value(updateOptions.SecretFromStdin)
                ? Common.ReadSecret(session, true, "Webhook signing secret:", "--webhook-secret-stdin") : null;
            var updated = await session.Client().Integrations.UpdateAsync(session.Value(updateId)!, updateOptions.Read(session, secret), session.Cancellation);
            session.Terminal.Show(updated, Render);
            return ExitCodes.Ok;
        }));
        command.Subcommands.Add(update);

        command.Subcommands.Add(Common.Delete(session, "integration", (client, id, ct) => client.Integrations.DeleteAsync(id, ct)));
        return command;
    }

    sealed class IntegrationOptions
    {
        public Option<string> Name { get; } = new("--name") { Description = "The integration's name", HelpName = "name" };
        public Option<string> WebhookUrl { get; } = new("--webhook-url") { Description = "Where Parley sends outbound messages and events (https)", HelpName = "url" };
        public Option<bool> SecretFromStdin { get; } = new("--webhook-secret-stdin") { Description = "Read the webhook signing secret from standard input (one line)" };
        public Option<string[]> Headers { get; } = new("--header") { Description = "A header sent with every webhook call, Name=value (repeatable)", HelpName = "name=value" };
        public Option<bool?> EndNotice { get; } = new("--disconnect-notification") { Description = "Send the channel a Presence Disconnect when a conversation ends: true or false", HelpName = "true|false" };
        public Option<string> Queue { get; } = new("--queue") { Description = "The queue its conversations are routed to", HelpName = "id" };

        public void AddTo(Command command)
        {
            foreach (var option in new Option[] { Name, WebhookUrl, SecretFromStdin, Headers, EndNotice, Queue }) command.Options.Add(option);
        }

        public OpenIntegrationRequest Read(Session session, string? secret)
        {
            Dictionary<string, string>? headers = null;
            foreach (var header in session.Value(Headers) ?? [])
            {
                var equals = header.IndexOf('=');
                if (equals <= 0) throw new CliException(ExitCodes.Usage, $"--header: '{ServerSelection.Clip(header)}' is not Name=value");
                (headers ??= new(StringComparer.OrdinalIgnoreCase))[header[..equals].Trim()] = header[(equals + 1)..].Trim();
            }
            return new OpenIntegrationRequest
            {
                Name = session.Value(Name), OutboundNotificationWebhookUrl = session.Value(WebhookUrl),
                OutboundNotificationWebhookSignatureSecretToken = secret, WebhookHeaders = headers,
                DisconnectNotification = session.Value(EndNotice), QueueId = session.Value(Queue),
            };
        }
    }

    public static IRenderable Render(OpenIntegrationWire i) => Terminal.Fields([
        ("Integration", i.Id), ("Name", i.Name), ("Webhook", i.OutboundNotificationWebhookUrl),
        ("Secret", i.OutboundNotificationWebhookSignatureSecretToken), ("Headers", string.Join(", ", i.WebhookHeaders.Keys)),
        ("Status", i.Status), ("End notice", i.DisconnectNotification ? "yes" : "no"), ("Queue", i.QueueId),
        ("Created", i.DateCreated), ("Modified", i.DateModified),
    ]);
}
