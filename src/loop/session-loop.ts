// The loop that keeps one session: watch → dirty set → debounce (quiet) / max-delay → read, validate,
// retry torn → one fenced transaction → metrics. An audit every interval compares the directory with the
// head by metadata and stores what the watcher missed; held-back files and the lag measure what is not
// stored. A database outage never stops it: the dirty set is kept, attempts back off, and it catches up.
// It runs in `sidecar`, in `run`, and once per session in a keeper of many (SessionFleet). This file wires
// the parts: start-up (startup.ts), when to back up (schedule.ts), one backup pass (backup-pass.ts),
// thinning, protection (protection-state.ts), shutdown, and a session removed for good (removed.ts).
import { BackupSummary } from '../backup-summary.js';
import { type Clock, systemClock } from '../clock.js';
import type { DirtySet } from '../dirty.js';
import { LeaseKeeper } from '../lease.js';
import type { Logger } from '../log.js';
import type { SessionMetrics, SessionReadings } from '../metrics.js';
import type { Protection } from '../protection.js';
import type { HeldReason } from '../snapshot.js';
import type { Lease, SessionStore } from '../store/index.js';
import { DirectoryWatcher } from '../watcher.js';
import { backupPass } from './backup-pass.js';
import type { BackupLoop, KeptSession } from './backup-loop.js';
import { LoopContext } from './context.js';
import { leaseEvents, watchEvents } from './events.js';
import type { FlushOutcome, LoopPhase, SessionLoopOptions, ShutdownOptions } from './loop-options.js';
import type { LoopParts } from './parts.js';
import { retire, tombstone } from './removed.js';
import { audit, Schedule } from './schedule.js';
import { shutdown } from './shutdown.js';
import { StartUp } from './startup.js';
import { HistoryThinning } from './thinning.js';

export class SessionLoop implements BackupLoop, KeptSession, SessionReadings {
  /** What is changed on disk and not stored yet. */
  readonly dirty: DirtySet;
  private readonly parts: LoopParts;
  /** The loop's own summary of stored backups (null when a keeper of many sessions keeps one for all). */
  private readonly ownSummary: BackupSummary | null;

  /** `log` should carry the session; the loop and the lease add their own component names. */
  constructor(store: SessionStore, options: SessionLoopOptions, metrics: SessionMetrics, log: Logger, clock: Clock = systemClock) {
    const parts = () => this.parts;
    const { sessionId, owner, leaseTtlMs } = options;
    const lease = new LeaseKeeper(
      store,
      sessionId,
      owner,
      leaseTtlMs,
      clock,
      log.child({ component: 'lease' }),
      leaseEvents(parts),
      options.renewals ?? null,
      options.attempts ?? null,
    );
    const watch = { mode: options.watchMode, pollIntervalMs: options.pollIntervalMs };
    const watcher = new DirectoryWatcher(options.dir, watch, watchEvents(parts), clock);
    const loopLog = log.child({ component: 'sidecar' });
    this.ownSummary = options.summary ? null : new BackupSummary(loopLog, clock);
    const loop = new LoopContext(
      options,
      store,
      metrics,
      loopLog,
      clock,
      lease,
      watcher,
      () => startup.watchStalled,
      options.summary ?? this.ownSummary!,
    );
    const thinning = new HistoryThinning(loop);
    const schedule = new Schedule(loop, () => backupPass(loop, () => thinning.soon()));
    const startup = new StartUp(loop, schedule);
    this.parts = { loop, startup, schedule, thinning };
    this.dirty = loop.dirty;
  }

  /** Age of the oldest difference between the directory and the head, seconds; 0 when everything is stored (ProtectionState.lagSeconds). */
  lagSeconds(): number {
    return this.parts.loop.protection.lagSeconds();
  }

  /** Files that differ from the head and that no backup can store now, by reason. */
  heldBack(): Record<HeldReason, number> {
    return this.parts.loop.held.counts();
  }

  /**
   * Whether the session is protected now (SPEC "Protection"), with the reasons when it is not and since
   * when. Measured at each call; a change is logged once.
   */
  protection(): Protection {
    return this.parts.loop.protection.measure();
  }

  /**
   * Whether the backup loop is running (/healthz, docs/http-api.md): false while a start-up step — watching the
   * directory, or migrating and reading the stored state — fails and is being retried.
   */
  get healthy(): boolean {
    return this.parts.startup.healthy;
  }

  /** What keeps the loop from running, one phrase per failing step; empty when healthy. */
  get problems(): string[] {
    return this.parts.startup.problems;
  }

  /** How the directory is watched now: native, polling, or null (not yet, or it is gone). */
  get watchBackend(): 'native' | 'polling' | null {
    return this.parts.loop.watcher.backend;
  }

  /** The session this loop keeps: what a request that names none means. */
  get defaultSession(): string {
    return this.parts.loop.options.sessionId;
  }

  /** This loop, for its own session; null for any other. */
  loopFor(sessionId: string): SessionLoop | null {
    return sessionId === this.parts.loop.options.sessionId ? this : null;
  }

  /**
   * Settles once the directory is watched, or once it was found missing or could not be watched (the
   * loop keeps trying either way). A keeper of many sessions waits for this, not for start(), so that one
   * session that cannot be watched does not hold the others' start (or a platform's, in `run`) for ever.
   */
  attempted(): Promise<void> {
    return this.parts.startup.firstAttempt;
  }

