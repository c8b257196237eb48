// The backup loop in this process on a manual clock, over a real PostgreSQL database and a real auth
// directory, for the rules that are about time (debounce, max-delay, lag, lease, shutdown): only the
// clock is fake. The test still waits, in real time, for what the kernel and the database do (file
// events, queries), but never for the loop's own timers: it moves the clock past them.
import { after } from 'node:test';
import { pino } from 'pino';
import {
  DEFAULT_DEBOUNCE_MS,
  DEFAULT_INTERVAL_MS,
  DEFAULT_KEEP_GENERATIONS,
  DEFAULT_LEASE_TTL_MS,
  DEFAULT_MAX_DELAY_MS,
  DEFAULT_POLL_INTERVAL_MS,
  DEFAULT_RETENTION,
  DEFAULT_SHUTDOWN_QUIET_MS,
  DEFAULT_SHUTDOWN_TIMEOUT_MS,
  DEFAULT_WATCH_MODE,
} from '../../src/config.js';
import { createDatabase } from '../../src/db/pool.js';
import { Metrics, readingsOf } from '../../src/metrics.js';
import { parseRetention } from '../../src/store/retention.js';
import type { SessionLoopOptions } from '../../src/loop/loop-options.js';
import { SessionLoop } from '../../src/loop/session-loop.js';
import type { KeyRing } from '../../src/crypto.js';
import { SessionStore } from '../../src/store/index.js';
import { waitFor } from '../../harness/sidecar.js';
import { testLog } from './log.js';
import { ManualClock } from './manual-clock.js';

/** How long the watcher must stay silent before a write counts as fully reported (real time), ms. */
const WATCHER_QUIET_MS = 200;

export type BackupResult = 'success' | 'noop' | 'failure' | 'refused';

export interface Loop {
  sidecar: SessionLoop;
  clock: ManualClock;
  metrics: Metrics;
  /** The messages the loop logged so far (info and above), oldest first. */
  logs: string[];
  /**
   * Moves the clock by `ms`: every timer due by then fires at its instant, and the backup or lease
   * attempt it starts ends before the next one fires (as if the database answered at once).
   */
  advance(ms: number): Promise<void>;
  /** Backups so far that ended with `result` (the baileys_keeper_backups_total counter). */
  backups(result: BackupResult): Promise<number>;
  /** Waits (real time) until the watcher has reported a change of each of `names` not stored yet. */
  reported(...names: string[]): Promise<void>;
  /**
   * reported(), then waits until the watcher has said nothing more for a moment (real time): one write
   * can be reported twice, and a late second report would count as a later change on the clock.
   */
  seen(...names: string[]): Promise<void>;
  /** The lag gauge as a scrape reads it, seconds. */
  lag(): Promise<number>;
}

export interface LoopOptions extends Partial<SessionLoopOptions> {
  dir: string;
  sessionId: string;
  /** Encryption at rest for the loop's store (none by default). */
  keys?: KeyRing;
}

/**
 * Starts a sidecar loop on `url` (its schema is migrated by the loop) for `options.dir`, with the CLI's
 * defaults for what `options` leaves out. Resolves once it is ready: the directory was compared with what
 * is stored, or another process holds the lease; rejects if that takes 20 s. The loop is shut down and its
 * pool closed after the calling test.
 */
export async function startLoop(url: string, { keys, ...options }: LoopOptions): Promise<Loop> {
  const clock = new ManualClock();
  const logs: string[] = [];
  const log = pino({ level: 'info' }, { write: (line: string) => void logs.push(String(JSON.parse(line).msg)) });
  const db = createDatabase({ url, schema: 'baileys_keeper', log: testLog });
  const store = new SessionStore(db, keys ?? null);
  const metrics: Metrics = new Metrics(readingsOf(() => loop));
  const loop: SessionLoop = new SessionLoop(
    store,
    {
      owner: `loop:${options.sessionId}`,
      retention: parseRetention(DEFAULT_RETENTION, DEFAULT_KEEP_GENERATIONS),
      allowReplace: false,
      debounceMs: DEFAULT_DEBOUNCE_MS,
      maxDelayMs: DEFAULT_MAX_DELAY_MS,
      intervalMs: DEFAULT_INTERVAL_MS,
      leaseTtlMs: DEFAULT_LEASE_TTL_MS,
      shutdownQuietMs: DEFAULT_SHUTDOWN_QUIET_MS,
      shutdownTimeoutMs: DEFAULT_SHUTDOWN_TIMEOUT_MS,
      watchMode: DEFAULT_WATCH_MODE,
      pollIntervalMs: DEFAULT_POLL_INTERVAL_MS,
      ...options,
    },
    metrics,
    log,
    clock,
  );
  clock.settle = () => loop.whenIdle();
  after(async () => {
    // Whatever state a test left the loop in, its final backup and lease release run to their end.
    if (loop.phase !== 'stopped') await clock.runUntilSettled(loop.shutdown(0));
    await db.close();
  });
  await loop.start();
  // The lease attempt and the first full backup are real queries; the clock only has to let them start.
  await waitFor(
    async () => {
      await clock.advance(0);
      return loop.ready ? true : null;
    },
    20_000,
    () => `the loop never became ready: ${loop.problems.join('; ') || loop.phase}`,
  );
  const reported = async (...names: string[]) => {
    await waitFor(
      () => (names.every((name) => loop.dirty.names().includes(name)) ? true : null),
      10_000,
      () => `the watcher did not report ${names.join(', ')} (dirty: ${loop.dirty.names().join(', ')})`,
    );
  };
  return {
    sidecar: loop,
    clock,
    metrics,
    logs,
    advance: (ms) => clock.advance(ms),
    async backups(result) {
      return (await metrics.backups.get()).values.find((value) => value.labels['result'] === result)?.value ?? 0;
    },
    reported,
    async seen(...names) {
      await reported(...names);
      let marks = loop.dirty.checkpoint();
      let since = Date.now();
      await waitFor(() => {
        if (loop.dirty.checkpoint() !== marks) [marks, since] = [loop.dirty.checkpoint(), Date.now()];
        return Date.now() - since >= WATCHER_QUIET_MS ? true : null;
      }, 10_000);
    },
    async lag() {
      return (await metrics.backupLag.get()).values[0]?.value ?? NaN;
    },
  };
}
