// Parley guest library: a web messaging guest over the Genesys Cloud Guest API (WebSocket /v1), with no dependency and
// no framework. An ES module for the messenger page and for a customer's own site (docs/messenger.md).
//
//   import { ParleyGuest } from 'https://chat.example.com/guest/parley-guest.js';
//   const guest = new ParleyGuest({ server: 'https://chat.example.com', deploymentId: '…' });
//   guest.addEventListener('message', (e) => show(e.detail));
//   guest.addEventListener('state', (e) => status(e.detail.state));
//   guest.start();
//   await guest.send('Hello');
//
// The frames follow docs/compatibility.md (§Guest frames, §Guest actions, §Session response, §Guest server frames,
// §Guest errors, §Disconnect modes). The session token is kept in localStorage, so a reload resumes the session.

/** The states a guest goes through; `state` events carry one, with a human-readable `text`. */
export const States = Object.freeze({
  idle: 'idle',                 // not started
  connecting: 'connecting',     // opening the socket, configuring the session
  connected: 'connected',       // the session is configured: messages can be sent
  reconnecting: 'reconnecting', // the socket dropped (or could not open): trying again with backoff
  unavailable: 'unavailable',   // the server refused: at capacity (503), or too many new sessions (429); retrying
  ended: 'ended',               // the business ended the conversation (readOnly tells whether input is closed)
  failed: 'failed',             // a refusal retrying cannot fix (unknown deployment, origin not allowed, expired session)
  closed: 'closed',             // close() was called
});

const TYPING_INTERVAL_MS = 5000;    // the official client sends typing at most once per 5 s (§Guest limits)
const DEFAULT_TYPING_MS = 5000;

/**
 * A guest of one web messaging deployment. Events (CustomEvent, payload in `detail`):
 *  - `state`      {state, text, retryInMs?}         every state change (see States)
 *  - `connected`  {newSession, readOnly}            the session is configured (again, after a reconnect)
 *  - `message`    {id, direction, text, time, originatingEntity, history}   a message of either side, once stored
 *  - `typing`     {durationMs}                      the other side is typing
 *  - `ended`      {readOnly}                        the conversation was ended by the business
 *  - `error`      {code, message, retryInMs?}       a refusal the UI should show (429, 409, 4011, …)
 */
export class ParleyGuest extends EventTarget {
  /**
   * @param {object} options
   * @param {string} options.deploymentId   the web messaging deployment
   * @param {string} [options.server]       Parley's HTTP address (default: this page's origin)
   * @param {Storage} [options.storage]     where the session token is kept (default: localStorage)
   * @param {string} [options.storageKey]   its key (default: parley.guest.<deploymentId>)
   * @param {number} [options.minRetryMs]   first reconnect delay (default 500 ms), doubling up to maxRetryMs
   * @param {number} [options.maxRetryMs]   longest reconnect delay (default 15 s)
   * @param {object} [options.journeyContext]  sent with configureSession (e.g. {customer: {id, idType}})
   */
  constructor(options) {
    super();
    if (!options?.deploymentId) throw new Error('ParleyGuest: deploymentId is required');
    this.deploymentId = options.deploymentId;
    this.server = (options.server ?? globalThis.location?.origin ?? '').replace(/\/+$/, '');
    this.storage = options.storage ?? globalThis.localStorage;
    this.storageKey = options.storageKey ?? `parley.guest.${this.deploymentId}`;
    this.minRetryMs = options.minRetryMs ?? 500;
    this.maxRetryMs = options.maxRetryMs ?? 15000;
    this.journeyContext = options.journeyContext;
    this.state = States.idle;
    this.readOnly = false;
    this.conversationEnded = false;
    this._socket = null;
    this._attempt = 0;
    this._retryTimer = null;
    this._pending = new Map();   // tracingId -> {resolve, reject, text, retries}
    this._seq = 0;
    this._lastTyping = 0;
    this._startNew = false;
    this._configuring = null;
  }

  /** The guest session token (a UUID): this browser's identity towards the deployment, kept across reloads. */
  get token() {
    let token = this._read();
    if (!token) {
      token = crypto.randomUUID();
      this._write(token);
    }
    return token;
  }

  /** Connects and configures the session (resuming the stored one). Reconnects by itself until close(). */
  start() {
    if (this.state !== States.idle && this.state !== States.closed) return;
    this._closing = false;
    this._connect(States.connecting);
  }

