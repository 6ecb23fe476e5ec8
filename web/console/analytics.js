// Analytics for the charts: conversation details from POST /api/v2/analytics/conversations/details/query
// (docs/compatibility.md §Analytics details) and, for the levers and reasons the analytics model has no field for, the
// termination audit. The aggregation functions are pure: they take rows and return the series the charts draw.
import { api, listAll } from './api.js';

export const RANGES = { '1h': 3_600_000, '24h': 86_400_000, '7d': 604_800_000 };
const BUCKETS = { '1h': 5 * 60_000, '24h': 3_600_000, '7d': 6 * 3_600_000 };
const MAX_PAGES = 10;   // 1000 conversations: a console chart, not a report

/** Conversations that started in the last `range`, all pages up to MAX_PAGES. */
export async function queryConversations(range, now = Date.now()) {
  const from = new Date(now - RANGES[range]).toISOString();
  const to = new Date(now + 60_000).toISOString();   // a minute ahead: one that starts while we read is not cut off
  const conversations = [];
  let total = 0;
  for (let page = 1; page <= MAX_PAGES; page++) {
    const { body } = await api('/api/v2/analytics/conversations/details/query', {
      method: 'POST', action: 'query analytics',
      body: { interval: `${from}/${to}`, order: 'asc', orderBy: 'conversationStart', paging: { pageSize: 100, pageNumber: page } },
    });
    total = body?.totalHits ?? 0;
    conversations.push(...(body?.conversations ?? []));
    if (!body?.conversations?.length || conversations.length >= total) break;
  }
  return { conversations, total, from: Date.parse(from), to: now };
}

/** Termination audit rows, newest first, back to `since` (the list is newest first). */
export async function terminationsSince(since) {
  const rows = await listAll('/api/v2/parley/audit/terminations', { maxPages: MAX_PAGES, action: 'read the termination audit' });
  return rows.filter((r) => Date.parse(r.timestamp) >= since);
}

/** Started and ended counts per time bucket. */
export function timeline(conversations, range, from, to) {
  const size = BUCKETS[range];
  const first = Math.floor(from / size) * size;
  const count = Math.max(1, Math.ceil((to - first) / size));
  const labels = [];
  const started = new Array(count).fill(0);
  const ended = new Array(count).fill(0);
  for (let i = 0; i < count; i++) labels.push(bucketLabel(first + i * size, range));
  const slot = (iso) => Math.min(count - 1, Math.max(0, Math.floor((Date.parse(iso) - first) / size)));
  for (const c of conversations) {
    started[slot(c.conversationStart)]++;
    if (c.conversationEnd) ended[slot(c.conversationEnd)]++;
  }
  return { labels, started, ended };
}

function bucketLabel(ms, range) {
  const d = new Date(ms);
  const hhmm = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  return range === '7d' ? `${d.toLocaleDateString([], { month: 'short', day: 'numeric' })} ${hhmm}` : hhmm;
}

export const DURATION_BINS = [
  ['< 10 s', 10], ['10–30 s', 30], ['30 s–1 min', 60], ['1–5 min', 300], ['5–15 min', 900], ['15–60 min', 3600], ['≥ 1 h', Infinity]];

/** How long ended conversations lasted, in DURATION_BINS. */
export function durations(conversations) {
  const counts = new Array(DURATION_BINS.length).fill(0);
  for (const c of conversations) {
    if (!c.conversationEnd) continue;
    const seconds = (Date.parse(c.conversationEnd) - Date.parse(c.conversationStart)) / 1000;
    counts[DURATION_BINS.findIndex(([, upTo]) => seconds < upTo)]++;
  }
  return { labels: DURATION_BINS.map(([label]) => label), counts };
}

/** How ended conversations ended: the customer's last segment's disconnectType (client, peer, system, inactivity, …). */
export function disconnectTypes(conversations) {
  const counts = new Map();
  for (const c of conversations) {
    if (!c.conversationEnd) continue;
    const customer = c.participants?.find((p) => p.purpose === 'customer') ?? c.participants?.[0];
    const segments = customer?.sessions?.flatMap((s) => s.segments ?? []) ?? [];
    const type = segments.findLast((s) => s.disconnectType)?.disconnectType ?? 'unknown';
    counts.set(type, (counts.get(type) ?? 0) + 1);
  }
  return counts;
}

/** Termination levers and reasons of the audit rows that belong to the charted conversations. */
export function leversAndReasons(audits, conversations) {
  const ids = new Set(conversations.map((c) => c.conversationId));
  const levers = new Map();
  const reasons = new Map();
  for (const a of audits) {
    if (!ids.has(a.conversationId)) continue;
    levers.set(a.lever, (levers.get(a.lever) ?? 0) + 1);
    const reason = a.reason?.trim() || '(no reason given)';
    reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
  }
  const top = [...reasons].sort((x, y) => y[1] - x[1]).slice(0, 8);
  return { levers, reasons: new Map(top) };
}
