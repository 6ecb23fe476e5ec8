// The operations console: wiring of sign-in, the live list, the transcript, termination, audit, deliveries and charts.
// Data sources, per view, are in docs/console.md. Built by web/build.mjs (the page's CSS comes in through this import).
import './console.css';
import { ApiError, api, hooks } from './api.js';
import { LoginError, clip, completeLogin, currentToken, forgetToken, startLogin } from './auth.js';
import { $, el, shortId, time } from './dom.js';
import { isEnded, LiveFeed, mergeConversation, messageIdOf } from './live.js';
import { queryConversations, RANGES, terminationsSince } from './analytics.js';
import { renderCharts } from './charts.js';

const live = new Map();            // active conversations by id, as the API and the events describe them
let selected = null;               // {id, conversation, messages: Map<messageId, MessageData|null>}
let feed = null;
let view = 'conversations';

// ------------------------------------------------------------------ errors and sign-in

function showError(message) {
  const banner = $('#banner');
  banner.replaceChildren(el('span', {}, message), el('button', { type: 'button', 'aria-label': 'Dismiss', onclick: () => { banner.hidden = true; } }, '×'));
  banner.hidden = false;
}

/** Runs an action, showing its failure in the banner (a 401 is handled by the hook: back to sign-in). */
async function attempt(action) {
  try { return await action(); } catch (error) {
    if (error instanceof ApiError && error.status === 401) return undefined;
    showError(error.message ?? String(error));
    return undefined;
  }
}

let signedIn = false;   // a request still in flight after "Sign out" must not replace "Signed out." with "session ended"

function showSignin(message) {
  signedIn = false;
  feed?.stop();
  feed = null;
  $('#app').hidden = true;
  $('#user-name').hidden = true;
  $('#logout').hidden = true;
  $('#signin').hidden = false;
  $('#signin-message').textContent = message ?? 'Sign in to watch and end conversations.';
  setStatus('idle', 'offline');
}

hooks.unauthorized = () => { if (!signedIn) return; forgetToken(); showSignin('Your session has ended or was refused; sign in again.'); };

$('#signin-button').addEventListener('click', () => startLogin().catch((e) => showSignin(`Could not start signing in: ${e.message}`)));
$('#logout').addEventListener('click', () => { forgetToken(); live.clear(); selected = null; showSignin('Signed out.'); });

function setStatus(state, text) {
  const status = $('#stream-status');
  status.dataset.state = state;
  status.textContent = text;
}

// ------------------------------------------------------------------ live list

function customerOf(c) { return c.participants?.find((p) => p.purpose === 'customer'); }

function label(c) {
  const customer = customerOf(c);
  return customer?.name || customer?.fromAddress?.addressNormalized || customer?.address || shortId(c.id);
}

const startOf = (c) => customerOf(c)?.startTime ?? c.participants?.[0]?.startTime ?? '';
const messageCount = (c) => (c.participants ?? []).reduce((n, p) => n + (p.messages?.length ?? 0), 0);

function renderList() {
  const items = [...live.values()].sort((a, b) => startOf(b).localeCompare(startOf(a))).map((c) => el('li', {
    'data-conversation-id': c.id, class: selected?.id === c.id ? 'selected' : undefined,
  }, el('button', { type: 'button', onclick: () => select(c.id) },
    el('strong', {}, label(c)),
    el('span', { class: 'meta' }, `${time(startOf(c))} · ${messageCount(c)} message${messageCount(c) === 1 ? '' : 's'}`),
    el('code', {}, c.id))));
  $('#live-list').replaceChildren(...items);
  $('#live-count').textContent = String(live.size);
  $('#live-empty').hidden = live.size > 0;
}

function onConversation(event) {
  const c = mergeConversation(live.get(event.id) ?? (selected?.id === event.id ? selected.conversation : null), event);
  if (isEnded(c)) live.delete(c.id); else live.set(c.id, c);
  renderList();
  if (selected?.id === c.id) showTranscript(c);
  if (isEnded(c) && view === 'audit') loadAudit();
}

function startFeed() {
  feed?.stop();
  feed = new LiveFeed({
    onSnapshot(list) {
      live.clear();
      for (const c of list) live.set(c.id, c);
      renderList();
      if (selected) select(selected.id);   // a reconnect may have missed messages: read the open one again
    },
    onConversation,
    onStatus(state, detail) {
      setStatus(state, { connecting: 'connecting…', live: 'live', reconnecting: 'reconnecting…', stopped: 'offline' }[state] ?? state);
      $('#stream-status').title = detail ?? '';
      if (state === 'reconnecting' && detail) showError(`Live updates interrupted: ${detail}`);
      if (state === 'stopped' && detail && currentToken()) showError(`No live updates: ${detail}`);
      if (state === 'live') $('#banner').hidden = true;
    },
  });
  feed.start();
}

