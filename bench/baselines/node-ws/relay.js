'use strict';
// Baseline (c) for bench/: what a JavaScript team would build. Same frames as the Guest API subset the bench drives
// (configureSession, onMessage → echo) and POST /send/{token} pushing a bot message. Nothing stored.
const http = require('node:http');
const crypto = require('node:crypto');
const { WebSocketServer } = require('ws');

const port = Number(process.argv[2] || 0);
const sockets = new Map();
const message = (text, direction, tracingId) => JSON.stringify({
  type: 'message', class: 'StructuredMessage', code: 200,
  body: { id: crypto.randomUUID().replace(/-/g, ''), type: 'Text', text, direction, channel: { time: new Date().toISOString() } },
  tracingId,
});

const server = http.createServer((req, res) => {
  const m = /^\/send\/([^/]+)$/.exec(req.url);
  if (req.method !== 'POST' || !m) { res.statusCode = 404; res.end(); return; }
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const ws = sockets.get(decodeURIComponent(m[1]));
    if (!ws) { res.statusCode = 404; res.end(); return; }
    ws.send(message(JSON.parse(Buffer.concat(chunks)).textBody, 'Outbound', undefined));
    res.statusCode = 200;
    res.end();
  });
});

const wss = new WebSocketServer({ server, path: '/v1', perMessageDeflate: false });
wss.on('connection', (ws) => {
  let token = null;
  ws.on('message', (data) => {
    const req = JSON.parse(data);
    if (req.action === 'configureSession') {
      token = req.token;
      sockets.set(token, ws);
      ws.send(JSON.stringify({ type: 'response', class: 'SessionResponse', code: 200, body: { connected: true, newSession: true, readOnly: false }, tracingId: req.tracingId }));
    } else if (req.action === 'onMessage') {
      ws.send(message(req.message.text, 'Inbound', req.tracingId));
    }
  });
  ws.on('close', () => { if (token) sockets.delete(token); });
});

server.listen(port, '127.0.0.1', () => console.log(`listening on http://127.0.0.1:${server.address().port}`));
