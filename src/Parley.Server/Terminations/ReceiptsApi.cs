using Microsoft.AspNetCore.Http.HttpResults;
using Parley.Protocol;
using Parley.Server.OAuth;
using Parley.Server.Protocol;

namespace Parley.Server.Terminations;

/// <summary>
/// Termination receipts (Parley extension; docs/ending-sessions.md "Receipts"): one by its termination id (the audit row's
/// id), or a conversation's, newest first. Permission <c>audits:audit:view</c>, as the audit itself.
/// </summary>
public static class ReceiptsApi
{
    public static void MapReceiptsApi(this IEndpointRouteBuilder app)
    {
        var receipts = app.MapPlatformGroup("/parley", "Parley: termination receipts");
        receipts.MapGet("/receipts/{terminationId}", GetAsync).RequirePermission(Permissions.AuditView)
            .Produces<TerminationReceiptWire>().Errors(404);
        receipts.MapGet("/receipts", ListAsync).RequirePermission(Permissions.AuditView)
            .Produces<EntityListing<TerminationReceiptWire>>().Errors(400);
    }

    static async Task<Results<WireJson<TerminationReceiptWire>, ApiError>> GetAsync(string terminationId, ReceiptReader receipts, CancellationToken ct) =>
        terminationId.Length <= 100 && await receipts.GetAsync(terminationId, ct) is { } receipt
            ? PlatformResults.Json(receipt, ParleyJson.Wire.TerminationReceiptWire)
            : ApiError.NotFound("termination receipt", terminationId);

    static async Task<Results<WireJson<EntityListing<TerminationReceiptWire>>, ApiError>> ListAsync(string? conversationId, int? pageSize, int? pageNumber,
        ReceiptReader receipts, CancellationToken ct)
    {
        if (PlatformRequest.Paging(pageSize, pageNumber, out var size, out var number) is { } bad) return bad;
        if (conversationId is { Length: > 100 }) return ApiError.BadRequest("conversationId is too long.", "conversationId");
        var page = await receipts.ListAsync(conversationId, size, number, ct);
        return PlatformResults.Json(new EntityListing<TerminationReceiptWire>
        {
            Entities = [.. page.Entities], PageSize = size, PageNumber = number, Total = page.Total, PageCount = page.PageCount,
        }, ParleyJson.Wire.EntityListingTerminationReceiptWire);
    }
}