// ------------------------------------------------------------------ transcript and termination

async function select(id) {
  if (selected?.id !== id) selected = { id, conversation: null, messages: new Map() };
  $('#terminate-result').textContent = '';
  $('#terminate-result').className = 'result';
  renderList();
  const answer = await attempt(() => api(`/api/v2/conversations/messages/${encodeURIComponent(id)}`, { action: 'read the conversation' }));
  if (answer && selected?.id === id) showTranscript(answer.body);
}

function showTranscript(c) {
  selected.conversation = c;
  $('#transcript').hidden = false;
  $('#transcript-empty').hidden = true;
  $('#transcript').dataset.conversationId = c.id;
  $('#transcript-title').textContent = label(c);
  const ended = isEnded(c);
  $('#transcript-state').textContent = ended ? 'ended' : 'connected';
  $('#transcript-state').dataset.state = ended ? 'ended' : 'connected';
  $('#terminate').disabled = ended;
  $('#terminate-reason').disabled = ended;
  $('#transcript-participants').replaceChildren(...(c.participants ?? []).flatMap((p) => [
    el('dt', {}, p.purpose),
    el('dd', {}, `${p.name ?? p.address ?? shortId(p.id)} — ${p.state}${p.disconnectType ? ` (${p.disconnectType})` : ''}`),
  ]));
  // Message ids come from the conversation (API or event); their text from the message endpoint, once each.
  const wanted = (c.participants ?? []).flatMap((p) => p.messages ?? []).map(messageIdOf).filter(Boolean);
  const fresh = wanted.filter((mid) => !selected.messages.has(mid)).slice(-200);
  for (const mid of fresh) selected.messages.set(mid, null);
  fetchMessages(c.id, fresh);
  renderMessages();
}