  /** True while the directory cannot be watched: missing since start, or watching it fails and is retried. */
  get watchStalled(): boolean {
    return this.parts.startup.watchStalled;
  }

  /** When the watcher last reported a change (the loop's clock, ms; 0 before any). */
  get lastChangeAt(): number {
    return this.parts.loop.lastEventAt;
  }

  /** False while preparing the database (migrating, reading the stored state) fails and is retried. */
  get databaseHealthy(): boolean {
    return this.parts.startup.databaseHealthy;
  }

  /** Where the loop is in its life (see LoopPhase). */
  get phase(): LoopPhase {
    return this.parts.loop.phase;
  }

  /** True once the directory was compared with what is stored (or another process is the writer), until shutdown. */
  get ready(): boolean {
    return this.parts.loop.phase === 'ready';
  }

  /** The lease while this process is the session's writer, else null. */
  /** See BackupLoop.allProtected: this process writes the session, and it is protected. */
  allProtected(): boolean {
    return this.ready && this.healthy && this.writerLease !== null && this.protection().protected;
  }

  get writerLease(): Lease | null {
    return this.parts.loop.lease.current;
  }

  /**
   * Starts the loop. Resolves once the directory is being watched (so no later write is missed);
   * the database side starts at once and in parallel, whatever the directory does, so that the
   * session API works for every session. Never rejects: failing steps are retried with backoff
   * (and show in `healthy`), and the periodic rescan is armed whatever happens.
   */
  start(): Promise<void> {
    if (this.parts.loop.phase === 'new') this.ownSummary?.start();
    return this.parts.startup.start();
  }

  /**
   * The audit (SPEC "Protection"): compares the directory with the head by metadata and marks every
   * difference dirty, so that the next backup reads just those files (see schedule.ts).
   */
  audit(): Promise<void> {
    return audit(this.parts.loop);
  }

  /** Runs one backup now (or joins the one in progress). */
  flush(): Promise<FlushOutcome> {
    return this.parts.schedule.flush();
  }

  /** Reads the whole directory and stores what differs, now (after any backup in progress). */
  async backupNow(): Promise<FlushOutcome> {
    const { loop, schedule } = this.parts;
    await schedule.flushing;
    loop.next.rescanDue = true;
    return schedule.flush();
  }

  /**
   * A write from elsewhere (the session API) just changed the head of the session this loop keeps: the
   * directory is the truth, so it is read and stored at once. Unless this loop was refusing the directory
   * (a stale disk it met at start), the directory is the live bot's and storing it over what was posted is
   * no rollback, whatever the posted files were (older versions, higher counters): the check is skipped.
   */
  async reclaimHead(): Promise<FlushOutcome> {
    const { loop, schedule } = this.parts;
    const live = loop.protection.refusedSince === null && loop.phase === 'ready';
    await schedule.flushing;
    loop.next.reclaim = live;
    loop.next.rescanDue = true;
    return schedule.flush();
  }

  /**
   * Resolves once no backup, history thinning or lease attempt is in flight: joins those in progress,
   * starts none, never rejects. For callers that move the loop's clock themselves (tests on a manual
   * clock), so that the work a timer started ends before the clock moves on.
   */
  async whenIdle(): Promise<void> {
    const { loop, schedule, thinning } = this.parts;
    for (;;) {
      const leasing = loop.lease.idle();
      await Promise.all([schedule.flushing, thinning.running, leasing].map((work) => work?.catch(() => undefined)));
      // A backup that ended may have started thinning: wait for that too.
      if (schedule.flushing === null && thinning.running === null && loop.lease.idle() === leasing) return;
    }
  }

  /**
   * Stops: waits for `quietMs` without changes (the bot may still be writing; at most half of
   * `shutdownTimeoutMs`), then a final full backup, retried until `options.deadline` (default:
   * `shutdownTimeoutMs` from now; the loop's clock, ms), then releases the lease (given at least
   * `options.releaseGraceMs`, default 1 s, even past the deadline). With `options.skipWhenClean` (many
   * sessions) a session with nothing pending — nothing dirty, its last full comparison stored, watched
   * natively, this process the writer — skips the final read. Returns whether everything in the directory
   * is stored (or another process is the writer).
   */
  shutdown(quietMs = this.parts.loop.options.shutdownQuietMs, options: ShutdownOptions = {}): Promise<boolean> {
    // Said before the final backup (which is said at info itself): no summary timer outlives the loop.
    this.ownSummary?.stop();
    return shutdown(this.parts, quietMs, options);
  }

  /**
   * The directory was removed for good (many sessions, docs/many-sessions.md): after any backup in
   * flight, records a tombstone generation under this process's lease (taking it if it is free).
   * Returns 'written' (or it was one already), 'standby' when another process is the writer (that one
   * records it), 'failure' when the database failed (try again later). The loop keeps running.
   */
  tombstone(): Promise<'written' | 'standby' | 'failure'> {
    return tombstone(this.parts);
  }

  /**
   * Stops without a final backup, for a session whose directory is gone for good and recorded as removed
   * (many sessions): waits for work in flight (within the shutdown timeout), stops watching, releases the lease.
   */
  retire(): Promise<void> {
    this.ownSummary?.stop();
    return retire(this.parts);
  }
}
