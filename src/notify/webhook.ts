// Session lifecycle events POSTed to --webhook-url (SPEC "Session lifecycle"): a bounded queue in front of
// one delivery at a time, each attempt bounded by a timeout, failures retried with backoff until the event
// is an hour old. Nothing here ever waits on the receiver for the caller: send() only enqueues.
import { createHmac, randomUUID } from 'node:crypto';
import { maskJidLast4 } from '../creds.js';
import type { Clock } from '../clock.js';
import { UsageError } from '../errors.js';
import type { Logger } from '../log.js';
import type { WEBHOOK_RESULTS } from '../metrics.js';
import { Backoff, type BackoffPolicy } from '../retry.js';
import type { SessionEvent, SessionEventName } from '../lifecycle-events.js';
import { attempt, type Outcome } from './request.js';
import { type Endpoint, parseEndpoint } from './url.js';

/** Time one attempt may take to be answered (SPEC: 10 s), ms. */
export const DEFAULT_WEBHOOK_TIMEOUT_MS = 10_000;
/** How long after an event its delivery is retried before it is dropped (SPEC: 1 h), ms. */
export const DEFAULT_WEBHOOK_RETRY_FOR_MS = 3_600_000;
/** Events waiting for delivery at most; lifecycle events are rare, so this is hours of an outage. */
export const DEFAULT_WEBHOOK_QUEUE_LIMIT = 1_000;
/** Pauses between failed attempts: 1 s, doubling, at most 1 min (about 65 attempts in the hour). */
export const WEBHOOK_BACKOFF: BackoffPolicy = { initialMs: 1_000, factor: 2, maxMs: 60_000 };
/** The header that carries the body's HMAC-SHA256 (GitHub's and Stripe's convention). */
export const SIGNATURE_HEADER = 'X-Keeper-Signature';
/** The header that names one event, the same on every attempt, so that a receiver can ignore a repeat. */
export const DELIVERY_HEADER = 'X-Keeper-Delivery';

/** The JSON body, exactly SPEC "Session lifecycle", in this key order. */
export interface WebhookBody {
  event: SessionEventName;
  session_id: string;
  /** ISO-8601, UTC. */
  at: string;
  generation: number | null;
  /** The number masked to its last 4 digits (`*********9999`), or null when not paired. */
  phone: string | null;
}

/** An event delivered, an attempt that failed, or an event given up. */
export type WebhookResult = (typeof WEBHOOK_RESULTS)[number];

export interface WebhookOptions {
  /** --webhook-url: an http:// or https:// URL; userinfo becomes a Basic authorization header. */
  url: string;
  /** The webhook secret (docs/monitoring.md): the HMAC key of X-Keeper-Signature; null sends no signature. */
  secret: Buffer | null;
  clock: Clock;
  log: Logger;
  /** baileys_keeper_webhook_deliveries_total (Metrics.webhookDeliveries). */
  deliveries: { inc(labels: { result: WebhookResult }): void };
  /** Events waiting for delivery at most (the one being sent is not counted); default 1000; at least 1. */
  queueLimit?: number;
  /** Real time an attempt may wait for the answer, ms; default 10 s. */
  timeoutMs?: number;
  /** Time after an event (on clock.now()) within which a failed delivery is retried, ms; default 1 h. */
  retryForMs?: number;
  /** Pauses between failed attempts; default WEBHOOK_BACKOFF. */
  backoff?: BackoffPolicy;
}

interface Queued {
  event: SessionEvent;
  body: Buffer;
  headers: Record<string, string>;
  /** On clock.now(): the last instant an attempt is made, ms. */
  deadline: number;
  /** Set when the pause before its next attempt was cut to end at its deadline: that attempt is its last. */
  lastAttempt: boolean;
}

/**
 * Delivers session events to one webhook URL, one at a time and in the order they were sent, so that a
 * receiver sees `logged_out` before `repaired` and is never sent more than one request at once (ordering
 * is worth more than throughput: events come minutes apart). Counts each outcome in `deliveries`.
 */