async function fetchMessages(conversationId, ids) {
  const queue = [...ids];
  const worker = async () => {
    while (queue.length > 0) {
      const mid = queue.shift();
      const answer = await attempt(() => api(
        `/api/v2/conversations/messages/${encodeURIComponent(conversationId)}/messages/${encodeURIComponent(mid)}`, { action: 'read a message' }));
      if (!answer || selected?.id !== conversationId) continue;
      selected.messages.set(mid, answer.body);
      renderMessages();
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
}

/** What an event-only message says (Presence Join, …); typing indicators are left out of the transcript. */
function eventText(m) {
  const events = (m.normalizedMessage?.events ?? []).filter((e) => e.eventType !== 'Typing');
  return events.map((e) => [e.eventType, e.presence?.type].filter(Boolean).join(' ')).join(', ');
}

function renderMessages() {
  const loaded = [...selected.messages.values()].filter(Boolean)
    .map((m) => ({ ...m, text: m.textBody || m.normalizedMessage?.text || '', note: eventText(m) }))
    .filter((m) => m.text || m.note)
    .sort((a, b) => (a.sequence ?? 0) - (b.sequence ?? 0) || a.timestamp.localeCompare(b.timestamp));
  $('#messages').replaceChildren(...loaded.map((m) => el('li', {
    class: `msg ${m.direction === 'inbound' ? 'inbound' : 'outbound'}${m.text ? '' : ' event'}`, 'data-message-id': m.id,
  }, el('span', { class: 'who' }, m.direction === 'inbound' ? 'guest' : 'bot'),
    el('time', { datetime: m.timestamp }, time(m.timestamp)),
    el('p', {}, m.text || m.note))));
}

$('#terminate-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  if (!selected) return;
  const id = selected.id;
  const reason = $('#terminate-reason').value.trim();
  const result = $('#terminate-result');
  $('#terminate').disabled = true;
  result.className = 'result';
  result.textContent = 'Ending the conversation…';
  try {
    // docs/compatibility.md §Termination levers: the whole conversation, with Parley's reason extension for the audit.
    const answer = await api(`/api/v2/conversations/messages/${encodeURIComponent(id)}`, {
      method: 'PATCH', body: { state: 'disconnected', reason }, action: 'terminate this conversation',
    });
    const told = answer.headers.get('Parley-Sockets-Notified');
    result.className = 'result ok';
    result.textContent = `Ended. ${told === null ? '' : `${told} guest socket${told === '1' ? ' was' : 's were'} told before the answer.`}`.trim();
    $('#terminate-reason').value = '';
  } catch (error) {
    result.className = 'result error';
    result.textContent = error.status === 409 ? 'This conversation had already ended.' : error.message;
    if (selected?.id === id && !isEnded(selected.conversation ?? {})) $('#terminate').disabled = false;
  }
});

// ------------------------------------------------------------------ audit, deliveries, analytics

const byWhom = (a) => a.user?.name ?? a.user?.username ?? a.user?.id ?? (a.client?.id ? `client ${a.client.id}` : '');

async function loadAudit() {
  const answer = await attempt(() => api('/api/v2/parley/audit/terminations?pageSize=50', { action: 'read the termination audit' }));
  if (!answer) return;
  $('#audit tbody').replaceChildren(...(answer.body?.entities ?? []).map((a) => el('tr', { 'data-conversation-id': a.conversationId },
    el('td', {}, time(a.timestamp)), el('td', {}, el('code', {}, a.conversationId)), el('td', {}, a.lever),
    el('td', {}, a.reason ?? ''), el('td', { class: 'by' }, byWhom(a)), el('td', {}, a.socketsNotified ?? ''))));
}

async function loadDeliveries() {
  const state = $('#delivery-state').value;
  const answer = await attempt(() => api(`/api/v2/parley/openmessaging/deliveries?state=${state}&pageSize=50`, { action: 'read the webhook deliveries' }));
  if (!answer) return;
  $('#deliveries tbody').replaceChildren(...(answer.body?.entities ?? []).map((d) => el('tr', { 'data-delivery-id': d.id },
    el('td', {}, time(d.dateCreated)), el('td', {}, el('code', {}, shortId(d.integrationId))), el('td', {}, el('code', {}, shortId(d.conversationId))),
    el('td', {}, d.attempts), el('td', {}, `${d.lastStatus ?? ''} ${clip(d.lastError ?? '', 80)}`.trim()),
    el('td', {}, el('code', { class: 'body' }, clip(JSON.stringify(d.body), 120))),
    el('td', {}, d.state === 'Dead' ? el('button', { type: 'button', onclick: (e) => redeliver(d.id, e.target) }, 'Redeliver') : d.state))));
}

async function redeliver(id, button) {
  button.disabled = true;
  const answer = await attempt(() => api(`/api/v2/parley/openmessaging/deliveries/${encodeURIComponent(id)}/redeliver`,
    { method: 'POST', action: 'redeliver this webhook' }));
  if (answer) button.replaceWith(el('span', { class: 'ok' }, 'queued again'));
  else button.disabled = false;
}

async function loadAnalytics() {
  const range = $('#range').value in RANGES ? $('#range').value : '1h';
  const summary = $('#analytics-summary');
  summary.textContent = 'Loading…';
  const data = await attempt(async () => {
    const result = await queryConversations(range);
    const audits = await terminationsSince(result.from);
    return { result, audits };
  });
  if (!data) { summary.textContent = ''; return; }
  const { result, audits } = data;
  const ended = result.conversations.filter((c) => c.conversationEnd).length;
  summary.textContent = `${result.total} conversation${result.total === 1 ? '' : 's'} started in this range, ${ended} ended`
    + (result.conversations.length < result.total ? ` (charts show the first ${result.conversations.length})` : '');
  summary.dataset.total = String(result.total);
  renderCharts(result, audits, range);
}

$('#audit-refresh').addEventListener('click', loadAudit);
$('#deliveries-refresh').addEventListener('click', loadDeliveries);
$('#delivery-state').addEventListener('change', loadDeliveries);
$('#analytics-refresh').addEventListener('click', loadAnalytics);
$('#range').addEventListener('change', loadAnalytics);

// ------------------------------------------------------------------ views and start

function showView(name) {
  view = ['conversations', 'audit', 'deliveries', 'analytics'].includes(name) ? name : 'conversations';
  for (const section of document.querySelectorAll('.view')) section.hidden = section.id !== `view-${view}`;
  for (const tab of document.querySelectorAll('.tabs a')) tab.classList.toggle('active', tab.dataset.view === view);
  if (view === 'audit') loadAudit();
  if (view === 'deliveries') loadDeliveries();
  if (view === 'analytics') loadAnalytics();
}

window.addEventListener('hashchange', () => { if (currentToken()) showView(location.hash.slice(1)); });

async function showApp() {
  signedIn = true;
  $('#signin').hidden = true;
  $('#app').hidden = false;
  $('#logout').hidden = false;
  const me = await attempt(() => api('/api/v2/users/me', { action: 'read who you are' }));
  if (!currentToken()) return;
  const name = $('#user-name');
  name.textContent = me?.body ? (me.body.name ?? me.body.username ?? me.body.id) : '';
  name.hidden = !me?.body;
  startFeed();
  showView(location.hash.slice(1));
}

async function boot() {
  try {
    await completeLogin();
  } catch (error) {
    showSignin(error instanceof LoginError ? error.message : `Sign-in failed: ${error.message}`);
    return;
  }
  if (currentToken()) await showApp(); else showSignin();
}

boot();