  /**
   * Sends a text message. Resolves with the stored message once the server echoes it; rejects with an Error carrying
   * `code` when refused. A 429 is retried by itself after the server's retryAfter (an `error` event tells the UI).
   */
  send(text) {
    if (typeof text !== 'string' || text.trim() === '') return Promise.reject(new Error('empty message'));
    if (this.readOnly) return Promise.reject(Object.assign(new Error('The conversation has ended; no new messages.'), { code: 409 }));
    return new Promise((resolve, reject) => {
      const tracingId = this._tracingId();
      this._pending.set(tracingId, { resolve, reject, text, retries: 0 });
      this._sendMessage(tracingId);
    });
  }

  /** Tells the other side the guest is typing; at most once per 5 s, whatever the caller does. */
  typing() {
    const now = Date.now();
    if (this.state !== States.connected || this.readOnly || now - this._lastTyping < TYPING_INTERVAL_MS) return false;
    this._lastTyping = now;
    this._send({ action: 'onMessage', message: { type: 'Event', events: [{ eventType: 'Typing', typing: { type: 'On' } }] } });
    return true;
  }

  /**
   * Starts a new conversation after one ended (closeSession, then configureSession with startNew, as the official
   * client does: §Guest session lifecycle). The old transcript is not shown again.
   */
  startNew() {
    this.readOnly = false;
    this.conversationEnded = false;
    this._startNew = true;
    if (this._socket?.readyState === WebSocket.OPEN) {
      this._send({ action: 'closeSession', closeAllConnections: false });
      this._configure();
    } else {
      this._connect(States.connecting);
    }
  }

  /** The conversation's messages so far, oldest first, shaped as `message` events (Guest REST: getJwt, then /api/v2/webmessaging/messages). */
  async history(pageSize = 25) {
    const jwt = await this._request({ action: 'getJwt' }, 'JwtResponse');
    const messages = [];
    for (let page = 1; page <= 20; page++) {
      const response = await fetch(`${this.server}/api/v2/webmessaging/messages?pageSize=${pageSize}&pageNumber=${page}`,
        { headers: { Authorization: `Bearer ${jwt.jwt}` } });
      if (!response.ok) throw Object.assign(new Error(`history: HTTP ${response.status}`), { code: response.status });
      const body = await response.json();
      messages.push(...body.entities);
      if (page >= (body.pageCount ?? 1)) break;
    }
    // Newest first on the wire (§Guest REST); events (typing, presence) are not part of a transcript.
    return messages.reverse().filter((m) => m.type === 'Text' || m.type === 'Structured').map((m) => ({
      id: m.id, direction: m.direction, text: m.text ?? '', time: m.channel?.time, originatingEntity: m.originatingEntity, history: true,
    }));
  }

  /** Closes the socket and stops reconnecting; the session (and its token) stays for a later start(). */
  close() {
    this._closing = true;
    clearTimeout(this._retryTimer);
    this._socket?.close(1000);
    this._socket = null;
    this._rejectPending(Object.assign(new Error('closed'), { code: 0 }));
    this._setState(States.closed, 'Closed.');
  }

  /** Forgets the stored session: the next start() is a new guest. */
  forget() {
    try { this.storage?.removeItem(this.storageKey); } catch { /* storage refused (private mode): nothing kept */ }
  }

  // ---- connection ----

  _connect(state) {
    clearTimeout(this._retryTimer);
    this._setState(state, state === States.connecting ? 'Connecting…' : 'Reconnecting…');
    const url = `${this.server.replace(/^http/, 'ws')}/v1?deploymentId=${encodeURIComponent(this.deploymentId)}&application=ParleyGuest-1`;
    let socket;
    try {
      socket = new WebSocket(url);
    } catch (e) {
      this._fail(`Cannot open ${url}: ${e.message}`);
      return;
    }
    this._socket = socket;
    let opened = false;
    socket.addEventListener('open', () => {
      opened = true;
      this._configure();
    });
    socket.addEventListener('message', (e) => {
      if (socket !== this._socket) return;
      let frame;
      try { frame = JSON.parse(e.data); } catch { return; }
      this._onFrame(frame);
    });
    socket.addEventListener('close', (e) => {
      if (socket !== this._socket) return;   // an old socket, replaced
      this._socket = null;
      if (this._closing || this.state === States.failed) return;
      // A read-only conversation has nothing left to say: stay ended (startNew() connects again).
      if (this.readOnly && this.conversationEnded) return;
      // A socket that never opened was refused (or the server is down): ask over HTTP why, as a browser cannot see the status.
      if (!opened) this._diagnose();
      else this._retry(e.code === 1001 ? 'The server is restarting; reconnecting…' : 'Connection lost; reconnecting…');
    });
  }