export class WebhookSender {
  private readonly endpoint: Endpoint;
  private readonly log: Logger;
  private readonly queueLimit: number;
  private readonly timeoutMs: number;
  private readonly retryForMs: number;
  /** Of the receiver, not of one event: a long outage keeps long pauses whichever event is next. */
  private readonly backoff: Backoff;
  private readonly queue: Queued[] = [];
  /** The event whose attempt is in flight (the head of the queue); it cannot be dropped meanwhile. */
  private sending: Queued | null = null;
  private working = false;
  private running: Promise<void> = Promise.resolve();
  /** Ends a pause between attempts early (close()). */
  private wake: (() => void) | null = null;
  /** Set by close(): when delivery gives up, on clock.now(), ms. */
  private closeDeadline: number | null = null;
  /** Abandons the attempt in flight when close()'s deadline passes. */
  private readonly closed = new AbortController();

  /** Throws UsageError when the URL is not http(s), the secret is empty or queueLimit is below 1. */
  constructor(private readonly options: WebhookOptions) {
    this.endpoint = parseEndpoint(options.url, '--webhook-url');
    if (options.secret !== null && options.secret.length === 0) {
      throw new UsageError('the webhook secret is empty: give a secret, or leave it unset to send unsigned events');
    }
    this.queueLimit = options.queueLimit ?? DEFAULT_WEBHOOK_QUEUE_LIMIT;
    if (!Number.isInteger(this.queueLimit) || this.queueLimit < 1)
      throw new UsageError('the webhook queue limit must be a whole number of at least 1');
    this.timeoutMs = options.timeoutMs ?? DEFAULT_WEBHOOK_TIMEOUT_MS;
    this.retryForMs = options.retryForMs ?? DEFAULT_WEBHOOK_RETRY_FOR_MS;
    this.backoff = new Backoff(options.backoff ?? WEBHOOK_BACKOFF);
    this.log = options.log.child({ component: 'webhook' });
  }

  /** The URL as logs show it: scheme, host and port. */
  get display(): string {
    return this.endpoint.display;
  }

  /**
   * Queues `event` for delivery and returns at once; never throws. When the queue is full, the oldest
   * waiting event is dropped: the newest events say how things are now (`protected` after `unprotected`),
   * while the oldest is the stalest and the nearest to being dropped for age anyway. After close(), the
   * event is dropped.
   */
  send(event: SessionEvent): void {
    try {
      const item = this.prepare(event);
      if (this.closeDeadline !== null) {
        this.drop(item, 'the sender is shut down');
        return;
      }
      const waiting = this.queue.length - (this.sending ? 1 : 0);
      if (waiting >= this.queueLimit) {
        const oldest = this.queue[this.sending ? 1 : 0];
        if (oldest) {
          this.queue.splice(this.queue.indexOf(oldest), 1);
          this.drop(oldest, `the queue is full (${this.queueLimit} events waiting)`);
        }
      }
      this.queue.push(item);
      this.kick();
    } catch (error) {
      // Nothing above is expected to throw; a notification must still never break the backup that sent it.
      this.log.error({ err: error, event: event.event, session: event.sessionId }, 'webhook event not queued');
    }
  }

  /**
   * Delivers what is queued, retrying as usual, for at most `withinMs` (on the clock), then drops what is
   * left (counted) and abandons an attempt in flight. Resolves when nothing is queued or sent any more.
   * Events sent afterwards are dropped.
   */
  async close(withinMs: number): Promise<void> {
    if (this.closeDeadline === null) {
      this.closeDeadline = this.options.clock.now() + Math.max(0, withinMs);
      const cancel = this.options.clock.setTimer(() => this.closed.abort(), Math.max(0, withinMs));
      // Time is short: the next attempt is made now rather than after the rest of a pause.
      this.wake?.();
      void this.running.finally(cancel);
    }
    await this.running;
  }

  /** The body, its signature and the delivery id, fixed once so that every attempt sends the same bytes. */
  private prepare(event: SessionEvent): Queued {
    const { clock } = this.options;
    const body: WebhookBody = {
      event: event.event,
      session_id: event.sessionId,
      at: new Date(event.at ?? clock.wall()).toISOString(),
      generation: event.generation,
      phone: event.jid === null ? null : maskJidLast4(event.jid),
    };
    const bytes = Buffer.from(JSON.stringify(body));
    const headers: Record<string, string> = { 'Content-Type': 'application/json', [DELIVERY_HEADER]: randomUUID() };
    if (this.options.secret) {
      headers[SIGNATURE_HEADER] = `sha256=${createHmac('sha256', this.options.secret).update(bytes).digest('hex')}`;
    }
    return { event, body: bytes, headers, deadline: clock.now() + this.retryForMs, lastAttempt: false };
  }

