// A web messaging guest that needs no keyboard, for the README walk-through (examples/walkthrough.sh): it opens the
// Guest API WebSocket, configures its session (naming itself with journeyContext.customer.id, so the bot's backend can
// find it), prints every frame it receives, answers the bot's first message, and, once the conversation has been ended
// for it (Presence Disconnect), tries one more message to show the 409 of a read-only session. Then it exits 0.
// Usage: node --experimental-websocket examples/guest.js <server URL> <deployment id> <customer id>
// (Node 20 needs the flag for its built-in WebSocket; Node 22 and later have it by default.) Exits 1 after 60 s.
'use strict';
const crypto = require('node:crypto');

const [server = 'http://localhost:8080', deploymentId, customerId] = process.argv.slice(2);
if (!deploymentId || !customerId) {
  console.error('usage: node --experimental-websocket examples/guest.js <server URL> <deployment id> <customer id>');
  process.exit(2);
}
if (typeof WebSocket !== 'function') {
  console.error('no built-in WebSocket: run with node --experimental-websocket (Node 20) or Node 22+');
  process.exit(2);
}

const token = crypto.randomUUID();   // the guest session token: the client chooses it, and reuses it to resume
const url = `${server.replace(/^http/, 'ws')}/v1?deploymentId=${encodeURIComponent(deploymentId)}`;
const socket = new WebSocket(url);
const send = (request) => socket.send(JSON.stringify({ token, ...request }));
const giveUp = setTimeout(() => { console.error('guest: gave up after 60 s'); process.exit(1); }, 60_000);
let answered = false, ended = false;

socket.addEventListener('open', () => send({
  action: 'configureSession', deploymentId, tracingId: 'configure',
  journeyContext: { customer: { id: customerId, idType: 'crm' } },
}));

socket.addEventListener('message', ({ data }) => {
  console.log(`guest < ${data}`);
  const frame = JSON.parse(data);
  const body = frame.body ?? {};
  const presence = (body.events ?? []).find((e) => e.eventType === 'Presence')?.presence?.type;
  if (frame.class === 'StructuredMessage' && body.direction === 'Outbound' && body.type === 'Text' && !answered) {
    answered = true;   // step 4: the guest answers the bot
    send({ action: 'onMessage', tracingId: 't2', message: { type: 'Text', text: 'No, thanks' } });
  } else if (presence === 'Disconnect' && !ended) {
    ended = true;      // step 5: the conversation was ended for the guest; one more message shows it is read-only
    send({ action: 'onMessage', tracingId: 't3', message: { type: 'Text', text: 'hello?' } });
  } else if (frame.tracingId === 't3' && frame.code !== 200) {
    clearTimeout(giveUp);
    socket.close(1000);
  }
});

socket.addEventListener('close', ({ code }) => {
  console.log(`guest: socket closed (${code})`);
  process.exit(ended ? 0 : 1);
});
socket.addEventListener('error', () => { console.error(`guest: cannot connect to ${url}`); process.exit(1); });