  _configure() {
    const request = { action: 'configureSession', deploymentId: this.deploymentId };
    if (this.journeyContext) request.journeyContext = this.journeyContext;
    if (this._startNew) request.startNew = true;
    this._configuring = this._tracingId();
    this._send(request, this._configuring);
  }

  /** Backoff with jitter: 0.5 s, 1 s, 2 s … up to maxRetryMs. */
  _retry(text, state = States.reconnecting, afterMs) {
    this._rejectPending(Object.assign(new Error('Connection lost before the message was stored; send it again.'), { code: 0 }));
    const delay = afterMs ?? Math.min(this.maxRetryMs, this.minRetryMs * 2 ** this._attempt) * (0.8 + Math.random() * 0.4);
    this._attempt++;
    this._setState(state, text, Math.round(delay));
    clearTimeout(this._retryTimer);
    this._retryTimer = setTimeout(() => { if (!this._closing) this._connect(States.reconnecting); }, delay);
  }

  /** Why did the socket not open? The deployment's configuration and the guest endpoint answer over plain HTTP. */
  async _diagnose() {
    try {
      const config = await fetch(`${this.server}/webdeployments/v1/deployments/${encodeURIComponent(this.deploymentId)}/config.json`);
      if (config.status === 404) return this._fail(`Deployment ${this.deploymentId} does not exist on this server.`);
      // A same-origin fetch sends no Origin header: name the page's origin, so a refused origin is told apart.
      const origin = globalThis.location?.origin ? `&origin=${encodeURIComponent(globalThis.location.origin)}` : '';
      const probe = await fetch(`${this.server}/v1?deploymentId=${encodeURIComponent(this.deploymentId)}${origin}`);
      if (probe.status === 503) {
        const seconds = Number(probe.headers.get('Retry-After')) || 5;
        return this._retry(`The server is busy (at capacity); retrying in ${seconds} s…`, States.unavailable, seconds * 1000);
      }
      if (probe.status === 403) return this._fail('This site is not allowed to open conversations for this deployment.');
      this._retry('Cannot connect; reconnecting…');
    } catch {
      // The server does not answer HTTP either: down, or the network is.
      this._retry('The server cannot be reached; reconnecting…');
    }
  }

  _fail(text) {
    this._rejectPending(Object.assign(new Error(text), { code: 0 }));
    this._setState(States.failed, text);
    this._emit('error', { code: 0, message: text });
  }

  // ---- frames ----

  _onFrame(frame) {
    const { type, code, body, tracingId } = frame;
    switch (frame.class) {
      case 'SessionResponse':
        if (tracingId !== this._configuring && body?.connected === false) return;   // the closeSession of startNew
        this._attempt = 0;
        this._startNew = false;
        this.readOnly = body.readOnly === true;
        this.conversationEnded = this.readOnly;
        this._emit('connected', { newSession: body.newSession === true, readOnly: this.readOnly });
        if (this.readOnly) this._setState(States.ended, 'This conversation has ended.');
        else this._setState(States.connected, 'Connected.');
        return;
      case 'StructuredMessage':
        return this._onMessage(body, tracingId);
      case 'TooManyRequestsErrorMessage':
        return this._onTooMany(body, tracingId);
      case 'SessionExpiredEvent':
        return this._fail('Your session has expired.');
      case 'SessionClearedEvent':
        this.forget();
        return;
      case 'ConnectionClosedEvent':
        return;
      case 'JwtResponse':
      case 'string':
        break;
      default:
        return;   // classes this library does not use (attachments): ignored, as the official client does
    }
    const waiter = this._pending.get(tracingId);
    if (frame.class === 'JwtResponse') {
      if (waiter) { this._pending.delete(tracingId); waiter.resolve(body); }
      return;
    }
    // An error answer (class string): §Guest errors.
    if (type === 'response' && code >= 400) this._onError(code, String(body), tracingId, waiter);
  }