  private kick(): void {
    if (this.working) return;
    this.working = true;
    this.running = this.work();
  }

  /** Sends the head of the queue until the queue is empty; `working` is cleared in the same turn it empties. */
  private async work(): Promise<void> {
    const { clock } = this.options;
    try {
      for (;;) {
        this.expire();
        const item = this.queue[0];
        if (!item) return;
        if (this.closeDeadline !== null && clock.now() >= this.closeDeadline) {
          for (const left of this.queue.splice(0)) this.drop(left, 'not delivered before shutdown');
          return;
        }
        this.sending = item;
        const outcome = await attempt(this.endpoint, {
          method: 'POST',
          headers: item.headers,
          body: item.body,
          timeoutMs: this.timeoutMs,
          signal: this.closed.signal,
        });
        this.sending = null;
        if (outcome.ok) {
          this.queue.shift();
          this.delivered(item);
          continue;
        }
        const pauseMs = this.failed(item, outcome);
        const now = clock.now();
        if (now >= item.deadline) {
          this.queue.shift();
          this.drop(item, `not delivered within ${this.retryForMs} ms`);
          continue;
        }
        // The pause ends early for the event's last attempt (at its deadline) and for shutdown.
        const until = Math.min(now + pauseMs, item.deadline, this.closeDeadline ?? Infinity);
        item.lastAttempt = until === item.deadline;
        if (until > now) await this.pause(until - now);
      }
    } catch (error) {
      this.log.error({ err: error }, 'webhook delivery stopped unexpectedly: queued events are dropped');
      for (const left of this.queue.splice(0)) this.drop(left, 'delivery stopped');
    } finally {
      this.sending = null;
      this.working = false;
    }
  }

  /**
   * Drops the queued events past their deadline, except one whose last attempt is due: a timer fires a
   * little after its time, and that attempt must not be lost to it.
   */
  private expire(): void {
    const now = this.options.clock.now();
    for (let i = this.queue.length - 1; i >= 0; i--) {
      const item = this.queue[i]!;
      if (now > item.deadline && !item.lastAttempt) {
        this.queue.splice(i, 1);
        this.drop(item, `not delivered within ${this.retryForMs} ms`);
      }
    }
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        this.wake = null;
        cancel();
        resolve();
      };
      const cancel = this.options.clock.setTimer(done, Math.max(0, ms));
      this.wake = done;
    });
  }

  private delivered(item: Queued): void {
    this.options.deliveries.inc({ result: 'success' });
    const fields = this.fields(item);
    if (this.backoff.failing) this.log.info(fields, 'webhook delivered again after failed attempts');
    else this.log.debug(fields, 'webhook delivered');
    this.backoff.reset();
  }

  /**
   * Counts a failed attempt and returns the pause before the next one, ms. A failure streak is logged at
   * warn once, its further attempts at debug: an outage of an hour is one warning, not sixty.
   */
  private failed(item: Queued, outcome: Extract<Outcome, { ok: false }>): number {
    this.options.deliveries.inc({ result: 'failure' });
    const fields = { ...this.fields(item), reason: outcome.reason, ...(outcome.location ? { location: outcome.location } : {}) };
    const message = outcome.location
      ? `webhook answered with a redirect to ${outcome.location}, which is not followed: set --webhook-url to the final URL; retrying with backoff`
      : `webhook delivery failed (${outcome.reason}); retrying with backoff`;
    if (this.backoff.failing) this.log.debug(fields, message);
    else this.log.warn(fields, message);
    return this.backoff.fail();
  }

  private drop(item: Queued, why: string): void {
    this.options.deliveries.inc({ result: 'dropped' });
    this.log.warn(this.fields(item), `webhook event dropped: ${why}`);
  }

  private fields(item: Queued): Record<string, unknown> {
    return { url: this.endpoint.display, event: item.event.event, session: item.event.sessionId, generation: item.event.generation };
  }
}
