'use strict';
// The official Genesys Cloud JavaScript Platform SDK (purecloud-platform-client-v2, pinned) against Parley, through the
// SDK's own methods and its gateway setting. The SDK is not patched or wrapped. Each test checks the fields a caller
// reads, and each error case the status and error body the SDK surfaces (it rejects with the parsed ErrorBody).
const { test, before } = require('node:test');
const assert = require('node:assert/strict');
const { sdk, newClient, platformClient, BASE, WS_BASE, DEPLOYMENT_ID, CLIENT_ID, CLIENT_SECRET } = require('./lib/parley');
const { Guest, isPresence, isOutboundText } = require('./lib/guest');
const { covers } = require('./lib/matrix');

const ISO_MS = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
let conversations, analytics;

before(async () => {
  await sdk();
  conversations = new platformClient.ConversationsApi();
  analytics = new platformClient.AnalyticsApi();
});

/** A client that returns status and headers too (the SDK's extended responses), sharing the singleton's token. */
function extended() {
  const client = newClient();
  client.setAccessToken(platformClient.ApiClient.instance.authData.accessToken);
  client.setReturnExtendedResponses(true);
  return new platformClient.ConversationsApi(client);
}

/** A connected guest, and a conversation the bot started with it through the SDK's agentless method. */
async function botStartsConversation(text = 'Your order shipped') {
  const guest = await new Guest(WS_BASE, DEPLOYMENT_ID).connect();
  await guest.configureSession();
  const sent = await conversations.postConversationsMessagesAgentless({
    fromAddress: DEPLOYMENT_ID, toAddress: await guest.sessionId(), toAddressMessengerType: 'webmessaging', textBody: text,
  });
  await guest.next(isOutboundText, 'the bot message');
  return { guest, sent, conversationId: sent.conversationId };
}

async function customerOf(conversationId) {
  const c = await conversations.getConversationsMessage(conversationId);
  return c.participants.find((p) => p.purpose === 'customer');
}

test('client-credentials login through the gateway yields a bearer token', async () => {
  covers('oauth.token');
  const auth = platformClient.ApiClient.instance.authData;
  assert.equal(typeof auth.accessToken, 'string');
  assert.ok(auth.accessToken.length > 20);
  assert.ok(auth.tokenExpiryTime > Date.now() + 3600 * 1000, 'expires_in was read as seconds');
  const wrong = newClient();
  await assert.rejects(wrong.loginClientCredentialsGrant(CLIENT_ID, 'not-the-secret'));
});

test('agentless to a web guest: the SDK reads the response and the guest gets the message', async () => {
  covers('conv.agentless', 'guest.configureSession');
  const { guest, sent } = await botStartsConversation('Hello from the SDK');
  try {
    assert.match(sent.id, /\S/);
    assert.match(sent.conversationId, /^[0-9a-f-]{36}$/);
    assert.equal(sent.messengerType, 'webmessaging');
    assert.equal(sent.useExistingActiveConversation, false);
    assert.match(sent.timestamp, ISO_MS);
    assert.equal(sent.message.direction, 'outbound');
    assert.equal(sent.message.status, 'sent');
    assert.equal(sent.message.normalizedMessage.text, 'Hello from the SDK');
  } finally { guest.close(); }
});

test('get and list message conversations: participants with purpose, state, times and message ids', async () => {
  covers('conv.getMessage', 'conv.listMessages', 'conv.get');
  const { guest, sent, conversationId } = await botStartsConversation();
  try {
    const c = await conversations.getConversationsMessage(conversationId);
    assert.equal(c.id, conversationId);
    assert.equal(c.selfUri, `/api/v2/conversations/messages/${conversationId}`);
    assert.deepEqual(c.participants.map((p) => p.purpose).sort(), ['customer', 'workflow']);
    for (const p of c.participants) {
      assert.equal(p.state, 'connected');
      assert.match(p.startTime, ISO_MS);
      assert.equal(p.endTime, undefined);
    }
    const bot = c.participants.find((p) => p.purpose === 'workflow');
    assert.deepEqual(bot.messages.map((m) => m.messageId), [sent.id]);
    assert.equal(bot.messages[0].messageStatus, 'sent');

    const list = await conversations.getConversationsMessages();
    assert.ok(list.entities.some((e) => e.id === conversationId));
    for (const field of ['pageSize', 'pageNumber', 'total', 'pageCount']) assert.equal(typeof list[field], 'number', field);

    const generic = await conversations.getConversation(conversationId);
    assert.match(generic.startTime, ISO_MS);
    const communication = generic.participants.find((p) => p.purpose === 'workflow').messages[0];
    assert.match(communication.id, /\S/);
    assert.equal(communication.state, 'connected');
  } finally { guest.close(); }
});

