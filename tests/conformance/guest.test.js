'use strict';
// The Web Messaging Guest API as the public Genesys Cloud documentation and official clients describe it, driven by lib/guest.js (written from
// the protocol's public description, not from Parley's code; docs/compatibility.md §Guest frames). The Platform side is driven by the official SDK.
const { test, before } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const { sdk, platformClient, BASE, WS_BASE, DEPLOYMENT_ID } = require('./lib/parley');
const { Guest, isPresence, isOutboundText } = require('./lib/guest');
const { covers } = require('./lib/matrix');

let conversations;
before(async () => { await sdk(); conversations = new platformClient.ConversationsApi(); });

const connect = (opts) => new Guest(WS_BASE, DEPLOYMENT_ID, opts).connect();

function assertFrame(frame, { type, cls, code }) {
  assert.equal(frame.type, type);
  assert.equal(frame.class, cls);
  assert.equal(frame.code, code);
  assert.ok('body' in frame);
}

async function conversationOf(guest) {
  const sessionId = await guest.sessionId();
  const list = await conversations.getConversationsMessages({ pageSize: 100 });
  for (const c of list.entities) {
    const customer = c.participants.find((p) => p.purpose === 'customer');
    if (customer.fromAddress && customer.fromAddress.addressNormalized === sessionId) return c;
  }
  throw new Error('no live conversation for this guest');
}

test('configureSession: SessionResponse fields; the same token resumes the session on another socket', async () => {
  covers('guest.configureSession');
  const guest = await connect();
  const other = await connect({ token: guest.token });
  try {
    const first = await guest.configureSession({ startNew: false, journeyContext: { customer: { id: guest.token, idType: 'cookie' }, customerSession: { id: '', type: 'web' } } });
    assertFrame(first, { type: 'response', cls: 'SessionResponse', code: 200 });
    assert.equal(first.body.connected, true);
    assert.equal(first.body.newSession, true);
    assert.equal(first.body.readOnly, false);
    assert.equal(typeof first.body.maxCustomDataBytes, 'number');
    assert.equal(typeof first.body.expirationDate, 'number');
    assert.ok(first.body.expirationDate < 1e11, 'expirationDate is epoch seconds');
    const second = await other.configureSession();
    assert.equal(second.body.newSession, false);
  } finally { guest.close(); other.close(); }
});

test('onMessage Text: the stored message is echoed with the tracingId to every socket; Typing and Join too', async () => {
  covers('guest.onMessage.text', 'guest.onMessage.typing', 'guest.onMessage.join');
  const guest = await connect();
  const other = await connect({ token: guest.token });
  try {
    await guest.configureSession();
    await other.configureSession();
    const join = await guest.sendEvents([{ eventType: 'Presence', presence: { type: 'Join' } }]);
    assertFrame(join, { type: 'message', cls: 'StructuredMessage', code: 200 });
    assert.equal(join.body.events[0].presence.type, 'Join');
    const echo = await guest.sendText('I need help', { channel: { metadata: { customAttributes: { orderId: 'A-17' } } } });
    assertFrame(echo, { type: 'message', cls: 'StructuredMessage', code: 200 });
    assert.equal(echo.body.text, 'I need help');
    assert.equal(echo.body.type, 'Text');
    assert.equal(echo.body.direction, 'Inbound');
    assert.match(echo.body.id, /\S/);
    assert.match(echo.body.channel.time, /Z$/);
    const mirrored = await other.next((f) => f.body && f.body.text === 'I need help', 'the echo on the other socket');
    assert.equal(mirrored.body.id, echo.body.id);
    const typing = await guest.sendEvents([{ eventType: 'Typing', typing: { type: 'On' } }]);
    assert.equal(typing.body.events[0].eventType, 'Typing');
  } finally { guest.close(); other.close(); }
});

test('echo and getJwt answer as responses', async () => {
  covers('guest.echo', 'guest.getJwt');
  const guest = await connect();
  try {
    await guest.configureSession();
    const echo = await guest.echo();
    assertFrame(echo, { type: 'response', cls: 'StructuredMessage', code: 200 });
    assert.equal(echo.body.text, 'ping');
    const jwt = await guest.getJwt();
    assertFrame(jwt, { type: 'response', cls: 'JwtResponse', code: 200 });
    assert.equal(jwt.body.jwt.split('.').length, 3);
    assert.ok(jwt.body.exp > Date.now() / 1000);
  } finally { guest.close(); }
});

