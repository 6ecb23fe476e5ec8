// A minimal Open Messaging webhook receiver: verifies X-Hub-Signature-256 and prints what Parley delivers.
// Usage: WEBHOOK_SECRET=... node examples/webhook-receiver.js [port]
'use strict';
const http = require('node:http');
const crypto = require('node:crypto');

const secret = process.env.WEBHOOK_SECRET;
if (!secret) { console.error('set WEBHOOK_SECRET to the integration\'s outboundNotificationWebhookSignatureSecretToken'); process.exit(1); }
const port = Number(process.argv[2] || 9000);
const seen = new Set();   // deliveries are at least once: de-duplicate on the message id

function verify(rawBody, header) {
  const expected = 'sha256=' + crypto.createHmac('sha256', secret).update(rawBody).digest('base64');
  return typeof header === 'string' && header.length === expected.length
    && crypto.timingSafeEqual(Buffer.from(header), Buffer.from(expected));
}

http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const raw = Buffer.concat(chunks);
    if (!verify(raw, req.headers['x-hub-signature-256'])) { res.statusCode = 401; res.end(); console.log('rejected: bad signature'); return; }
    const body = JSON.parse(raw.toString('utf8'));
    res.statusCode = 200;
    res.end();
    if (seen.has(body.id)) return;
    seen.add(body.id);
    const what = body.type === 'Text' ? `text: ${body.text}` : `events: ${JSON.stringify(body.events)}`;
    console.log(`${body.channel.time} to ${body.channel.to.id} conversation ${body.conversationId} ${what}`);
  });
}).listen(port, '127.0.0.1', () => console.log(`webhook receiver on http://127.0.0.1:${port}/`));
