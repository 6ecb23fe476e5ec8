using System.CommandLine;
using Parley.Client;
using Parley.Protocol;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace Parley.Cli;

/// <summary>
/// <c>terminate</c>: one conversation by the recipe that works on Genesys Cloud too (Parley.Client's TerminateAsync, a
/// verified result); every live conversation a filter matches (a bulk termination, with a progress bar while its job
/// runs); or what a policy says is due now. <c>--dry-run</c> with a filter or a policy: the server's preview, ending nothing.
/// </summary>
public static class Terminate
{
    /// <summary>The filter's fields, spelt as the API spells them: a misspelt one is refused, never ignored (it would widen the set).</summary>
    static readonly string[] FilterFields = ["deploymentId", "integrationId", "queueId", "startedBefore", "startedAfter", "campaign", "customerId", "startedBy"];

    public static Command Build(Session session)
    {
        var id = new Argument<string?>("conversationId") { Description = "The conversation to end", Arity = ArgumentArity.ZeroOrOne };
        var reason = new Option<string>("--reason") { Description = "Why: recorded in the termination audit (required to end one conversation or a filtered set)", HelpName = "text" };
        var filter = new Option<string[]>("--filter")
        {
            Description = "End every live conversation that matches: field=value pairs, comma-separated or repeated; fields " +
                string.Join(", ", FilterFields),
            HelpName = "field=value,…",
        };
        var startedBefore = new Option<string>("--started-before") { Description = "With --filter: started before this time (ISO-8601, or a span back from now: 2h, 1d)", HelpName = "time" };
        var startedAfter = new Option<string>("--started-after") { Description = "With --filter: started after this time (ISO-8601, or a span back from now)", HelpName = "time" };
        var policy = new Option<string>("--policy") { Description = "End now what this termination policy says is due now", HelpName = "id" };
        var dryRun = new Option<bool>("--dry-run") { Description = "With --filter or --policy: list what it would end now (and a policy's later ones), ending nothing" };
        var noWait = new Option<bool>("--no-wait") { Description = "Bulk and policy: print the job as the server answered and do not wait for it" };
        var command = new Command("terminate", "End a conversation for good (verified), every conversation a filter matches, or what a policy says is due")
        {
            id, reason, filter, startedBefore, startedAfter, policy, dryRun, noWait,
        };
        command.SetAction(session.Action(async () =>
        {
            var conversationId = session.Value(id);
            var filters = session.Value(filter) ?? [];
            var policyId = session.Value(policy);
            var bulk = filters.Length > 0 || session.Value(startedBefore) is not null || session.Value(startedAfter) is not null;
            if ((conversationId is not null ? 1 : 0) + (bulk ? 1 : 0) + (policyId is not null ? 1 : 0) != 1)
                throw new CliException(ExitCodes.Usage, "name one conversation, or give --filter, or --policy (one of the three)");
            var why = session.Value(reason);
            if (policyId is not null)
            {
                if (why is not null) throw new CliException(ExitCodes.Usage, "--reason does not go with --policy: the policy's own reason is recorded");
                return session.Value(dryRun) ? await PreviewAsync(session, policyId) : await ApplyAsync(session, policyId, session.Value(noWait));
            }
            if (session.Value(dryRun) && conversationId is not null)
                throw new CliException(ExitCodes.Usage, "--dry-run goes with --filter or --policy: the server has no dry run of one end " +
                    "(conversations show says whether it is live)");
            if (session.Value(dryRun))
            {
                var previewed = Filter(filters, session.Value(startedBefore), session.Value(startedAfter), DateTimeOffset.UtcNow);
                var preview = await session.Client().BulkTerminations.PreviewAsync(previewed, session.Cancellation);
                session.Terminal.Show(preview, Render);
                return ExitCodes.Ok;
            }
            if (string.IsNullOrWhiteSpace(why)) throw new CliException(ExitCodes.Usage, "--reason is required: it is recorded in the termination audit");
            if (conversationId is not null) return await OneAsync(session, conversationId, why);
            var matching = Filter(filters, session.Value(startedBefore), session.Value(startedAfter), DateTimeOffset.UtcNow);
            return await BulkAsync(session, matching, why, session.Value(noWait));
        }));
        return command;
    }

    static async Task<int> OneAsync(Session session, string conversationId, string reason)
    {
        var result = await session.Client().TerminateAsync(conversationId, reason, session.Cancellation);
        session.Terminal.Show(result, Render);
        var code = result.Status switch
        {
            TerminationStatus.Ended or TerminationStatus.AlreadyEnded => ExitCodes.Ok,
            TerminationStatus.NotFound => ExitCodes.NotFound,
            _ => ExitCodes.Refused,
        };
        // The outcome is on standard output (for --json, the whole result); a failure says so on standard error too.
        if (code != ExitCodes.Ok) session.Terminal.Error.WriteLine($"parley: {ParleyCli.OneLine(result.Message)}", Style.Plain);
        return code;
    }