test('send a message on the bot communication; typing; read it back', async () => {
  covers('conv.sendMessage', 'conv.typing', 'conv.getMessageData', 'conv.messageDetails');
  const { guest, conversationId } = await botStartsConversation();
  try {
    const generic = await conversations.getConversation(conversationId);
    const communicationId = generic.participants.find((p) => p.purpose === 'workflow').messages[0].id;

    const data = await conversations.postConversationsMessageCommunicationMessages(conversationId, communicationId, { textBody: 'How can I help?' });
    assert.equal(data.direction, 'outbound');
    assert.equal(data.textBody, 'How can I help?');
    assert.match(data.timestamp, ISO_MS);
    assert.equal(data.conversationId, conversationId);
    const pushed = await guest.next((f) => isOutboundText(f) && f.body.text === 'How can I help?', 'the SDK message');
    assert.equal(pushed.body.id, data.id);

    await conversations.postConversationsMessageCommunicationTyping(conversationId, communicationId, { typing: { type: 'On', duration: 5000 } });
    await guest.next((f) => f.body && Array.isArray(f.body.events) && f.body.events[0].eventType === 'Typing', 'typing');

    const read = await conversations.getConversationsMessageMessage(conversationId, data.id);
    assert.equal(read.id, data.id);
    assert.equal(read.textBody, 'How can I help?');
    const details = await conversations.getConversationsMessageDetails(data.id);
    assert.equal(details.conversationId, conversationId);
  } finally { guest.close(); }
});

test('patchConversationsMessageParticipant(disconnected): 202, the guest told first, read-only afterwards', async () => {
  covers('conv.patchMessageParticipant', 'guest.presenceDisconnect', 'guest.readOnly409');
  const { guest, conversationId } = await botStartsConversation();
  try {
    const customer = await customerOf(conversationId);
    const disconnect = guest.next(isPresence('Disconnect'), 'Presence Disconnect');

    const res = await extended().patchConversationsMessageParticipant(conversationId, customer.id,
      { body: { state: 'disconnected', wrapupSkipped: true }, customHeaders: { 'Parley-Termination-Reason': 'sdk conformance' } });

    assert.equal(res.status, 202);
    assert.equal(res.headers['parley-sockets-notified'], '1');
    const frame = await disconnect;
    assert.equal(frame.body.metadata.readOnly, 'true');
    const refused = await guest.sendText('one more thing');
    assert.equal(refused.code, 409);
    assert.equal(refused.body, 'Session is read-only, no new messages allowed');
    const after = await conversations.getConversationsMessage(conversationId);
    for (const p of after.participants) {
      assert.equal(p.state, 'disconnected');
      assert.match(p.endTime, ISO_MS);
    }
    assert.equal(after.participants.find((p) => p.purpose === 'customer').disconnectType, 'client');
  } finally { guest.close(); }
});

test('patchConversationsMessage(disconnected) with placeholder fields: 200 with the ended Conversation', async () => {
  covers('conv.patchMessage');
  const { guest, conversationId } = await botStartsConversation();
  try {
    const ended = await conversations.patchConversationsMessage(conversationId, { state: 'disconnected', startTime: '', participants: [] });
    assert.equal(ended.id, conversationId);
    assert.match(ended.endTime, ISO_MS);
    assert.ok(ended.participants.every((p) => p.state === 'disconnected'));
    await guest.next(isPresence('Disconnect'), 'Presence Disconnect');
  } finally { guest.close(); }
});

