// A minimal Open Messaging webhook receiver: verifies Parley-Webhook-Signature (Stripe's scheme: a timestamp inside the
// signature, refused outside a replay window) and prints what Parley delivers. See docs/webhooks.md.
// Usage: WEBHOOK_SECRET=... [WEBHOOK_OLD_SECRET=...] [WEBHOOK_TOLERANCE_SECONDS=300] node examples/webhook-receiver.js [port]
// (port 0 picks a free one; the line "webhook receiver on http://127.0.0.1:<port>/" says which.)
'use strict';
const http = require('node:http');
const crypto = require('node:crypto');

const secret = process.env.WEBHOOK_SECRET;
if (!secret) { console.error('set WEBHOOK_SECRET to the integration\'s outboundNotificationWebhookSignatureSecretToken'); process.exit(1); }
// While the integration's secret is being rotated, the receiver may accept either: the old one until it is switched.
const secrets = [secret, process.env.WEBHOOK_OLD_SECRET].filter(Boolean);
const toleranceSeconds = Number(process.env.WEBHOOK_TOLERANCE_SECONDS || 300);
const port = Number(process.argv[2] ?? 9000);
const seen = new Set();   // deliveries are at least once, and a replay inside the window is possible: de-duplicate on id

// Parley-Webhook-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>] — v1 = hex HMAC-SHA256 of `${t}.${rawBody}` with the
// secret; during a secret rotation there is one v1 per secret in force. Any match within the window is valid.
function verify(rawBody, header, nowSeconds = Math.floor(Date.now() / 1000)) {
  if (typeof header !== 'string' || header.length > 1024) return 'missing signature';
  let t = null;
  const v1 = [];
  for (const part of header.split(',')) {
    const [key, value] = part.split('=', 2);
    if (key === 't' && /^\d+$/.test(value)) t = Number(value);
    else if (key === 'v1' && value) v1.push(value);
  }
  if (t === null || v1.length === 0) return 'malformed signature';
  if (Math.abs(nowSeconds - t) > toleranceSeconds) return `timestamp outside the ${toleranceSeconds} s window (a replay?)`;
  for (const s of secrets) {
    const expected = Buffer.from(crypto.createHmac('sha256', s).update(`${t}.`).update(rawBody).digest('hex'));
    if (v1.some((sig) => sig.length === expected.length && crypto.timingSafeEqual(Buffer.from(sig), expected))) return null;
  }
  return 'bad signature';
}

const server = http.createServer((req, res) => {
  const chunks = [];
  let size = 0;
  req.on('data', (c) => { size += c.length; if (size <= 1 << 20) chunks.push(c); });
  req.on('end', () => {
    const raw = Buffer.concat(chunks);
    const problem = size > 1 << 20 ? 'body too large' : verify(raw, req.headers['parley-webhook-signature']);
    if (problem) { res.statusCode = 401; res.end(); console.log(`rejected: ${problem}`); return; }
    const body = JSON.parse(raw.toString('utf8'));
    res.statusCode = 200;
    res.end();
    if (seen.has(body.id)) return;
    seen.add(body.id);
    const what = body.type === 'Text' ? `text: ${body.text}` : `events: ${JSON.stringify(body.events)}`;
    console.log(`${body.channel.time} to ${body.channel.to.id} conversation ${body.conversationId} ${what}`);
  });
});
server.listen(port, '127.0.0.1', () => console.log(`webhook receiver on http://127.0.0.1:${server.address().port}/`));
