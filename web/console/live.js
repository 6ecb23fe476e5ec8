// The live feed: a Notifications API channel subscribed to every queue's message-conversation topic
// (docs/compatibility.md §Notification channels). Nothing here polls: state comes from the API once per (re)connect,
// then only from events. A dropped socket is reopened (same channel if it still exists, else a new one) with backoff,
// and the state is read again so nothing missed while disconnected is lost.
import { api, listAll } from './api.js';

export const queueTopic = (queueId) => `v2.routing.queues.${queueId}.conversations.messages`;
const QUEUE_TOPIC = /^v2\.routing\.queues\.[^.]+\.conversations\.messages$/;
const SILENCE_LIMIT_MS = 75_000;   // heartbeats come every 30 s: two missed means the socket is dead

/** A message conversation has ended when every participant is disconnected (docs/compatibility.md §Termination levers). */
export const isEnded = (c) => (c.participants ?? []).length > 0 && c.participants.every((p) => p.state === 'disconnected');

/** A message's id in a participant's messages: MessageDetails has messageId, the queue topic's details {message: {id}}. */
export const messageIdOf = (m) => m?.messageId ?? m?.message?.id;

/**
 * The conversation after an event: the event's participants, each keeping the messages already known (a queue event
 * carries only that change's messages, the API the recent ones).
 */
export function mergeConversation(before, event) {
  if (!before) return event;
  const participants = (event.participants ?? []).map((p) => {
    const known = before.participants?.find((b) => b.id === p.id)?.messages ?? [];
    const ids = new Set((p.messages ?? []).map(messageIdOf));
    return { ...p, messages: [...known.filter((m) => !ids.has(messageIdOf(m))), ...(p.messages ?? [])] };
  });
  return { ...before, ...event, participants };
}

export class LiveFeed {
  /**
   * @param {{onSnapshot(list: object[]): void, onConversation(c: object): void, onStatus(state: string, detail?: string): void}} sink
   */
  constructor(sink) {
    this.sink = sink;
    this.channelId = null;
    this.socket = null;
    this.stopped = false;
    this.attempt = 0;
    this.ended = new Set();   // ended ids seen in events: an older snapshot must not bring them back
  }

  async start() {
    this.stopped = false;
    await this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    clearInterval(this.watchdog);
    this.socket?.close(1000, 'console closed');
    this.socket = null;
  }

  async connect() {
    clearTimeout(this.retryTimer);
    this.sink.onStatus('connecting');
    try {
      const queues = await listAll('/api/v2/routing/queues', { action: 'list the queues' });
      this.queues = queues;
      const channel = await this.channel();
      const topics = queues.map((q) => ({ id: queueTopic(q.id) }));
      await api(`/api/v2/notifications/channels/${encodeURIComponent(channel.id)}/subscriptions`,
        { method: 'PUT', body: topics, action: 'subscribe to the queues\' conversations' });
      await this.open(channel.connectUri);
      // Subscribed and listening before the snapshot: an event that lands in between is not missed.
      const active = await listAll('/api/v2/conversations/messages', { action: 'list the active conversations' });
      this.attempt = 0;
      this.sink.onSnapshot(active.filter((c) => !this.ended.has(c.id) && !isEnded(c)));
      this.sink.onStatus('live', `${queues.length} queue${queues.length === 1 ? '' : 's'}`);
    } catch (error) {
      if (this.stopped) return;
      const socket = this.socket;
      this.socket = null;   // its close must not schedule a second retry
      socket?.close();
      // Refused (the session ended, or the role may not): trying again cannot help.
      if (error.status === 401 || error.status === 403) { this.stop(); this.sink.onStatus('stopped', error.message); return; }
      this.retry(error.message ?? String(error));
    }
  }

  /** The channel this console already has, if the server still knows it (HEAD), else a new one. */
  async channel() {
    if (this.channelId && this.connectUri) {
      try {
        await api(`/api/v2/notifications/channels/${encodeURIComponent(this.channelId)}`, { method: 'HEAD', action: 'check the notification channel' });
        return { id: this.channelId, connectUri: this.connectUri };
      } catch (error) {
        if (error.status !== 404) throw error;
      }
    }
    const { body } = await api('/api/v2/notifications/channels', { method: 'POST', action: 'open a notification channel' });
    this.channelId = body.id;
    this.connectUri = body.connectUri;
    return body;
  }

  open(connectUri) {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(connectUri);
      this.socket = socket;
      let opened = false;
      socket.onopen = () => {
        opened = true;
        this.lastHeard = Date.now();
        clearInterval(this.watchdog);
        this.watchdog = setInterval(() => {
          if (Date.now() - this.lastHeard > SILENCE_LIMIT_MS) socket.close(4000, 'no heartbeat');
        }, 5_000);
        resolve();
      };
      socket.onmessage = (message) => { this.lastHeard = Date.now(); this.receive(message.data); };
      socket.onclose = (event) => {
        clearInterval(this.watchdog);
        if (!opened) { reject(new Error(`The notification socket did not open (close code ${event.code}).`)); return; }
        if (this.socket === socket && !this.stopped) this.retry(`the notification socket closed (code ${event.code})`);
      };
    });
  }

  receive(data) {
    let frame;
    try { frame = JSON.parse(data); } catch { return; }
    const topic = frame?.topicName ?? '';
    if (topic === 'v2.system.socket_closing') { this.socket?.close(1000, 'server closing'); return; }
    if (!QUEUE_TOPIC.test(topic) || !frame.eventBody?.id) return;   // heartbeats, pongs
    const conversation = frame.eventBody;
    if (isEnded(conversation)) this.ended.add(conversation.id);
    this.sink.onConversation(conversation);
  }

  retry(reason) {
    if (this.stopped) return;
    const delay = Math.min(15_000, 500 * 2 ** this.attempt++);
    this.sink.onStatus('reconnecting', `${reason}; retrying in ${Math.round(delay / 1000)} s`);
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }
}