test('Presence Disconnect from a platform end; 409 after; reconnect read-only; closeSession; startNew begins a new chat', async () => {
  covers('guest.presenceDisconnect', 'guest.readOnly409', 'guest.closeSession');
  const guest = await connect();
  const other = await connect({ token: guest.token });
  try {
    await guest.configureSession();
    await other.configureSession();
    await guest.sendText('hello');
    const conversation = await conversationOf(guest);
    const customer = conversation.participants.find((p) => p.purpose === 'customer');

    await conversations.patchConversationsMessageParticipant(conversation.id, customer.id, { body: { state: 'disconnected' } });

    for (const socket of [guest, other]) {
      const frame = await socket.next(isPresence('Disconnect'), 'Presence Disconnect');
      assertFrame(frame, { type: 'message', cls: 'StructuredMessage', code: 200 });
      assert.equal(frame.body.type, 'Event');
      assert.equal(frame.body.direction, 'Outbound');
      assert.equal(frame.body.metadata.readOnly, 'true');
    }
    const refused = await guest.sendText('still there?');
    assert.deepEqual({ type: refused.type, class: refused.class, code: refused.code, body: refused.body },
      { type: 'response', class: 'string', code: 409, body: 'Session is read-only, no new messages allowed' });

    const resumed = await new Guest(WS_BASE, DEPLOYMENT_ID, { token: guest.token }).connect();
    try {
      const session = await resumed.configureSession();
      assert.equal(session.body.connected, true);
      assert.equal(session.body.readOnly, true);
      const closed = await resumed.closeSession();
      assertFrame(closed, { type: 'response', cls: 'SessionResponse', code: 200 });
      assert.equal(closed.body.connected, false);
      assert.equal(closed.body.readOnly, true);
      await other.next((f) => f.class === 'ConnectionClosedEvent', 'ConnectionClosedEvent');
      const fresh = await resumed.configureSession({ startNew: true });
      assert.equal(fresh.body.newSession, true);
      assert.equal(fresh.body.readOnly, false);
      const echo = await resumed.sendText('a new chat');
      assert.equal(echo.class, 'StructuredMessage');
      assert.notEqual((await conversationOf(resumed)).id, conversation.id);
    } finally { resumed.close(); }
  } finally { guest.close(); other.close(); }
});

test('Presence Clear: SessionClearedEvent to every socket, then the sockets close; the conversation ended', async () => {
  covers('guest.onMessage.clear');
  const guest = await connect();
  const other = await connect({ token: guest.token });
  try {
    await guest.configureSession();
    await other.configureSession();
    await guest.sendText('bye');
    const conversation = await conversationOf(guest);
    guest.send({ action: 'onMessage', token: guest.token, message: { type: 'Event', events: [{ eventType: 'Presence', presence: { type: 'Clear' } }] } });
    for (const socket of [guest, other]) {
      assertFrame(await socket.next((f) => f.class === 'SessionClearedEvent', 'SessionClearedEvent'), { type: 'message', cls: 'SessionClearedEvent', code: 200 });
      await socket.closed;
    }
    const ended = await conversations.getConversation(conversation.id);
    assert.ok(ended.participants.every((p) => p.state === 'disconnected'));
  } finally { guest.close(); other.close(); }
});