  _onMessage(body, tracingId) {
    const presence = body.events?.find((e) => e.eventType === 'Presence')?.presence?.type;
    const typing = body.events?.find((e) => e.eventType === 'Typing');
    if (body.direction === 'Outbound' && presence === 'Disconnect') {
      const readOnly = body.metadata?.readOnly === 'true';
      this.readOnly = readOnly;
      this.conversationEnded = true;
      this._emit('ended', { readOnly });
      this._setState(States.ended, readOnly
        ? 'This conversation has ended.'
        : 'This conversation has ended. Writing again starts a new one.');
      return;
    }
    if (body.direction === 'Outbound' && typing) {
      this._emit('typing', { durationMs: typing.typing?.duration ?? DEFAULT_TYPING_MS });
      return;
    }
    if (body.type !== 'Text' && body.type !== 'Structured') return;   // Join echoes and other events
    const message = {
      id: body.id, direction: body.direction, text: body.text ?? '', time: body.channel?.time,
      originatingEntity: body.originatingEntity, history: false,
    };
    if (body.direction === 'Inbound' && this.conversationEnded && !this.readOnly) {
      // Send mode: the guest wrote again, which started a new conversation (§Disconnect modes).
      this.conversationEnded = false;
      this._setState(States.connected, 'Connected.');
    }
    this._emit('message', message);
    const waiter = tracingId && this._pending.get(tracingId);
    if (waiter && body.direction === 'Inbound') {
      this._pending.delete(tracingId);
      waiter.resolve(message);
    }
  }

  _onTooMany(body, tracingId) {
    const retryInMs = Math.max(1, Number(body?.retryAfter) || 1) * 1000;
    if (tracingId && tracingId === this._configuring) {
      // Too many new sessions from here: wait as told, then connect again.
      this._socket?.close(1000);
      this._socket = null;
      this._retry(`Too many new conversations; retrying in ${Math.round(retryInMs / 1000)} s…`, States.unavailable, retryInMs);
      return;
    }
    const waiter = this._pending.get(tracingId);
    this._emit('error', { code: 429, message: `Sending too fast; retrying in ${Math.round(retryInMs / 1000)} s…`, retryInMs, tracingId });
    if (waiter && waiter.retries < 5) {
      waiter.retries++;
      setTimeout(() => this._sendMessage(tracingId), retryInMs);
    } else if (waiter) {
      this._pending.delete(tracingId);
      waiter.reject(Object.assign(new Error(body?.errorMessage ?? 'Too many requests'), { code: 429 }));
    }
  }

  _onError(code, text, tracingId, waiter) {
    if (tracingId && tracingId === this._configuring) {
      // configureSession refused (§Guest errors: any 4xx to it is an error state).
      if (code === 4006 || code === 4007) this.forget();
      if (code === 503 || code >= 500 && code < 600) return this._retry('The server cannot take the session now; retrying…', States.unavailable);
      return this._fail(code === 4006 ? 'Your session has expired.' : text);
    }
    if (code === 409) {
      this.readOnly = true;
      this.conversationEnded = true;
      this._emit('ended', { readOnly: true });
      this._setState(States.ended, 'This conversation has ended.');
    }
    this._emit('error', { code, message: text, tracingId });
    if (waiter) {
      this._pending.delete(tracingId);
      waiter.reject(Object.assign(new Error(text), { code }));
    }
  }

  // ---- plumbing ----

  _sendMessage(tracingId) {
    const waiter = this._pending.get(tracingId);
    if (!waiter) return;
    if (!this._send({ action: 'onMessage', message: { type: 'Text', text: waiter.text } }, tracingId)) {
      this._pending.delete(tracingId);
      waiter.reject(Object.assign(new Error('Not connected; send it again once connected.'), { code: 0 }));
    }
  }

  _request(request, expectedClass) {
    return new Promise((resolve, reject) => {
      const tracingId = this._tracingId();
      this._pending.set(tracingId, { resolve, reject, expectedClass, retries: 0 });
      if (!this._send(request, tracingId)) {
        this._pending.delete(tracingId);
        reject(Object.assign(new Error('Not connected.'), { code: 0 }));
      }
    });
  }

  _send(request, tracingId = this._tracingId()) {
    if (this._socket?.readyState !== WebSocket.OPEN) return false;
    this._socket.send(JSON.stringify({ ...request, token: this.token, tracingId }));
    return true;
  }

  _rejectPending(error) {
    for (const [id, waiter] of this._pending) {
      this._pending.delete(id);
      waiter.reject(error);
    }
  }

  _tracingId() { return `pg-${Date.now().toString(36)}-${++this._seq}`; }

  _setState(state, text, retryInMs) {
    this.state = state;
    this._emit('state', { state, text, retryInMs });
  }

  _emit(name, detail) { this.dispatchEvent(new CustomEvent(name, { detail })); }

  _read() {
    try { return this.storage?.getItem(this.storageKey) ?? null; } catch { return this._memoryToken ?? null; }
  }

  _write(token) {
    this._memoryToken = token;
    try { this.storage?.setItem(this.storageKey, token); } catch { /* storage refused: the token lives as long as the page */ }
  }
}
