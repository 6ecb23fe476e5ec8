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