test('error frames: class string with the documented codes; the socket keeps serving', async () => {
  covers('guest.errors');
  const guest = await connect();
  try {
    const unconfigured = await guest.sendText('too early');
    assert.equal(unconfigured.class, 'string');
    assert.equal(unconfigured.code, 4007);
    await guest.configureSession();

    guest.send('{not json');
    const malformed = await guest.next((f) => f.class === 'string', 'malformed JSON error');
    assert.equal(malformed.code, 400);
    assert.equal(typeof malformed.body, 'string');

    assert.equal((await guest.request({ action: 'onMessage', message: { type: 'Text', text: 'x' } })).code, 4020);
    assert.equal((await guest.request({ action: 'noSuchAction', token: guest.token })).code, 400);
    assert.equal((await guest.sendText('x'.repeat(10000))).code, 4011);
    const big = {};
    for (let i = 0; i < 100; i++) big[`k${i}`] = 'v'.repeat(40);
    const attrs = await guest.sendText('x', { channel: { metadata: { customAttributes: big } } });
    assert.equal(attrs.code, 4013);
    assert.match(attrs.body, /Custom Attributes in channel metadata is larger than 2048 bytes/);

    const stranger = await new Guest(WS_BASE, 'no-such-deployment').connect();
    try {
      const refused = await stranger.configureSession();
      assert.equal(refused.class, 'string');
      assert.equal(refused.code, 403);
    } finally { stranger.close(); }

    assert.equal((await guest.echo()).body.text, 'ping');
  } finally { guest.close(); }
});

test('deployment config.json carries the fields the official clients require', async () => {
  covers('guest.config');
  const res = await fetch(`${BASE}/webdeployments/v1/deployments/${DEPLOYMENT_ID}/config.json`);
  assert.equal(res.status, 200);
  const config = await res.json();
  assert.equal(config.id, DEPLOYMENT_ID);
  for (const field of ['version', 'languages', 'defaultLanguage', 'apiEndpoint', 'status', 'messenger', 'journeyEvents', 'auth']) assert.ok(field in config, field);
  const apps = config.messenger.apps.conversations;
  assert.deepEqual(apps.conversationDisconnect, { enabled: true, type: 'ReadOnly' });
  assert.equal(apps.conversationClear.enabled, true);
  assert.match(apps.messagingEndpoint, /^wss?:\/\//);
  const unknown = await fetch(`${BASE}/webdeployments/v1/deployments/${crypto.randomUUID()}/config.json`);
  assert.equal(unknown.status, 404);
});

test('rate limit: every deployment has the platform\'s 2 onMessage/s per session, answered with TooManyRequestsErrorMessage (docs/compatibility.md §Guest server frames, §Guest limits)', async () => {
  covers('guest.rateLimit');
  const token = platformClient.ApiClient.instance.authData.accessToken;
  const res = await fetch(`${BASE}/api/v2/parley/deployments`, {
    method: 'POST', headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ name: 'platform rate' }),
  });
  assert.equal(res.status, 201);
  const deployment = await res.json();
  assert.equal(deployment.guestMessagesPerSecond, 2);
  const guest = await new Guest(WS_BASE, deployment.id).connect();
  try {
    await guest.configureSession();
    // Six requests sent at once: a burst of two is accepted, the rest (less what refills meanwhile) refused.
    const started = Date.now();
    const replies = await Promise.all([1, 2, 3, 4, 5, 6].map((n) => guest.sendText(`burst ${n}`)));
    const seconds = (Date.now() - started) / 1000;
    const accepted = replies.filter((r) => r.class === 'StructuredMessage');
    assert.ok(accepted.length >= 2 && accepted.length <= 2 + Math.ceil(2 * seconds), `${accepted.length} accepted in ${seconds} s`);
    const limited = replies.find((r) => r.class !== 'StructuredMessage');
    assertFrame(limited, { type: 'response', cls: 'TooManyRequestsErrorMessage', code: 429 });
    assert.equal(limited.body.errorCode, 4029);
    assert.equal(limited.body.errorMessage, 'Message rate too high for this session');
    assert.ok(limited.body.retryAfter >= 1);
  } finally { guest.close(); }
});

test('session lifetime: SessionResponse advertises durationSeconds and the expirationDate it enforces (docs/compatibility.md §Session response)', async () => {
  covers('guest.sessionExpired');
  const guest = await connect();
  try {
    const session = await guest.configureSession();
    assert.equal(typeof session.body.durationSeconds, 'number');
    const now = Math.floor(Date.now() / 1000);
    assert.ok(Math.abs(session.body.expirationDate - (now + session.body.durationSeconds)) <= 5, JSON.stringify(session.body));
    const jwt = await guest.getJwt();
    assert.ok(jwt.body.exp <= session.body.expirationDate, 'the history JWT does not outlive the session');
  } finally { guest.close(); }
});
