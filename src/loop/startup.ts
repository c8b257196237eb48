// Starting one session's loop: watch the directory (waiting for it, finishing an interrupted restore in
// it) and prepare the database (migrate, read the stored state), in parallel, each retried with backoff
// while it fails and shown as unhealthy (/healthz 503) until it succeeds; then the lease keeper starts.
import { stat } from 'node:fs/promises';
import { sleep } from '../clock.js';
import { describeError } from '../errors.js';
import { recoverInterruptedRestore } from '../restore.js';
import { Backoff } from '../retry.js';
import { DIR_POLL_MS } from '../watcher.js';
import type { LoopContext } from './context.js';
import { RETRY_BACKOFF } from './loop-options.js';
import type { Schedule } from './schedule.js';

/** The start-up steps whose failure is retried and shown as unhealthy (/healthz 503) until it succeeds. */
export type StartStep = 'watch' | 'database';

export class StartUp {
  /** Settles when start-up is over (database prepared, directory watched, lease keeper started); null before start(). */
  booted: Promise<void> | null = null;
  /** Settles once the directory is watched: what start() resolves with. */
  private watching: Promise<void> = Promise.resolve();
  private markAttempted!: () => void;
  /** Settles once the directory is watched, or found missing, or watching it failed once. */
  readonly firstAttempt = new Promise<void>((resolve) => (this.markAttempted = resolve));
  /** True while the directory is missing at start and waited for. */
  private waitingForDirectory = false;
  /** Start-up steps failing right now, with what went wrong. */
  private readonly failing = new Map<StartStep, string>();
  private stopRequested!: () => void;
  /** Settles when shutdown starts, so that start-up backoff sleeps end at once. */
  private readonly stopSignal = new Promise<void>((resolve) => (this.stopRequested = resolve));

  constructor(
    private readonly loop: LoopContext,
    private readonly schedule: Schedule,
  ) {}

  /**
   * Starts, once: resolves once the directory is being watched (so no later write is missed); the
   * database side starts at once and in parallel, whatever the directory does. Never rejects; the
   * periodic rescan is armed whatever happens.
   */
  start(): Promise<void> {
    const { loop } = this;
    if (loop.phase === 'new') {
      loop.phase = 'starting';
      loop.protection.uncomparedSince = loop.clock.now();
      const quietCap = loop.options.shutdownTimeoutMs / 2;
      // Said once up front, not silently at shutdown: half of the stop budget is kept for the final backup.
      if (loop.options.shutdownQuietMs > quietCap) {
        loop.log.warn(
          { shutdownQuietMs: loop.options.shutdownQuietMs, shutdownTimeoutMs: loop.options.shutdownTimeoutMs, quietWaitMs: quietCap },
          `--shutdown-quiet is more than half of --shutdown-timeout: the quiet wait at shutdown will be at most ${quietCap} ms`,
        );
      }
      this.schedule.armRescan(loop.options.firstRescanMs ?? loop.options.intervalMs);
      const database = this.prepareDatabase();
      this.watching = this.watchDirectory();
      this.booted = Promise.all([database, this.watching]).then(() => {
        if (!loop.stopping) loop.lease.start();
      });
    }
    return this.watching;
  }

  /** Shutdown started: the backoff sleeps of failing steps end at once, and no step is tried again. */
  stop(): void {
    this.stopRequested();
  }

  /** False while a start-up step fails and is being retried. */
  get healthy(): boolean {
    return this.failing.size === 0;
  }

  /** What keeps the loop from running, one phrase per failing step; empty when healthy. */
  get problems(): string[] {
    return [...this.failing].map(
      ([step, problem]) => `${step === 'watch' ? 'cannot watch the auth directory' : 'cannot prepare the database'}: ${problem}`,
    );
  }

  /** True while the directory cannot be watched: missing since start, or watching it fails and is retried. */
  get watchStalled(): boolean {
    return this.waitingForDirectory || this.failing.has('watch');
  }

  /** False while preparing the database (migrating, reading the stored state) fails and is retried. */
  get databaseHealthy(): boolean {
    return !this.failing.has('database');
  }

  /** A start-up step failed: said at error level the first time, and the loop counts as not running. */
  stepFailed(step: StartStep, error: unknown): void {
    const problem = describeError(error);
    if (step === 'watch') this.loop.protection.watchFailingSince ??= this.loop.clock.now();
    this.loop.protection.check();
    if (this.failing.get(step) !== problem)
      this.loop.log.error(
        { step, err: problem },
        `start-up step failed, retrying: ${step === 'watch' ? 'cannot watch the auth directory' : 'database'}: ${problem}`,
      );
    this.failing.set(step, problem);
  }

  stepSucceeded(step: StartStep): void {
    if (step === 'watch') this.loop.protection.watchFailingSince = null;
    // The database's recovery is said once for all sessions by the outage log, when there is one.
    if (this.failing.delete(step))
      this.loop.log[step === 'database' && this.loop.options.outageLog ? 'debug' : 'info']({ step }, 'start-up step recovered');
  }

  /** Waits for the directory, finishes an interrupted restore in it, and starts watching; retried until it works. */
  private async watchDirectory(): Promise<void> {
    const { loop } = this;
    const backoff = new Backoff(RETRY_BACKOFF);
    while (!loop.stopping) {
      await this.waitForDirectory();
      if (loop.stopping) return;
      try {
        await recoverInterruptedRestore(loop.options.dir, loop.log);
        await loop.watcher.start();
        await loop.protection.checkLoginPlacement();
        this.markAttempted();
        return;
      } catch (error) {
        const code = (error as { code?: unknown }).code;
        if (code === 'ENOENT') continue; // removed between the wait and the start: wait again
        this.stepFailed('watch', error);
        this.markAttempted();
        await this.pause(backoff.fail());
      }
    }
  }

  private async waitForDirectory(): Promise<void> {
    const { loop } = this;
    let logged = false;
    while (!loop.stopping) {
      const info = await stat(loop.options.dir).catch(() => null);
      if (info?.isDirectory()) {
        this.waitingForDirectory = false;
        return;
      }
      if (!logged) loop.log.warn({ dir: loop.options.dir }, 'waiting for the auth directory to appear');
      logged = true;
      this.waitingForDirectory = true;
      this.markAttempted();
      await this.pause(DIR_POLL_MS);
    }
  }

  /** Migrates and reads the stored state, retrying with backoff while it fails. */
  private async prepareDatabase(): Promise<void> {
    const { loop } = this;
    const backoff = new Backoff(RETRY_BACKOFF);
    while (!loop.stopping) {
      try {
        await (loop.options.prepareSchema ?? (() => loop.store.prepare()))();
        const summary = await loop.store.summary(loop.options.sessionId);
        loop.registered = summary?.registeredJid != null;
        loop.headJid = summary?.registeredJid ?? null;
        loop.metrics.sessionRegistered.set(loop.registered ? 1 : 0);
        loop.metrics.generation.set(summary?.headGeneration ?? 0);
        loop.metrics.files.set(summary?.files ?? 0);
        loop.metrics.bytes.set(summary?.bytes ?? 0);
        this.stepSucceeded('database');
        return;
      } catch (error) {
        loop.databaseError(error, 'start');
        this.failing.set('database', describeError(error));
        await this.pause(backoff.fail());
      }
    }
  }

  /** Waits `ms`, or less if shutdown starts meanwhile. */
  private pause(ms: number): Promise<void> {
    return Promise.race([sleep(this.loop.clock, ms), this.stopSignal]);
  }
}
