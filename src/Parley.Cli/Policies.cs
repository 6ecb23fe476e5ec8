using System.CommandLine;
using System.Globalization;
using Parley.Protocol;
using Spectre.Console.Rendering;

namespace Parley.Cli;

/// <summary><c>policies list|show|create|delete|preview</c>: termination policies and their dry runs.</summary>
public static class Policies
{
    public static Command Build(Session session)
    {
        var command = new Command("policies", "Termination policies: rules that end conversations with no one calling (docs/ending-sessions.md)");
        command.Subcommands.Add(List(session));
        command.Subcommands.Add(Common.Show(session, "policy", "One termination policy", (client, id, ct) => client.Policies.GetAsync(id, ct), Render));
        command.Subcommands.Add(Create(session));
        command.Subcommands.Add(Common.Delete(session, "policy", (client, id, ct) => client.Policies.DeleteAsync(id, ct)));
        command.Subcommands.Add(Preview(session));
        return command;
    }

    static Command List(Session session)
    {
        var deployment = new Option<string>("--deployment") { Description = "Only this deployment's policies", HelpName = "id" };
        var integration = new Option<string>("--integration") { Description = "Only this open messaging integration's policies", HelpName = "id" };
        var paging = new Common.Paging();
        var command = new Command("list", "The termination policies") { deployment, integration };
        paging.AddTo(command);
        command.SetAction(session.Action(async () =>
        {
            var listing = await session.Client().Policies.ListAsync(session.Value(deployment), session.Value(integration),
                session.Value(paging.Size), session.Value(paging.Number), session.Cancellation);
            session.Terminal.Listing(listing, p =>
            [
                p.Id, p.Name, p.Type, p.Enabled ? "yes" : "no", p.DeploymentId is { } d ? $"deployment {d}" : $"integration {Common.Shown(p.IntegrationId)}", Rule(p),
            ], "POLICY", "NAME", "TYPE", "ENABLED", "APPLIES TO", "RULE");
            return ExitCodes.Ok;
        }));
        return command;
    }

    /// <summary>The policy's rule in a few words.</summary>
    static string Rule(TerminationPolicyWire p) => p.Type switch
    {
        TerminationPolicyTypes.MaxDuration => $"after {p.MaxDurationSeconds}s",
        TerminationPolicyTypes.Campaign => $"campaign {Common.Shown(p.Campaign)} started by {Common.Shown(p.StartedBy)}, at {Common.Shown(p.EndAt)}",
        TerminationPolicyTypes.BusinessHours => $"at {p.CloseAt} {p.TimeZone}{(p.Days is { Count: > 0 } days ? " on " + string.Join(',', days) : "")}",
        _ => "",
    };

    public static IRenderable Render(TerminationPolicyWire p) => Terminal.Fields([
        ("Policy", p.Id), ("Name", p.Name), ("Type", p.Type), ("Enabled", p.Enabled ? "yes" : "no"), ("Deployment", p.DeploymentId),
        ("Integration", p.IntegrationId), ("Rule", Rule(p)), ("Reason", p.Reason), ("Created", p.DateCreated), ("Modified", p.DateModified),
    ]);

    /// <summary>The options that describe a policy: <c>create</c> saves one, <c>preview</c> without an id dry-runs one unsaved.</summary>
    sealed class PolicyOptions
    {
        public Option<string> Name { get; } = new("--name") { Description = "The policy's name", HelpName = "name" };
        public Option<string> Type { get; } = new("--type")
        {
            Description = "maxDuration, campaign or businessHours", HelpName = "type",
        };
        public Option<string> Deployment { get; } = new("--deployment") { Description = "The deployment it applies to", HelpName = "id" };
        public Option<string> Integration { get; } = new("--integration") { Description = "Or the open messaging integration it applies to", HelpName = "id" };
        public Option<string> MaxDuration { get; } = new("--max-duration") { Description = "maxDuration: the longest a conversation may last (seconds, or 90s, 30m, 2h, 1d)", HelpName = "span" };
        public Option<string> Campaign { get; } = new("--campaign") { Description = "campaign: conversations started with this campaign tag", HelpName = "tag" };
        public Option<string> StartedBy { get; } = new("--started-by") { Description = "campaign: conversations this OAuth client (a bot) started", HelpName = "client-id" };
        public Option<string> EndAt { get; } = new("--end-at") { Description = "campaign: when they end (ISO-8601; default: when the policy is created)", HelpName = "time" };
        public Option<string> CloseAt { get; } = new("--close-at") { Description = "businessHours: the local closing time, HH:mm", HelpName = "HH:mm" };
        public Option<string> TimeZone { get; } = new("--time-zone") { Description = "businessHours: the IANA time zone, e.g. Europe/Paris", HelpName = "zone" };
        public Option<string> Days { get; } = new("--days") { Description = "businessHours: the days it closes, e.g. Mon,Tue,Wed (default: every day)", HelpName = "days" };
        public Option<string> Reason { get; } = new("--reason") { Description = "Recorded for each end it makes (default: policy '<name>')", HelpName = "text" };
        public Option<bool> Disabled { get; } = new("--disabled") { Description = "Save it switched off" };

