'use strict';
// The Notifications API through the official SDK (docs/compatibility.md §Notification channels), and the channel WebSocket it hands out.
const { test, before } = require('node:test');
const assert = require('node:assert/strict');
const WebSocket = require('ws');
const { sdk, platformClient, WS_BASE, DEPLOYMENT_ID } = require('./lib/parley');
const { Guest, isPresence, isOutboundText } = require('./lib/guest');
const { covers } = require('./lib/matrix');

let notifications, conversations;
before(async () => {
  await sdk();
  notifications = new platformClient.NotificationsApi();
  conversations = new platformClient.ConversationsApi();
});

function nextFrame(ws, match, what) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), 10000);
    const onMessage = (data) => {
      const frame = JSON.parse(data.toString('utf8'));
      if (!match(frame)) return;
      clearTimeout(timer);
      ws.off('message', onMessage);
      resolve(frame);
    };
    ws.on('message', onMessage);
  });
}

test('channel, subscription and the customer.end event of a backend termination', async () => {
  covers('notifications.channels', 'notifications.subscriptions', 'notifications.topics');
  const topics = await notifications.getNotificationsAvailabletopics();
  assert.ok(topics.entities.some((t) => t.id === 'v2.detail.events.conversation.{id}.customer.end'));

  const guest = await new Guest(WS_BASE, DEPLOYMENT_ID).connect();
  try {
    await guest.configureSession();
    const sent = await conversations.postConversationsMessagesAgentless({
      fromAddress: DEPLOYMENT_ID, toAddress: await guest.sessionId(), toAddressMessengerType: 'webmessaging', textBody: 'hi',
    });
    await guest.next(isOutboundText, 'bot message');

    const channel = await notifications.postNotificationsChannels();
    assert.match(channel.id, /\S/);
    assert.match(channel.connectUri, /^wss?:\/\//);
    assert.match(channel.expires, /Z$/);
    const topic = `v2.detail.events.conversation.${sent.conversationId}.customer.end`;
    const subscribed = await notifications.postNotificationsChannelSubscriptions(channel.id, [{ id: topic }]);
    assert.deepEqual(subscribed.entities.map((e) => e.id), [topic]);
    assert.deepEqual((await notifications.getNotificationsChannelSubscriptions(channel.id)).entities.map((e) => e.id), [topic]);

    const ws = new WebSocket(channel.connectUri);
    await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
    try {
      const pong = nextFrame(ws, (f) => f.topicName === 'channel.metadata', 'pong');
      ws.send(JSON.stringify({ message: 'ping' }));
      assert.equal((await pong).eventBody.message, 'pong');

      const event = nextFrame(ws, (f) => f.topicName === topic, 'customer.end');
      await conversations.postConversationDisconnect(sent.conversationId);
      const frame = await event;
      assert.equal(frame.eventBody.conversationId, sent.conversationId);
      assert.equal(frame.eventBody.disconnectType, 'SYSTEM');
      assert.equal(typeof frame.eventBody.eventTime, 'number');
      await guest.next(isPresence('Disconnect'), 'Presence Disconnect');
    } finally { ws.close(); }

    await notifications.deleteNotificationsChannelSubscriptions(channel.id);
    assert.deepEqual((await notifications.getNotificationsChannelSubscriptions(channel.id)).entities, []);
    const bad = await notifications.postNotificationsChannelSubscriptions(channel.id, [{ id: 'v2.users.nobody.presence' }]).then(() => null, (e) => e);
    assert.equal(bad.status, 400);
  } finally { guest.close(); }
});

// The demo deployment's queue (docs/notifications.md "Topics"): its topics carry every committed change.
const QUEUE_ID = process.env.PARLEY_QUEUE_ID || 'd1e2a3b4-0000-4000-8000-000000000002';
const MESSAGES = `v2.routing.queues.${QUEUE_ID}.conversations.messages`;
const CONVERSATIONS = `v2.routing.queues.${QUEUE_ID}.conversations`;

async function openSocket(uri) {
  const ws = new WebSocket(uri);
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  const pong = nextFrame(ws, (f) => f.topicName === 'channel.metadata' && f.eventBody.message === 'pong', 'pong');
  ws.send(JSON.stringify({ message: 'ping' }));
  await pong;   // registered: events reach it from now on
  return ws;
}

const participant = (frame, purpose) => frame.eventBody.participants.find((p) => p.purpose === purpose);

test('queue topics through the SDK: a guest message and a termination, the detail end, availabletopics exact, refusals, a reconnect', async () => {
  covers('notifications.channels', 'notifications.subscriptions', 'notifications.topics');
  const available = await notifications.getNotificationsAvailabletopics({ expand: ['description', 'requiresPermissions'], includePreview: true });
  assert.deepEqual(available.entities.map((t) => t.id), [
    'v2.routing.queues.{id}.conversations.messages', 'v2.routing.queues.{id}.conversations',
    'v2.detail.events.conversation.{id}.customer.start', 'v2.detail.events.conversation.{id}.customer.end',
    'v2.parley.terminations.receipts',
  ]);
  assert.ok(available.entities.every((t) => t.requiresPermissions.length === 1));

  const channel = await notifications.postNotificationsChannels();
  // A topic Parley does not serve is refused by name; with ignoreErrors it comes back Rejected.
  const unserved = 'v2.users.8d1c0f4e-2b7a-4c1e-9f3d-5a6b7c8d9e01.presence';
  const refused = await notifications.postNotificationsChannelSubscriptions(channel.id, [{ id: unserved }]).then(() => null, (e) => e);
  assert.equal(refused.status, 400);
  assert.ok(refused.message.includes(unserved));   // the SDK rejects with the parsed ErrorBody
  const partial = await notifications.putNotificationsChannelSubscriptions(channel.id, [{ id: MESSAGES }, { id: CONVERSATIONS }, { id: unserved }],
    { ignoreErrors: true });
  assert.deepEqual(partial.entities.filter((e) => e.state === 'Permitted').map((e) => e.id), [CONVERSATIONS, MESSAGES]);
  assert.equal(partial.entities.find((e) => e.id === unserved).state, 'Rejected');

  let ws = await openSocket(channel.connectUri);
  const guest = await new Guest(WS_BASE, DEPLOYMENT_ID).connect();
  try {
    await guest.configureSession();
    // A guest message: the message-conversation event names it on the customer.
    const first = nextFrame(ws, (f) => f.topicName === MESSAGES, 'queue event of the guest message');
    const generic = nextFrame(ws, (f) => f.topicName === CONVERSATIONS, 'generic queue event of the guest message');
    guest.send({ action: 'onMessage', token: guest.token, message: { type: 'Text', text: 'hello queue' } });
    const message = await first;
    const conversationId = message.eventBody.id;
    const customer = participant(message, 'customer');
    assert.equal(customer.state, 'connected');
    assert.equal(customer.messages.length, 1);
    assert.equal(customer.messages[0].messageMetadata.type, 'Text');
    assert.equal(participant(message, 'workflow').queue.id, QUEUE_ID);
    assert.equal(participant(await generic, 'workflow').queueId, QUEUE_ID);

    // The channel's socket reconnects: its subscriptions stay (they are the channel's, not the socket's).
    ws.close();
    ws = await openSocket(channel.connectUri);
    const detail = `v2.detail.events.conversation.${conversationId}.customer.end`;
    await notifications.postNotificationsChannelSubscriptions(channel.id, [{ id: detail }]);

    const ended = nextFrame(ws, (f) => f.topicName === MESSAGES && participant(f, 'customer').state === 'disconnected', 'queue event of the end');
    const endEvent = nextFrame(ws, (f) => f.topicName === detail, 'customer.end');
    await conversations.postConversationDisconnect(conversationId);
    const end = await ended;
    for (const p of end.eventBody.participants) {
      assert.equal(p.state, 'disconnected');
      assert.equal(p.disconnectType, 'system');
      assert.match(p.endTime, /Z$/);
    }
    assert.equal((await endEvent).eventBody.disconnectType, 'SYSTEM');
  } finally { guest.close(); ws.close(); }
});
