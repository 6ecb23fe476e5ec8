'use strict';
// Open Messaging through the official SDK's own methods (docs/compatibility.md §Open Messaging inbound), with a real webhook receiver on loopback.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { sdk, platformClient } = require('./lib/parley');
const { startReceiver, isSigned, hasTimestampedSignature } = require('./lib/webhook');
const { spawn } = require('node:child_process');
const crypto = require('node:crypto');
const path = require('node:path');
const { covers } = require('./lib/matrix');

const SECRET = 'conformance-signature-secret';
const ISO_MS = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
let api, receiver, integration;

before(async () => {
  await sdk();
  api = new platformClient.ConversationsApi();
  receiver = await startReceiver();
  integration = await api.postConversationsMessagingIntegrationsOpen({
    name: 'Conformance channel', outboundNotificationWebhookUrl: receiver.url, outboundNotificationWebhookSignatureSecretToken: SECRET,
  });
});
after(async () => { await receiver.close(); });

const now = () => new Date().toISOString();

test('integration CRUD through the SDK: fields read back, the secret never echoed in full', async () => {
  covers('open.integrations');
  assert.match(integration.id, /^[0-9a-f-]{36}$/);
  assert.equal(integration.name, 'Conformance channel');
  assert.equal(integration.outboundNotificationWebhookUrl, receiver.url);
  assert.notEqual(integration.outboundNotificationWebhookSignatureSecretToken, SECRET);
  assert.match(integration.dateCreated, ISO_MS);
  assert.equal(integration.selfUri, `/api/v2/conversations/messaging/integrations/open/${integration.id}`);

  const listed = await api.getConversationsMessagingIntegrationsOpen({ pageSize: 25, pageNumber: 1 });
  assert.ok(listed.entities.some((e) => e.id === integration.id));
  for (const field of ['pageSize', 'pageNumber', 'total', 'pageCount']) assert.equal(typeof listed[field], 'number', field);

  const extra = await api.postConversationsMessagingIntegrationsOpen({
    name: 'to delete', outboundNotificationWebhookUrl: 'https://partner.example/hook', outboundNotificationWebhookSignatureSecretToken: SECRET,
  });
  const renamed = await api.patchConversationsMessagingIntegrationsOpenIntegrationId(extra.id, { name: 'renamed' });
  assert.equal(renamed.name, 'renamed');
  assert.equal((await api.getConversationsMessagingIntegrationsOpenIntegrationId(extra.id)).name, 'renamed');
  await api.deleteConversationsMessagingIntegrationsOpenIntegrationId(extra.id);
  const gone = await api.getConversationsMessagingIntegrationsOpenIntegrationId(extra.id).then(() => null, (e) => e);
  assert.equal(gone.status, 404);
  assert.equal(gone.code, 'not.found');

  const bad = await api.postConversationsMessagingIntegrationsOpen({
    name: 'bad', outboundNotificationWebhookUrl: 'not a url', outboundNotificationWebhookSignatureSecretToken: SECRET,
  }).then(() => null, (e) => e);
  assert.equal(bad.status, 400);
});

test('agentless open outbound: the SDK reads the answer; the webhook gets a signed body', async () => {
  covers('conv.agentless', 'open.webhook');
  const sent = await api.postConversationsMessagesAgentless({
    fromAddress: integration.id, toAddress: 'customer-1@partner.example', toAddressMessengerType: 'open', textBody: 'Your order shipped',
  });
  assert.equal(sent.messengerType, 'open');
  assert.match(sent.conversationId, /^[0-9a-f-]{36}$/);
  assert.match(sent.timestamp, ISO_MS);
  const delivery = await receiver.next();
  assert.ok(isSigned(delivery, SECRET), 'X-Hub-Signature-256 matches the Genesys sample computation');
  assert.ok(hasTimestampedSignature(delivery, SECRET), 'Parley-Webhook-Signature verifies as Stripe\'s scheme does');
  assert.equal(delivery.json.id, sent.id);
  assert.equal(delivery.json.type, 'Text');
  assert.equal(delivery.json.direction, 'Outbound');
  assert.equal(delivery.json.channel.platform, 'Open');
  assert.equal(delivery.json.channel.to.id, 'customer-1@partner.example');
  assert.match(delivery.json.channel.time, ISO_MS);
});