        Option[] All => [Name, Type, Deployment, Integration, MaxDuration, Campaign, StartedBy, EndAt, CloseAt, TimeZone, Days, Reason, Disabled];

        public void AddTo(Command command)
        {
            foreach (var option in All) command.Options.Add(option);
        }

        /// <summary>The first of these options the command line gives, if any.</summary>
        public Option? FirstGiven(Session session) => All.FirstOrDefault(o => session.Parse.GetResult(o) is { Implicit: false });

        /// <summary>The request; the server checks the combination (which fields a type needs) and answers in its own words.</summary>
        public TerminationPolicyRequest Read(Session session)
        {
            int? seconds = null;
            if (session.Value(MaxDuration) is { } span)
            {
                if (int.TryParse(span, NumberStyles.None, CultureInfo.InvariantCulture, out var plain)) seconds = plain;
                else if (Common.Span(span.Trim()) is { } parsed && parsed.TotalSeconds <= int.MaxValue) seconds = (int)parsed.TotalSeconds;
                else throw new CliException(ExitCodes.Usage, $"--max-duration: '{ServerSelection.Clip(span)}' is not seconds or a span (90s, 30m, 2h, 1d)");
            }
            return new TerminationPolicyRequest
            {
                Name = session.Value(Name), Type = session.Value(Type), Enabled = session.Value(Disabled) ? false : true,
                DeploymentId = session.Value(Deployment), IntegrationId = session.Value(Integration), MaxDurationSeconds = seconds,
                Campaign = session.Value(Campaign), StartedBy = session.Value(StartedBy),
                EndAt = session.Value(EndAt) is { } endAt ? Common.Time(endAt, "--end-at", DateTimeOffset.UtcNow) : null,
                CloseAt = session.Value(CloseAt), TimeZone = session.Value(TimeZone),
                Days = session.Value(Days) is { } days ? [.. days.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)] : null,
                Reason = session.Value(Reason),
            };
        }
    }

    static Command Create(Session session)
    {
        var options = new PolicyOptions();
        options.Name.Required = true;
        options.Type.Required = true;
        var command = new Command("create", "Save a termination policy (it starts acting at once unless --disabled; preview it first)");
        options.AddTo(command);
        command.SetAction(session.Action(async () =>
        {
            var policy = await session.Client().Policies.CreateAsync(options.Read(session), session.Cancellation);
            session.Terminal.Show(policy, Render);
            return ExitCodes.Ok;
        }));
        return command;
    }

    static Command Preview(Session session)
    {
        var id = new Argument<string?>("id") { Description = "A saved policy's id; without it, the policy the options describe (unsaved)", Arity = ArgumentArity.ZeroOrOne };
        var options = new PolicyOptions();
        var command = new Command("preview", "Dry run: which live conversations a policy would end, and when. Ends nothing") { id };
        options.AddTo(command);
        command.SetAction(session.Action(async () =>
        {
            if (session.Value(id) is not null && options.FirstGiven(session) is { } extra)
                throw new CliException(ExitCodes.Usage, $"{extra.Name} describes an unsaved policy; give a saved policy's id or the options, not both");
            var client = session.Client();
            var preview = session.Value(id) is { } policyId
                ? await client.Policies.PreviewAsync(policyId, session.Cancellation)
                : await client.Policies.PreviewAsync(options.Read(session), session.Cancellation);
            session.Terminal.Show(preview, Terminate.Render);
            return ExitCodes.Ok;
        }));
        return command;
    }
}