test('postConversationDisconnect: 202; a repeat is 409 with the error body; analytics agrees at once', async () => {
  covers('conv.disconnect', 'analytics.details', 'analytics.detailsMany', 'analytics.query');
  const { guest, conversationId } = await botStartsConversation();
  try {
    const live = await analytics.getAnalyticsConversationDetails(conversationId);
    assert.equal(live.conversationEnd, undefined);

    const res = await extended().postConversationDisconnect(conversationId);
    assert.equal(res.status, 202);
    await guest.next(isPresence('Disconnect'), 'Presence Disconnect');

    const again = await conversations.postConversationDisconnect(conversationId).then(() => null, (e) => e);
    assert.equal(again.status, 409);
    assert.equal(again.code, 'conversation.already.disconnected');
    assert.match(again.contextId, /\S/);

    const conversation = await conversations.getConversation(conversationId);
    const details = await analytics.getAnalyticsConversationDetails(conversationId);
    assert.equal(details.conversationId, conversationId);
    assert.equal(details.conversationEnd, conversation.endTime);
    assert.match(details.conversationStart, ISO_MS);
    const customer = details.participants.find((p) => p.purpose === 'customer');
    assert.equal(customer.sessions[0].mediaType, 'message');
    assert.equal(customer.sessions[0].messageType, 'webmessaging');
    assert.equal(customer.sessions[0].segments[0].segmentEnd, conversation.endTime);
    assert.equal(customer.sessions[0].segments[0].disconnectType, 'system');

    const many = await analytics.getAnalyticsConversationsDetails({ id: [conversationId] });
    assert.equal(many.conversations[0].conversationId, conversationId);

    const day = new Date().toISOString().slice(0, 10);
    const tomorrow = new Date(Date.now() + 86400000).toISOString().slice(0, 10);
    const query = await analytics.postAnalyticsConversationsDetailsQuery({
      interval: `${day}T00:00:00.000Z/${tomorrow}T23:59:59.000Z`, order: 'desc', orderBy: 'conversationStart',
      paging: { pageSize: 100, pageNumber: 1 },
      conversationFilters: [{ type: 'and', predicates: [{ dimension: 'conversationId', value: conversationId }] }],
    });
    assert.equal(query.totalHits, 1);
    assert.equal(query.conversations[0].conversationEnd, conversation.endTime);
  } finally { guest.close(); }
});

test('patchConversationParticipant (generic path) ends the conversation too', async () => {
  covers('conv.patchParticipant');
  const { guest, conversationId } = await botStartsConversation();
  try {
    const customer = await customerOf(conversationId);
    const res = await extended().patchConversationParticipant(conversationId, customer.id, { state: 'disconnected' });
    assert.equal(res.status, 202);
    await guest.next(isPresence('Disconnect'), 'Presence Disconnect');
  } finally { guest.close(); }
});

test('guest history through WebMessagingApi with the guest JWT: paging fields and newest first', async () => {
  covers('guest.history', 'guest.getJwt');
  const { guest } = await botStartsConversation('first from bot');
  try {
    await guest.sendText('reply from guest');
    const client = newClient();
    client.setAccessToken((await guest.getJwt()).body.jwt);
    const page = await new platformClient.WebMessagingApi(client).getWebmessagingMessages({ pageSize: 25, pageNumber: 1 });
    assert.equal(page.total, 2);
    assert.equal(page.pageSize, 25);
    assert.equal(page.pageNumber, 1);
    assert.equal(page.pageCount, 1);
    assert.deepEqual(page.entities.map((e) => e.text), ['reply from guest', 'first from bot']);
    assert.deepEqual(page.entities.map((e) => e.direction), ['Inbound', 'Outbound']);
    assert.match(page.entities[0].channel.time, ISO_MS);
  } finally { guest.close(); }
});

