// The messenger page (/messenger/?deploymentId=…): a guest of one deployment, drawn from the guest library's events
// (docs/messenger.md). Without deploymentId, the server's demo deployment.
import './messenger.css';
import { ParleyGuest, States } from '../guest/parley-guest.js';

const $ = (id) => document.getElementById(id);
const transcript = $('transcript');
const input = $('input');
const send = $('send');
const status = $('status');
const notice = $('notice');
const typing = $('typing');
const ended = $('ended');
const newConversation = $('new-conversation');
const shown = new Set();
let typingTimer;
let noticeTimer;
let guest;

async function deploymentId() {
  const fromUrl = new URLSearchParams(location.search).get('deploymentId');
  if (fromUrl) return fromUrl;
  // The server's own description names its demo deployment (GET / as JSON).
  const index = await fetch('/', { headers: { Accept: 'application/json' } });
  return (await index.json()).demoDeploymentId;
}

function timeOf(iso) {
  const date = iso ? new Date(iso) : new Date();
  return date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

function render(message) {
  if (message.id && shown.has(message.id)) return;
  if (message.id) shown.add(message.id);
  const item = document.createElement('li');
  const mine = message.direction === 'Inbound';
  item.className = `message ${mine ? 'inbound' : 'outbound'}`;
  item.dataset.id = message.id ?? '';
  const who = document.createElement('span');
  who.className = 'who';
  who.textContent = mine ? 'You' : message.originatingEntity === 'Human' ? 'Agent' : 'Bot';
  const text = document.createElement('p');
  text.className = 'text';
  text.textContent = message.text;
  const time = document.createElement('time');
  if (message.time) time.dateTime = message.time;
  time.textContent = timeOf(message.time);
  item.append(who, text, time);
  transcript.append(item);
  item.scrollIntoView({ block: 'end' });
}

function showNotice(text, ms = 6000) {
  notice.textContent = text;
  notice.hidden = false;
  clearTimeout(noticeTimer);
  if (ms) noticeTimer = setTimeout(() => { notice.hidden = true; }, ms);
}

function updateInput() {
  // Input is open when the session is connected, or after a Send-mode end (writing again starts a new conversation).
  const open = guest.state === States.connected || (guest.state === States.ended && !guest.readOnly);
  input.disabled = !open;
  send.disabled = !open;
  input.setAttribute('aria-disabled', String(!open));
}

async function loadHistory() {
  try {
    for (const message of await guest.history()) render(message);
  } catch (e) {
    showNotice(`Earlier messages could not be loaded (${e.message}).`);
  }
}

async function main() {
  guest = new ParleyGuest({ deploymentId: await deploymentId() });
  guest.addEventListener('state', ({ detail }) => {
    status.textContent = detail.text;
    status.dataset.state = detail.state;
    document.body.dataset.state = detail.state;
    if (detail.state !== States.ended) ended.hidden = true;
    updateInput();
  });
  guest.addEventListener('connected', ({ detail }) => {
    if (!detail.newSession) loadHistory();
    if (detail.readOnly) showEnded(true);
  });
  guest.addEventListener('message', ({ detail }) => {
    if (detail.direction === 'Outbound') { typing.hidden = true; clearTimeout(typingTimer); }
    render(detail);
  });
  guest.addEventListener('typing', ({ detail }) => {
    typing.hidden = false;
    clearTimeout(typingTimer);
    typingTimer = setTimeout(() => { typing.hidden = true; }, detail.durationMs);
  });
  guest.addEventListener('ended', ({ detail }) => showEnded(detail.readOnly));
  guest.addEventListener('error', ({ detail }) => showNotice(detail.message, detail.code === 429 ? detail.retryInMs + 2000 : 6000));

  $('composer').addEventListener('submit', async (e) => {
    e.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    input.value = '';
    const pending = document.createElement('li');
    pending.className = 'message inbound pending';
    pending.textContent = text;
    pending.setAttribute('aria-label', `Sending: ${text}`);
    transcript.append(pending);
    try {
      await guest.send(text);
      pending.remove();
      if (!notice.hidden && notice.textContent.startsWith('Sending too fast')) notice.hidden = true;
    } catch (error) {
      pending.classList.replace('pending', 'failed');
      pending.setAttribute('aria-label', `Not sent: ${text}`);
      pending.title = error.message;
    }
  });
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey) { e.preventDefault(); $('composer').requestSubmit(); }
  });
  input.addEventListener('input', () => guest.typing());
  newConversation.addEventListener('click', () => {
    transcript.replaceChildren();
    shown.clear();
    ended.hidden = true;
    guest.startNew();
  });
  guest.start();
}

function showEnded(readOnly) {
  ended.hidden = false;
  $('ended-text').textContent = readOnly
    ? 'This conversation has ended.'
    : 'This conversation has ended. Write to start a new one, or start afresh.';
  newConversation.hidden = readOnly;
  typing.hidden = true;
  updateInput();
}

main().catch((e) => {
  status.textContent = `The messenger could not start: ${e.message}`;
  status.dataset.state = 'failed';
});
