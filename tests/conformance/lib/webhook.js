'use strict';
// A channel's webhook receiver on loopback: records each POST with its raw body, and checks the signature the way
// the Genesys sample does (base64 HMAC-SHA256 of the raw body, compared with "sha256=<hash>").
const http = require('node:http');
const crypto = require('node:crypto');

async function startReceiver() {
  const received = [];
  const waiters = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      received.push({ raw, headers: req.headers, json: JSON.parse(raw.toString('utf8')) });
      res.statusCode = 200;
      res.end();
      while (waiters.length && received.length) waiters.shift()(received.shift());
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}/webhook`,
    next(timeoutMs = 10000) {
      if (received.length) return Promise.resolve(received.shift());
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('the webhook received nothing in time')), timeoutMs);
        waiters.push((r) => { clearTimeout(timer); resolve(r); });
      });
    },
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

function isSigned(delivery, secret) {
  const expected = 'sha256=' + crypto.createHmac('sha256', secret).update(delivery.raw).digest('base64');
  return delivery.headers['x-hub-signature-256'] === expected;
}

/** Parley-Webhook-Signature as Stripe's receivers check it: any v1 = hex HMAC-SHA256 of `${t}.${raw}`, t within 300 s. */
function hasTimestampedSignature(delivery, secret, nowSeconds = Math.floor(Date.now() / 1000)) {
  const header = delivery.headers['parley-webhook-signature'] || '';
  const t = Number((/(?:^|,)t=(\d+)/.exec(header) || [])[1]);
  const v1 = [...header.matchAll(/(?:^|,)v1=([0-9a-f]+)/g)].map((m) => m[1]);
  const expected = crypto.createHmac('sha256', secret).update(`${t}.`).update(delivery.raw).digest('hex');
  return Number.isFinite(t) && Math.abs(nowSeconds - t) <= 300 && v1.includes(expected);
}

module.exports = { startReceiver, isSigned, hasTimestampedSignature };