    public static IRenderable Render(TerminationResult r)
    {
        var e = r.Evidence;
        return new Rows(
            new Text(r.Message),
            Terminal.Fields([
                ("Conversation", r.ConversationId), ("Outcome", r.Status.ToString()), ("Lever", r.Lever?.ToString()),
                ("Conversation state", e.ConversationState), ("Customer", e.CustomerState is null ? null : $"{e.CustomerState} at {Common.Shown(e.CustomerEndTime)}"),
                ("Disconnect type", e.CustomerDisconnectType), ("Analytics end", e.AnalyticsConversationEnd),
                ("Sockets told", e.SocketsNotified?.ToString(System.Globalization.CultureInfo.InvariantCulture)),
                ("Termination", e.TerminationId), ("Receipt", e.ReceiptUri),
                ("Calls", e.Calls.Count == 0 ? null : string.Join("\n", e.Calls.Select(c => c.ToString()))),
            ]));
    }

    /// <summary>The filter from <c>field=value</c> pairs and the two time options; an unknown field or an empty filter is refused here.</summary>
    public static TerminationFilter Filter(IEnumerable<string> pairs, string? startedBefore, string? startedAfter, DateTimeOffset now)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var pair in pairs.SelectMany(p => p.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)))
        {
            var equals = pair.IndexOf('=');
            var field = equals < 0 ? pair : pair[..equals].Trim();
            var known = FilterFields.FirstOrDefault(f => string.Equals(f, field, StringComparison.OrdinalIgnoreCase));
            if (equals < 0 || known is null)
                throw new CliException(ExitCodes.Usage, $"--filter: '{ServerSelection.Clip(pair)}' is not field=value with a field among {string.Join(", ", FilterFields)}");
            var value = pair[(equals + 1)..].Trim();
            if (value.Length == 0) throw new CliException(ExitCodes.Usage, $"--filter: {known} needs a value");
            if (!values.TryAdd(known, value)) throw new CliException(ExitCodes.Usage, $"--filter: {known} is given twice");
        }
        foreach (var (field, option, text) in new[] { ("startedBefore", "--started-before", startedBefore), ("startedAfter", "--started-after", startedAfter) })
        {
            if (text is null) continue;
            if (values.ContainsKey(field)) throw new CliException(ExitCodes.Usage, $"give {field} in --filter or as {option}, not both");
            values[field] = text;
        }
        if (values.Count == 0) throw new CliException(ExitCodes.Usage, "--filter needs at least one field: an empty filter would end everything");
        string? Time(string field, string option) => values.TryGetValue(field, out var t) ? Common.Time(t, option, now) : null;
        return new TerminationFilter
        {
            DeploymentId = values.GetValueOrDefault("deploymentId"), IntegrationId = values.GetValueOrDefault("integrationId"),
            QueueId = values.GetValueOrDefault("queueId"), Campaign = values.GetValueOrDefault("campaign"),
            CustomerId = values.GetValueOrDefault("customerId"), StartedBy = values.GetValueOrDefault("startedBy"),
            StartedBefore = Time("startedBefore", "--started-before"), StartedAfter = Time("startedAfter", "--started-after"),
        };
    }

    static async Task<int> BulkAsync(Session session, TerminationFilter filter, string reason, bool noWait)
    {
        var client = session.Client();
        var job = await client.BulkTerminations.StartAsync(filter, reason, session.Cancellation);
        return await FinishAsync(session, client, job, noWait);
    }

    static async Task<int> ApplyAsync(Session session, string policyId, bool noWait)
    {
        var client = session.Client();
        var job = await client.Policies.ApplyAsync(policyId, session.Cancellation);
        return await FinishAsync(session, client, job, noWait);
    }

    /// <summary>
    /// Waits for a job that is still running, with a progress bar on standard error for people (none with --json), then
    /// shows the final counts. Exit 1 when the job failed or some conversations could not be ended.
    /// </summary>
    static async Task<int> FinishAsync(Session session, ParleyClient client, BulkTerminationWire job, bool noWait)
    {
        if (job.State == TerminationJobStates.Pending && !noWait)
        {
            if (session.Terminal.Json || !session.Terminal.Error.Profile.Capabilities.Interactive)
            {
                if (!session.Terminal.Json) session.Terminal.Error.WriteLine($"Job {job.Id} is running; waiting for it to finish", Style.Plain);
                job = await client.BulkTerminations.WaitAsync(job, ct: session.Cancellation);
            }
            else
            {
                var started = job;
                job = await session.Terminal.Error.Progress()
                    .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
                    .StartAsync(async context =>
                    {
                        // The job counts its matches as it goes: the bar's length grows with them.
                        var bar = context.AddTask($"Job {started.Id}", maxValue: Math.Max(1, started.Matched));
                        var progress = new Progress<BulkTerminationWire>(now =>
                        {
                            bar.MaxValue = Math.Max(1, now.Matched);
                            bar.Value = now.Ended + now.AlreadyEnded + now.Failed;
                        });
                        var done = await client.BulkTerminations.WaitAsync(started, progress, ct: session.Cancellation);
                        bar.Value = bar.MaxValue;
                        return done;
                    });
            }
        }
        session.Terminal.Show(job, Render);
        if (job.State == TerminationJobStates.Failed)
        {
            session.Terminal.Error.WriteLine($"parley: the job failed: {ParleyCli.OneLine(job.ErrorMessage ?? "no reason given")}", Style.Plain);
            return ExitCodes.Refused;
        }
        if (job.Failed > 0)
        {
            session.Terminal.Error.WriteLine($"parley: {job.Failed} of {job.Matched} conversations could not be ended (job {job.Id})", Style.Plain);
            return ExitCodes.Refused;
        }
        return ExitCodes.Ok;
    }

    public static IRenderable Render(BulkTerminationWire job) => Terminal.Fields([
        ("Job", job.Id), ("State", job.State), ("Matched", Number(job.Matched)), ("Ended", Number(job.Ended)),
        ("Already ended", Number(job.AlreadyEnded)), ("Failed", Number(job.Failed)), ("Sockets told", Number(job.SocketsNotified)),
        ("End notices stored", Number(job.ChannelsNotified)), ("Reason", job.Reason), ("Error", job.ErrorMessage),
        ("Created", job.DateCreated), ("Completed", job.DateCompleted),
    ]);

    static string Number(int n) => n.ToString(System.Globalization.CultureInfo.InvariantCulture);

    static async Task<int> PreviewAsync(Session session, string policyId)
    {
        var preview = await session.Client().Policies.PreviewAsync(policyId, session.Cancellation);
        session.Terminal.Show(preview, Render);
        return ExitCodes.Ok;
    }

    /// <summary>
    /// A preview split as apply would act on it: what is due at the evaluation time (<c>endsAt</c> ≤ <c>evaluatedAt</c>) is what
    /// <c>terminate --policy</c> (or a bulk termination) would end now; the rest is due later and is listed apart. Entries come
    /// soonest first, so when the server listed fewer than its total, the unlisted ones are later than every listed one.
    /// </summary>
    public static IRenderable Render(PolicyPreviewWire preview)
    {
        var evaluated = DateTimeOffset.Parse(preview.EvaluatedAt, System.Globalization.CultureInfo.InvariantCulture);
        bool DueNow(PolicyPreviewEntry e) => DateTimeOffset.Parse(e.EndsAt, System.Globalization.CultureInfo.InvariantCulture) <= evaluated;
        var now = preview.Entities.Where(DueNow).ToList();
        var later = preview.Entities.Where(e => !DueNow(e)).ToList();
        var unlisted = Math.Max(0, preview.Total - preview.Entities.Count);
        static Table Listed(IEnumerable<PolicyPreviewEntry> entries) => Terminal.Table(
            entries.Select(e => new[] { e.ConversationId, e.StartTime, e.EndsAt, Common.Shown(e.QueueId), Common.Shown(e.Campaign) }),
            "CONVERSATION", "STARTED", "ENDS AT", "QUEUE", "CAMPAIGN");
        static string Plural(long n) => $"{n} conversation{(n == 1 ? "" : "s")}";
        var rows = new List<IRenderable>();
        if (now.Count > 0) rows.Add(Listed(now));
        // All listed due now and more unlisted: those may be due now or later (a policy's); say so rather than guess.
        var nowLine = later.Count == 0 && unlisted > 0
            ? $"{Plural(now.Count)} listed would be ended now, of {preview.Total} matched (the other {unlisted} are not listed)"
            : $"{Plural(now.Count)} would be ended now";
        rows.Add(new Text($"{nowLine} (evaluated {preview.EvaluatedAt}); nothing was ended"));
        if (later.Count > 0)
        {
            rows.Add(Listed(later));
            rows.Add(new Text($"{Plural(later.Count + unlisted)} due later, not ended by applying it now" +
                (unlisted > 0 ? $" ({unlisted} not listed)" : "")));
        }
        return new Rows(rows);
    }
}