test('routing queues through RoutingApi: the demo queue, create, list paged and filtered by name and id, get, 404; conversations show the queue', async () => {
  covers('routing.getQueues', 'routing.getQueue', 'routing.postQueues');
  const routing = new platformClient.RoutingApi();
  const DEMO_QUEUE = 'd1e2a3b4-0000-4000-8000-000000000002';
  const demo = await routing.getRoutingQueue(DEMO_QUEUE);
  assert.equal(demo.id, DEMO_QUEUE);
  assert.equal(demo.name, 'Parley demo queue');
  assert.match(demo.dateCreated, ISO_MS);
  assert.equal(demo.memberCount, 0);
  assert.equal(demo.selfUri, `/api/v2/routing/queues/${DEMO_QUEUE}`);

  const tag = Math.random().toString(36).slice(2, 10);
  const alpha = await routing.postRoutingQueues({ name: `SDK ${tag} alpha`, description: 'first' });
  const beta = await routing.postRoutingQueues({ name: `SDK ${tag} beta` });
  assert.match(alpha.id, /^[0-9a-f-]{36}$/);
  assert.equal(alpha.description, 'first');

  const second = await routing.getRoutingQueues({ name: `sdk ${tag}*`, pageSize: 1, pageNumber: 2 });
  assert.deepEqual([second.total, second.pageCount, second.pageSize, second.pageNumber], [2, 2, 1, 2]);
  assert.deepEqual(second.entities.map((q) => q.name), [`SDK ${tag} beta`]);
  const descending = await routing.getRoutingQueues({ name: `*${tag}*`, sortOrder: 'desc' });
  assert.deepEqual(descending.entities.map((q) => q.id), [beta.id, alpha.id]);
  const byId = await routing.getRoutingQueues({ id: [beta.id, DEMO_QUEUE] });
  assert.deepEqual(byId.entities.map((q) => q.name), ['Parley demo queue', `SDK ${tag} beta`]);   // sorted by name
  assert.equal((await routing.getRoutingQueue(beta.id)).name, `SDK ${tag} beta`);

  const missing = await routing.getRoutingQueue('no-such-queue').then(() => null, (e) => e);
  assert.equal(missing.status, 404);
  assert.equal(missing.code, 'not.found');
  const duplicate = await routing.postRoutingQueues({ name: `sdk ${tag} ALPHA` }).then(() => null, (e) => e);
  assert.equal(duplicate.status, 409);

  // The demo deployment routes to the demo queue: the bot's participant shows it, the customer's does not.
  const { guest, conversationId } = await botStartsConversation();
  try {
    const messaging = await conversations.getConversationsMessage(conversationId);
    const bot = messaging.participants.find((p) => p.purpose === 'workflow');
    assert.deepEqual(bot.queue, { id: DEMO_QUEUE, selfUri: `/api/v2/routing/queues/${DEMO_QUEUE}` });
    assert.equal(messaging.participants.find((p) => p.purpose === 'customer').queue, undefined);
    const generic = await conversations.getConversation(conversationId);
    assert.equal(generic.participants.find((p) => p.purpose === 'workflow').queueId, DEMO_QUEUE);
    const details = await analytics.getAnalyticsConversationDetails(conversationId);
    const segments = details.participants.flatMap((p) => p.sessions.flatMap((s) => s.segments));
    assert.ok(segments.length > 0 && segments.every((s) => s.queueId === DEMO_QUEUE));
  } finally { guest.close(); }
});

test('errors surface as the platform error body: 404, 400, 401, 403', async () => {
  const unknown = '00000000-0000-4000-8000-000000000000';
  const notFound = await conversations.getConversationsMessage(unknown).then(() => null, (e) => e);
  assert.equal(notFound.status, 404);
  assert.equal(notFound.code, 'not.found');
  assert.deepEqual(notFound.details, []);

  const { guest, conversationId } = await botStartsConversation();
  try {
    const bad = await conversations.patchConversationsMessage(conversationId, { state: 'connected' }).then(() => null, (e) => e);
    assert.equal(bad.status, 400);
    assert.equal(bad.code, 'invalid.value');

    const anonymous = newClient();
    anonymous.setAccessToken('not-a-token');
    const unauthorized = await new platformClient.ConversationsApi(anonymous).getConversationsMessages().then(() => null, (e) => e);
    assert.equal(unauthorized.status, 401);
    assert.equal(unauthorized.code, 'bad.credentials');

    const created = await new platformClient.OAuthApi().postOauthClients({
      name: 'read only', authorizedGrantType: 'CLIENT-CREDENTIALS', permissions: ['conversation:message:view'],
    });
    assert.match(created.secret, /\S{20,}/);
    const reader = newClient();
    await reader.loginClientCredentialsGrant(created.id, created.secret);
    const readerApi = new platformClient.ConversationsApi(reader);
    assert.equal((await readerApi.getConversationsMessage(conversationId)).id, conversationId);
    const forbidden = await readerApi.postConversationDisconnect(conversationId).then(() => null, (e) => e);
    assert.equal(forbidden.status, 403);
    assert.equal(forbidden.code, 'missing.permissions');
    assert.equal((await conversations.getConversationsMessage(conversationId)).participants[0].state, 'connected');
  } finally { guest.close(); }
});

test('the gateway setting with path prefixes (path_params_login, path_params_api) reaches the same server', async () => {
  covers('oauth.token', 'conv.listMessages');
  const client = newClient();
  const base = new URL(BASE);
  client.setGateway({ host: base.hostname, protocol: 'http', port: Number(base.port), path_params_login: 'login/', path_params_api: '/api-gw' });
  await client.loginClientCredentialsGrant(CLIENT_ID, CLIENT_SECRET);
  const list = await new platformClient.ConversationsApi(client).getConversationsMessages();
  assert.ok(Array.isArray(list.entities));
});
