// What a keeper of many sessions says during a database outage: every session's loop fails and retries
// on its own (a thousand sessions, a hundred lines a second), but it is one outage. The loops hand their
// failures here; the keeper logs one line per backoff step naming what failed, the error and how many
// sessions wait, and one line when the database answers again. Each session's detail goes to debug.
import type { Clock } from './clock.js';
import { describeError } from './errors.js';
import type { Logger } from './log.js';
import { Backoff, RETRY_BACKOFF } from './retry.js';
import type { SessionStore } from './store/index.js';

interface Outage {
  /** When its first failure was told (the clock's ms). */
  readonly since: number;
  /** Sessions that failed since it began: what waits for the database. */
  readonly sessions: Set<string>;
  /** Operations that failed since the last line ('backup', 'lease'…). */
  operations: Set<string>;
  /** Failures since the last line. */
  failures: number;
  /** The newest failure's description. */
  error: string;
}

/**
 * The outage log of one keeper: `failed` for every failed database operation of any of its sessions,
 * `answered` for every answer of the database (`watching` wraps a store so that its answers tell it).
 * Lines at warn: the first failure of an outage at once, then at most one per step of RETRY_BACKOFF (the
 * loops' own retry policy: 250 ms doubling to 30 s), so a long outage costs a line every 30 s, not one
 * per session and retry. Recovery at info, once.
 */
/** Up to this many sessions waiting are named in the line. */
const NAMED_SESSIONS = 3;

export class OutageLog {
  private outage: Outage | null = null;
  private readonly steps = new Backoff(RETRY_BACKOFF);
  /** No line of an outage before this (the clock's ms); kept over a short recovery so a flapping database stays quiet. */
  private nextLineAt = 0;
  /** When the last outage ended (the clock's ms). */
  private endedAt = Number.NEGATIVE_INFINITY;
  /** Counts outages begun: an answer to a call made before the current one began says nothing of it. */
  private epoch = 0;

  constructor(
    private readonly log: Logger,
    private readonly clock: Clock,
  ) {}

  /** True while failures were told and the database has not answered since. */
  get active(): boolean {
    return this.outage !== null;
  }

  /** Operation `during` failed with `error` for `sessions` (ids); each retries on its own. Logs per the steps above. */
  failed(during: string, error: unknown, sessions: Iterable<string>): void {
    const now = this.clock.now();
    if (this.outage === null) {
      // A database that stayed up for longer than the longest step starts its next outage's steps afresh.
      if (now - this.endedAt > RETRY_BACKOFF.maxMs) {
        this.steps.reset();
        this.nextLineAt = now;
      }
      this.epoch++;
      this.outage = { since: now, sessions: new Set(), operations: new Set(), failures: 0, error: '' };
    }
    const outage = this.outage;
    for (const session of sessions) outage.sessions.add(session);
    outage.operations.add(during);
    outage.failures++;
    outage.error = describeError(error);
    if (now >= this.nextLineAt) this.report(outage, now);
  }

  /**
   * The database answered a call made at `epoch` (default: now): an outage in progress is over (said once,
   * with how long it lasted) — unless the call was made before it began (a late answer is no recovery).
   */
  answered(epoch = this.epoch): void {
    const outage = this.outage;
    if (outage === null || epoch !== this.epoch) return;
    this.outage = null;
    const now = this.clock.now();
    this.endedAt = now;
    const seconds = Math.round((now - outage.since) / 100) / 10;
    const sessions = outage.sessions.size;
    this.log.info(
      { outageMs: now - outage.since, sessions },
      `database reachable again after ${seconds} s; ${sessions} session${sessions === 1 ? '' : 's'} resumed`,
    );
  }

  /**
   * `store` as the keeper's loops use it: every call that the database answers (resolves) tells `answered`.
   * Failures are told by the loops themselves, which know the session and the operation.
   */
  watching(store: SessionStore): SessionStore {
    return new Proxy(store, {
      get: (target, name, receiver) => {
        const value: unknown = Reflect.get(target, name, receiver);
        if (typeof value !== 'function') return value;
        return (...args: unknown[]) => {
          const epoch = this.epoch;
          const result: unknown = value.apply(target, args);
          if (result instanceof Promise)
            result.then(
              () => this.answered(epoch),
              () => undefined, // the caller has the same promise and handles its failure
            );
          return result;
        };
      },
    });
  }

  private report(outage: Outage, now: number): void {
    const seconds = Math.round((now - outage.since) / 100) / 10;
    const sessions = outage.sessions.size;
    const operations = [...outage.operations];
    // A few sessions failing while the others are stored is rather their own fault (a constraint, a
    // permission): they are named, so that the line says whose.
    const named = sessions <= NAMED_SESSIONS ? [...outage.sessions] : [];
    this.log.warn(
      {
        operations,
        err: outage.error,
        sessions,
        failures: outage.failures,
        outageMs: now - outage.since,
        ...(named.length > 0 && { sessionIds: named }),
      },
      `database unavailable${seconds > 0 ? ` for ${seconds} s` : ''}: ${operations.join(', ')} failed (${outage.error}); ` +
        `${sessions} session${sessions === 1 ? '' : 's'} waiting${named.length > 0 ? ` (${named.join(', ')})` : ''}, retrying`,
    );
    outage.operations = new Set();
    outage.failures = 0;
    this.nextLineAt = now + this.steps.fail();
  }
}
