'use strict';
// A Web Messaging Guest API client written from the public Guest API description alone (not from Parley's code):
// one JSON request per text frame, answers {type, class, code, body, tracingId}.
const WebSocket = require('ws');
const crypto = require('node:crypto');

class Guest {
  constructor(url, deploymentId, { token, origin } = {}) {
    this.url = url;
    this.deploymentId = deploymentId;
    this.token = token || crypto.randomUUID();
    this.origin = origin;
    this.frames = [];
    this.waiters = [];
    this.seq = 0;
    this.closed = new Promise((resolve) => { this._closedResolve = resolve; });
  }

  async connect() {
    const headers = this.origin ? { Origin: this.origin } : {};
    this.ws = new WebSocket(`${this.url}/v1?deploymentId=${encodeURIComponent(this.deploymentId)}&application=ParleyConformance-1.0`, { headers });
    await new Promise((resolve, reject) => {
      this.ws.once('open', resolve);
      this.ws.once('error', reject);
      this.ws.once('unexpected-response', (_req, res) => reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { statusCode: res.statusCode })));
    });
    this.ws.on('message', (data) => this._push(JSON.parse(data.toString('utf8'))));
    this.ws.on('close', () => { this._closedResolve(); this._flushWaiters(); });
    return this;
  }

  _push(frame) {
    this.frames.push(frame);
    this._flushWaiters();
  }

  _flushWaiters() {
    for (const w of [...this.waiters]) {
      const i = this.frames.findIndex(w.match);
      if (i >= 0) {
        const [frame] = this.frames.splice(i, 1);
        this.waiters.splice(this.waiters.indexOf(w), 1);
        clearTimeout(w.timer);
        w.resolve(frame);
      } else if (this.ws.readyState === WebSocket.CLOSED) {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        clearTimeout(w.timer);
        w.reject(new Error(`socket closed while waiting for ${w.what}`));
      }
    }
  }

  /** The next frame matching `match` (frames before it that do not match stay queued). */
  next(match = () => true, what = 'a frame', timeoutMs = 10000) {
    return new Promise((resolve, reject) => {
      const w = { match, what, resolve, reject };
      w.timer = setTimeout(() => { this.waiters.splice(this.waiters.indexOf(w), 1); reject(new Error(`timed out waiting for ${what}`)); }, timeoutMs);
      this.waiters.push(w);
      this._flushWaiters();
    });
  }

  tracingId() { return `conf-${++this.seq}`; }

  send(request) { this.ws.send(typeof request === 'string' ? request : JSON.stringify(request)); }

  /** Sends a request with a fresh tracingId and resolves with the frame that carries it back. */
  request(request) {
    const tracingId = this.tracingId();
    this.send({ ...request, tracingId });
    return this.next((f) => f.tracingId === tracingId, `reply to ${request.action} (${tracingId})`);
  }

  configureSession(extra = {}) {
    return this.request({ action: 'configureSession', token: this.token, deploymentId: this.deploymentId, ...extra });
  }

  sendText(text, extra = {}) {
    return this.request({ action: 'onMessage', token: this.token, message: { type: 'Text', text, ...extra } });
  }

  sendEvents(events) {
    return this.request({ action: 'onMessage', token: this.token, message: { type: 'Event', events } });
  }

  echo() {
    return this.request({ action: 'echo', token: this.token, message: { type: 'Text', text: 'ping' } });
  }

  getJwt() { return this.request({ action: 'getJwt', token: this.token }); }

  closeSession() { return this.request({ action: 'closeSession', token: this.token, closeAllConnections: true }); }

  /** The session id a guest page would hand its backend: the JWT's subject. */
  async sessionId() {
    const jwt = (await this.getJwt()).body.jwt;
    return JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString('utf8')).sub;
  }

  close() { try { this.ws.close(); } catch { /* already closed */ } }
}

const isPresence = (type) => (f) => f.class === 'StructuredMessage' && f.body && Array.isArray(f.body.events)
  && f.body.events.some((e) => e.eventType === 'Presence' && e.presence && e.presence.type === type);

const isOutboundText = (f) => f.class === 'StructuredMessage' && f.body && f.body.direction === 'Outbound' && f.body.type === 'Text';

module.exports = { Guest, isPresence, isOutboundText };
