// --heartbeat-url (SPEC "Session lifecycle"): a GET every --heartbeat-interval while every session is
// protected — the push convention of healthchecks.io and Uptime Kuma, and Litestream's heartbeat. The
// monitor pages when the pings stop, so it also hears of what cannot report itself: a crashed pod, a
// deleted namespace, a keeper that no longer runs.
import type { Clock } from '../clock.js';
import { UsageError } from '../errors.js';
import type { Logger } from '../log.js';
import type { HEARTBEAT_RESULTS } from '../metrics.js';
import { attempt } from './request.js';
import { type Endpoint, parseEndpoint } from './url.js';

/** --heartbeat-interval's default (SPEC: 5m), ms. */
export const DEFAULT_HEARTBEAT_INTERVAL_MS = 300_000;
/** The shortest --heartbeat-interval (SPEC: at least 1 s), ms. */
export const MIN_HEARTBEAT_INTERVAL_MS = 1_000;
/** Time a ping may wait for its answer, ms. */
export const DEFAULT_HEARTBEAT_TIMEOUT_MS = 10_000;

/** How an interval went: a ping answered 2xx, a ping that failed, or none sent (a session unprotected). */
export type HeartbeatResult = (typeof HEARTBEAT_RESULTS)[number];

export interface HeartbeatOptions {
  /** --heartbeat-url: an http:// or https:// URL; userinfo becomes a Basic authorization header. */
  url: string;
  /** --heartbeat-interval: from the start of one ping to the next, ms; at least 1 s. */
  intervalMs: number;
  /** Whether every session is protected now (SPEC "Protection"); asked at every interval. */
  allProtected(): boolean;
  clock: Clock;
  log: Logger;
  /** baileys_keeper_heartbeats_total (Metrics.heartbeats). */
  beats: { inc(labels: { result: HeartbeatResult }): void };
  /** Real time a ping may wait for its answer, ms; default 10 s. */
  timeoutMs?: number;
}

/**
 * Pings a URL every interval while every session is protected, and skips the intervals in which one is
 * not. Pings never overlap: the next is due one interval after the previous one began, or at once if that
 * one took longer. A ping that fails is not retried before the next interval (the monitor allows for a
 * missed one; its grace period is the place for that).
 */
export class Heartbeat {
  private readonly endpoint: Endpoint;
  private readonly log: Logger;
  private readonly timeoutMs: number;
  private cancelTimer: (() => void) | null = null;
  /** The ping in progress, awaited by stop(). */
  private current: Promise<void> = Promise.resolve();
  private started = false;
  private stopped = false;
  private readonly stopping = new AbortController();
  /** Failed pings since the last success: the first of a streak is logged at warn, the rest at debug. */
  private failures = 0;

  /** Throws UsageError when the URL is not http(s) or the interval is under 1 s. */
  constructor(private readonly options: HeartbeatOptions) {
    this.endpoint = parseEndpoint(options.url, '--heartbeat-url');
    if (!(options.intervalMs >= MIN_HEARTBEAT_INTERVAL_MS)) {
      throw new UsageError(`--heartbeat-interval must be at least 1s (got ${options.intervalMs} ms)`);
    }
    this.timeoutMs = options.timeoutMs ?? DEFAULT_HEARTBEAT_TIMEOUT_MS;
    this.log = options.log.child({ component: 'heartbeat' });
  }

  /** Starts pinging: the first ping right away (if every session is protected). A second call does nothing. */
  start(): void {
    if (this.started || this.stopped) return;
    this.started = true;
    this.log.info({ url: this.endpoint.display, intervalMs: this.options.intervalMs }, 'heartbeat started');
    this.beat();
  }

  /** Stops pinging: no ping starts afterwards, one in flight is abandoned; resolves when it has ended. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.cancelTimer?.();
    this.cancelTimer = null;
    this.stopping.abort();
    await this.current;
  }

  private beat(): void {
    this.cancelTimer = null;
    if (this.stopped) return;
    const begun = this.options.clock.now();
    this.current = this.ping().then(() => {
      if (this.stopped) return;
      const next = begun + this.options.intervalMs - this.options.clock.now();
      this.cancelTimer = this.options.clock.setTimer(() => this.beat(), Math.max(0, next));
    });
  }

  /** One interval: a ping or a skip, counted; never rejects. */
  private async ping(): Promise<void> {
    const { beats } = this.options;
    const fields = { url: this.endpoint.display };
    let protectedNow: boolean;
    try {
      protectedNow = this.options.allProtected();
    } catch (error) {
      this.log.error({ ...fields, err: error }, 'heartbeat skipped: could not tell whether every session is protected');
      protectedNow = false;
    }
    if (!protectedNow) {
      beats.inc({ result: 'skipped' });
      this.log.debug(fields, 'heartbeat skipped: not every session is protected');
      return;
    }
    const outcome = await attempt(this.endpoint, { method: 'GET', timeoutMs: this.timeoutMs, signal: this.stopping.signal });
    if (this.stopped && !outcome.ok) return; // abandoned by stop(): says nothing about the monitor
    if (outcome.ok) {
      beats.inc({ result: 'success' });
      if (this.failures > 0) this.log.info({ ...fields, failures: this.failures }, 'heartbeat delivered again');
      else this.log.debug(fields, 'heartbeat delivered');
      this.failures = 0;
      return;
    }
    beats.inc({ result: 'failure' });
    const more = outcome.location ? { location: outcome.location } : {};
    const message = outcome.location
      ? `heartbeat answered with a redirect to ${outcome.location}, which is not followed: set --heartbeat-url to the final URL`
      : `heartbeat failed (${outcome.reason}): the monitor will report this keeper down if it keeps failing`;
    if (this.failures === 0) this.log.warn({ ...fields, reason: outcome.reason, ...more }, message);
    else this.log.debug({ ...fields, reason: outcome.reason, failures: this.failures + 1, ...more }, message);
    this.failures++;
  }
}