test('inbound message, event and receipt through the SDK; the backend ends it and the channel hears', async () => {
  covers('open.inbound', 'open.inboundDeprecated');
  const from = { id: '+4930555', idType: 'Phone', nickname: 'Bob' };
  const inbound = await api.postConversationsMessageInboundOpenMessage(integration.id,
    { channel: { messageId: 'ext-1', from, time: now() }, text: 'Hello' }, { prefetchConversationId: true });
  assert.match(inbound.id, /\S/);
  assert.equal(inbound.text, 'Hello');
  assert.equal(inbound.channel.messageId, 'ext-1');
  assert.match(inbound.conversationId, /^[0-9a-f-]{36}$/);
  const conversationId = inbound.conversationId;

  const typing = await api.postConversationsMessageInboundOpenEvent(integration.id,
    { channel: { from, time: now() }, events: [{ eventType: 'Typing', typing: { type: 'On' } }] });
  assert.equal(typing.events[0].eventType, 'Typing');

  const legacy = await api.postConversationsMessagesInboundOpen({
    channel: { messageId: 'ext-2', from, to: { id: integration.id }, time: now() }, type: 'Text', text: 'Via the old endpoint',
  });
  assert.equal(legacy.text, 'Via the old endpoint');

  const generic = await api.getConversation(conversationId);
  const bot = generic.participants.find((p) => p.purpose === 'workflow');
  const reply = await api.postConversationsMessageCommunicationMessages(conversationId, bot.messages[0].id, { textBody: 'Hi Bob' });
  const delivered = await receiver.next();
  assert.equal(delivered.json.id, reply.id);
  assert.equal(delivered.json.channel.to.id, '+4930555');

  const receipt = await api.postConversationsMessageInboundOpenReceipt(integration.id,
    { id: reply.id, channel: { to: { id: '+4930555' }, time: now() }, status: 'Read', isFinalReceipt: true });
  assert.equal(receipt.status, 'Read');
  assert.equal((await api.getConversationsMessageMessage(conversationId, reply.id)).status, 'read');

  const customer = generic.participants.find((p) => p.purpose === 'customer');
  await api.patchConversationsMessageParticipant(conversationId, customer.id, { body: { state: 'disconnected' } });
  const disconnect = await receiver.next();
  assert.ok(isSigned(disconnect, SECRET));
  assert.deepEqual(disconnect.json.events, [{ eventType: 'Presence', presence: { type: 'Disconnect' } }]);
  assert.equal(disconnect.json.conversationId, conversationId);

  const late = await api.postConversationsMessageInboundOpenMessage(integration.id,
    { channel: { messageId: 'ext-3', from, time: now() }, text: 'one more' }).then(() => null, (e) => e);
  assert.equal(late.status, 409);
  assert.equal(late.code, 'conversation.ended');
});

test('examples/webhook-receiver.js takes a real delivery, refuses a replay outside its window and a wrong secret', async () => {
  covers('open.webhook');
  const example = spawn(process.execPath, [path.join(__dirname, '..', '..', 'examples', 'webhook-receiver.js'), '0'],
    { env: { ...process.env, WEBHOOK_SECRET: SECRET }, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  const lines = [];
  const waiting = [];
  example.stdout.on('data', (c) => {
    out += c;
    let at;
    while ((at = out.indexOf('\n')) >= 0) { lines.push(out.slice(0, at)); out = out.slice(at + 1); while (waiting.length) waiting.shift()(); }
  });
  const line = (match) => new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the example printed no line matching ${match}: ${lines.join(' | ')}`)), 10000);
    const check = () => { const found = lines.find((l) => match.test(l)); if (found) { clearTimeout(timer); resolve(found); } else waiting.push(check); };
    check();
  });
  try {
    const url = (await line(/^webhook receiver on /)).split(' on ')[1];
    const own = await api.postConversationsMessagingIntegrationsOpen({
      name: 'Example receiver', outboundNotificationWebhookUrl: url, outboundNotificationWebhookSignatureSecretToken: SECRET,
    });
    await api.postConversationsMessagesAgentless({
      fromAddress: own.id, toAddress: 'example@partner.example', toAddressMessengerType: 'open', textBody: 'checked by the example',
    });
    await line(/text: checked by the example$/);   // printed only after its signature verified

    const raw = Buffer.from(JSON.stringify({ id: 'replayed-1', type: 'Text', text: 'replayed', channel: { time: 'x', to: { id: 'y' } } }));
    const post = async (t, secret) => (await fetch(url, {
      method: 'POST', body: raw, headers: {
        'content-type': 'application/json',
        'parley-webhook-signature': `t=${t},v1=${crypto.createHmac('sha256', secret).update(`${t}.`).update(raw).digest('hex')}`,
      },
    })).status;
    const now = Math.floor(Date.now() / 1000);
    assert.equal(await post(now - 600, SECRET), 401, 'a delivery signed 10 minutes ago is a replay');
    await line(/^rejected: timestamp outside the 300 s window/);
    assert.equal(await post(now, 'not-the-integration-secret'), 401);
    assert.equal(await post(now, SECRET), 200);
  } finally {
    example.kill();
  }
});
