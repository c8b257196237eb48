// The sidecar loop: watch → dirty set → debounce (quiet) / max-delay → read, validate, retry torn →
// one fenced transaction → metrics. An audit every interval (audit.ts) compares the directory with the
// head by metadata and stores what the watcher missed; held-back files and the lag measure what is not stored.
// A database outage never stops it: the dirty set is kept, attempts back off, and it catches up.
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Semaphore } from 'async-mutex';
import { auditDirectory, StampBook, wallNowNs } from './audit.js';
import { sleep, systemClock, valueWithin, within, type Clock } from './clock.js';
import type { BackupLoop } from './backup-loop.js';
import { CREDS_FILE, parseCreds } from './creds.js';
import { describeError } from './db/errors.js';
import { migrate } from './db/migrate.js';
import type { Database } from './db/pool.js';
import { DirtySet, dueAt } from './dirty.js';
import { IntegrityError, LeaseLostError } from './errors.js';
import { LeaseKeeper } from './lease.js';
import type { LeaseRenewals } from './lease-renewals.js';
import { HeldBackFiles } from './held-back.js';
import type { Logger } from './log.js';
import { loginElsewhereAdvice, loginsBelowInstead } from './login-search.js';
import type { SessionMetrics, SessionReadings } from './metrics.js';
import { BACKUP_ALLOWANCE_MS, type Protection, ProtectionTracker } from './protection.js';
import { recoverInterruptedRestore } from './restore.js';
import type { RetentionPolicy } from './store/retention.js';
import { Backoff, type BackoffPolicy } from './retry.js';
import { type HeldReason, readNamed, readSnapshot, type Snapshot } from './snapshot.js';
import type { BackupResult, Lease, SessionStore } from './store/index.js';
import { DIR_POLL_MS, DirectoryWatcher, WatchStartError, type WatchMode } from './watcher.js';

/** Pauses between failed attempts (backups, start-up steps): 250 ms, doubling, at most 30 s. */
export const RETRY_BACKOFF: BackoffPolicy = { initialMs: 250, factor: 2, maxMs: 30_000 };
/**
 * Pauses before reading held-back files again (torn, unreadable, too large): 1 s, doubling, at most 30 s.
 * Soon enough that a file that becomes readable (descriptors freed, permissions fixed) is stored within
 * seconds; slow enough that a file that stays unreadable costs little.
 */
export const HELD_RETRY_BACKOFF: BackoffPolicy = { initialMs: 1_000, factor: 2, maxMs: 30_000 };
/** How often the history is thinned to the retention schedule (after a backup that wrote), ms. */
export const THIN_EVERY_MS = 60_000;
/** Order in the backup slots (many sessions): changes waiting to be stored go before rescans, thinning and tombstones. */
const SLOT_PRIORITY = { changes: 1, housekeeping: 0 } as const;
/** Time still given to releasing the lease when the shutdown deadline has passed, ms. */
const RELEASE_GRACE_MS = 1_000;

export interface SidecarOptions {
  sessionId: string;
  dir: string;
  /** Lease owner id: host:pid. */
  owner: string;
  /** The retention schedule, applied off the backup path at most every THIN_EVERY_MS. */
  retention: RetentionPolicy;
  allowReplace: boolean;
  debounceMs: number;
  maxDelayMs: number;
  intervalMs: number;
  leaseTtlMs: number;
  shutdownQuietMs: number;
  shutdownTimeoutMs: number;
  /** `--watch` (README "Configuration"): native, poll, or auto (native, polling when native watching is unavailable). */
  watchMode: WatchMode;
  /** Polling period when polling, ms. */
  pollIntervalMs: number;
  /** Creates or upgrades the schema; default: migrate(db). A keeper of many sessions does it once for all. */
  prepareSchema?: () => Promise<void>;
  /** Renew this session's lease together with the process's others (many sessions); default: on its own. */
  renewals?: LeaseRenewals | null;
  /**
   * When the first interval rescan comes, ms (default: intervalMs). Many sessions spread theirs over the
   * interval, so that a thousand full rescans do not all fall due at the same instant.
   */
  firstRescanMs?: number;
  /** Backups (and history thinning, tombstones) of the process's sessions that may run at once (many sessions: bounds open files); default: no bound. */
  backupSlots?: Semaphore | null;
}

/** The start-up steps whose failure is retried and shown as unhealthy (/healthz 503) until it succeeds. */
type StartStep = 'watch' | 'database';

/**
 * Where the sidecar is in its life; it only moves forward:
 * - `new`: constructed, start() not called yet;
 * - `starting`: watching the directory and preparing the database (retried while they fail), and the
 *   directory not yet compared with what is stored;
 * - `ready`: the directory was compared with what is stored, or another process is the writer (/readyz 200);
 * - `stopping`: shutdown() was called: nothing new is scheduled, the final backup is being made;
 * - `stopped`: shutdown() has returned (or was called before start(): nothing was ever watched).
 */
export type SidecarPhase = 'new' | 'starting' | 'ready' | 'stopping' | 'stopped';

export type FlushOutcome = BackupResult['kind'] | 'failure' | 'standby' | 'clean';

/** How Sidecar.shutdown bounds and shortens its work (a keeper of many sessions stops them together). */
export interface ShutdownOptions {
  /** When everything must be over, the loop's clock, ms; default shutdownTimeoutMs from now. */
  deadline?: number;
  /** Time still given to releasing the lease once the deadline has passed, ms; default 1 s. */
  releaseGraceMs?: number;
  /** Skip the final read when nothing is pending (see shutdown). */
  skipWhenClean?: boolean;
}

export class Sidecar implements BackupLoop, SessionReadings {
  readonly dirty = new DirtySet();
  /** What the head holds, by file metadata: what the audit compares the directory with. */
  private readonly book = new StampBook();
  /** Files that differ from the head and that no backup could store. */
  private readonly held: HeldBackFiles;
  private readonly heldBackoff = new Backoff(HELD_RETRY_BACKOFF);
  /** When held-back files are read again (the loop's clock, ms). */
  private heldRetryAt = 0;
  /** Since when the directory itself cannot be read (EACCES, EMFILE…), null while it can. */
  private directoryUnreadableSince: number | null = null;
  /** Since when the loop runs without having compared the directory with the head; null once it has. */
  private uncomparedSince: number | null = null;
  /** The next backup stores the directory over a write from elsewhere, without the never-backwards check. */
  private reclaimNext = false;
  /** Since when the guard refuses what the directory holds (it differs from the head and is not stored), else null. */
  private refusedSince: number | null = null;
  /** A login found below the directory while it has none itself (relative path), else null. */
  private loginElsewhere: string | null = null;
  private readonly protectionTracker: ProtectionTracker;
  private cancelProtectionCheck: (() => void) | null = null;
  /** The protection last recorded in the database under the current lease; null: record it at the next check. */
  private protectionRecorded: Protection | null = null;
  private recordingProtection = false;
  private readonly lease: LeaseKeeper;
  private readonly watcher: DirectoryWatcher;
  private readonly backoff = new Backoff(RETRY_BACKOFF);
  private retryAt = 0;
  private cancelFlush: (() => void) | null = null;
  private cancelRescan: (() => void) | null = null;
  private flushing: Promise<FlushOutcome> | null = null;
  private lifecycle: SidecarPhase = 'new';
  // What the next backup must read, and when: requests that come from any phase (start, an interval, a
  // takeover, watcher trouble, a refusal, a pairing, the final backup), so they are flags of their own.
  /** The next backup reads the whole directory, and is due now (start, interval, takeover, watcher trouble). */
  private rescanDue = true;
  /** The next backup, whenever it comes, reads the whole directory (after a refusal). */
  private fullNext = false;
  /** Back up without waiting for the debounce (creds.json was just paired). */
  private urgent = false;
  private registered = false;
  private lastEventAt = 0;
  /** Settles when start-up is over (database prepared, directory watched, lease keeper started). */
  private booted: Promise<void> | null = null;
  /** Settles once the directory is watched: what start() resolves with. */
  private watching: Promise<void> = Promise.resolve();
  private markAttempted!: () => void;
  /** Settles once the directory is watched, or found missing, or watching it failed once (see `attempted`). */
  private readonly firstAttempt = new Promise<void>((resolve) => (this.markAttempted = resolve));
  /** True while the directory is missing at start and waited for. */
  private waitingForDirectory = false;
  /** When the directory stopped being watched (it was removed), for the lag; null while watched. */
  private unwatchedSince: number | null = null;
  /** Start-up steps failing right now, with what went wrong. */
  private readonly failing = new Map<StartStep, string>();
  /**
   * Since when the directory cannot be watched (a start that fails and is retried), null while it can:
   * nothing in it is being stored, so the lag grows (with many sessions, this is how one such session shows).
   */
  private watchFailingSince: number | null = null;
  private stopRequested!: () => void;
  /** Settles when shutdown starts, so that start-up backoff sleeps end at once. */
  private readonly stopSignal = new Promise<void>((resolve) => (this.stopRequested = resolve));
  private thinning: Promise<void> | null = null;
  private lastThinAt = -Infinity;
  private sweepAllNext = true;

  private readonly log: Logger;

  /** `log` should carry the session; the loop and the lease add their own component names. */
  constructor(
    private readonly store: SessionStore,
    private readonly db: Database,
    private readonly options: SidecarOptions,
    private readonly metrics: SessionMetrics,
    log: Logger,
    private readonly clock: Clock = systemClock,
  ) {
    this.log = log.child({ component: 'sidecar' });
    this.held = new HeldBackFiles(this.log);
    this.protectionTracker = new ProtectionTracker(this.log, options.maxDelayMs + BACKUP_ALLOWANCE_MS, () => clock.wall());
    this.lease = new LeaseKeeper(
      store,
      options.sessionId,
      options.owner,
      options.leaseTtlMs,
      clock,
      log.child({ component: 'lease' }),
      {
        acquired: () => {
          metrics.leaseHeld.set(1);
          this.protectionRecorded = null;
          this.reclaimNext = false; // another writer may have stored since: the directory is checked as any other
          this.rescanDue = true; // what the previous writer stored may differ from this directory
          this.schedule();
        },
        lost: () => {
          metrics.leaseHeld.set(0);
        },
        standby: () => this.compared(),
        databaseError: (error) => this.databaseError(error, 'lease'),
      },
      options.renewals ?? null,
    );
    this.watcher = new DirectoryWatcher(
      options.dir,
      { mode: options.watchMode, pollIntervalMs: options.pollIntervalMs },
      {
        changed: (name) => this.onChange(name),
        watching: (backend) => {
          const again = this.unwatchedSince !== null;
          this.log.info(
            { dir: options.dir, watch: backend },
            again ? 'watching the auth directory again; backing it up' : 'watching the auth directory',
          );
          // unwatchedSince stays until the rescan below has stored the directory: until then the lag grows.
          this.stepSucceeded('watch');
          metrics.watchPolling.set(backend === 'polling' ? 1 : 0);
          this.rescanDue = true;
          this.schedule();
        },
        lost: (reason) => {
          this.unwatchedSince ??= this.clock.now();
          this.checkProtection();
          if (!this.stopping && reason === 'removed')
            this.log.warn(
              { dir: options.dir },
              'the auth directory was removed or replaced: it is backed up again as soon as it reappears',
            );
        },
        fellBack: (error) => {
          metrics.watchPolling.set(1);
          this.log.warn(
            { err: describeError(error), pollIntervalMs: options.pollIntervalMs },
            `native watching is unavailable (${describeError(error)}): polling the directory every ${options.pollIntervalMs} ms instead. ` +
              'Raise fs.inotify.max_user_instances / fs.inotify.max_user_watches on ' +
              'the node to watch natively, or set --watch poll to say polling is intended',
          );
        },
        error: (error) => {
          if (error instanceof WatchStartError) return this.stepFailed('watch', error);
          this.log.warn({ err: describeError(error) }, 'watcher error: falling back to a full rescan');
          this.rescanDue = true;
          void this.checkWatcher();
          this.schedule();
        },
      },
      clock,
    );
  }

  /**
   * Age of the oldest difference between the directory and the head, seconds (SPEC "Protection"): a change
   * not stored yet (seen by the watcher or by the audit), a held-back file, a directory that cannot be
   * read, watched or has not been compared yet since start (a removed directory may be recreated at any
   * moment). 0 when everything is stored.
   */
  lagSeconds(): number {
    const since = [
      this.dirty.oldestSince(),
      this.held.oldestSince(),
      this.unwatchedSince,
      this.watchFailingSince,
      this.directoryUnreadableSince,
      this.uncomparedSince,
      this.refusedSince,
    ].filter((at): at is number => at !== null);
    return since.length === 0 ? 0 : Math.max(0, (this.clock.now() - Math.min(...since)) / 1000);
  }

  /** Files that differ from the head and that no backup can store now, by reason. */
  heldBack(): Record<HeldReason, number> {
    return this.held.counts();
  }

  /**
   * Whether the session is protected now (SPEC "Protection"), with the reasons when it is not and since
   * when. Measured at each call; a change is logged once.
   */
  protection(): Protection {
    const allowance = this.clock.now() - this.options.maxDelayMs - BACKUP_ALLOWANCE_MS;
    const held = this.held.counts();
    return this.protectionTracker.update({
      lagSeconds: this.lagSeconds(),
      notWatched: this.watchStalled || this.unwatchedSince !== null,
      directoryUnreadable: this.directoryUnreadableSince !== null,
      held: { ...held, torn: this.held.countOlderThan('torn', allowance) },
      loginElsewhere: this.loginElsewhere,
    });
  }

  /**
   * Whether the backup loop is running (/healthz, docs/http-api.md): false while a start-up step — watching the
   * directory, or migrating and reading the stored state — fails and is being retried.
   */
  get healthy(): boolean {
    return this.failing.size === 0;
  }

  /** What keeps the loop from running, one phrase per failing step; empty when healthy. */
  get problems(): string[] {
    return [...this.failing].map(
      ([step, problem]) => `${step === 'watch' ? 'cannot watch the auth directory' : 'cannot prepare the database'}: ${problem}`,
    );
  }

  /** How the directory is watched now: native, polling, or null (not yet, or it is gone). */
  get watchBackend(): 'native' | 'polling' | null {
    return this.watcher.backend;
  }

  /** The session this loop keeps: what a request that names none means. */
  get defaultSession(): string {
    return this.options.sessionId;
  }

  /** This loop, for its own session; null for any other. */
  sidecarFor(sessionId: string): Sidecar | null {
    return sessionId === this.options.sessionId ? this : null;
  }

  /**
   * Settles once the directory is watched, or once it was found missing or could not be watched (the
   * loop keeps trying either way). A keeper of many sessions waits for this, not for start(), so that one
   * session that cannot be watched does not hold the others' start (or a platform's, in `run`) for ever.
   */
  attempted(): Promise<void> {
    return this.firstAttempt;
  }

  /** True while the directory cannot be watched: missing since start, or watching it fails and is retried. */
  get watchStalled(): boolean {
    return this.waitingForDirectory || this.failing.has('watch');
  }

  /** When the watcher last reported a change (the loop's clock, ms; 0 before any). */
  get lastChangeAt(): number {
    return this.lastEventAt;
  }

  /** False while preparing the database (migrating, reading the stored state) fails and is retried. */
  get databaseHealthy(): boolean {
    return !this.failing.has('database');
  }

  /** Where the sidecar is in its life (see SidecarPhase). */
  get phase(): SidecarPhase {
    return this.lifecycle;
  }

  /** True once the directory was compared with what is stored (or another process is the writer), until shutdown. */
  get ready(): boolean {
    return this.lifecycle === 'ready';
  }

  /** True from the moment shutdown() is called. */
  private get stopping(): boolean {
    return this.lifecycle === 'stopping' || this.lifecycle === 'stopped';
  }

  /** The directory was compared with what is stored, or another process is the writer: start-up is over. */
  private compared(): void {
    this.uncomparedSince = null;
    if (this.lifecycle === 'starting') this.lifecycle = 'ready';
  }

  /**
   * Starts the loop. Resolves once the directory is being watched (so no later write is missed);
   * the database side starts at once and in parallel, whatever the directory does, so that the
   * session API works for every session. Never rejects: failing steps are retried with backoff
   * (and show in `healthy`), and the periodic rescan is armed whatever happens.
   */
  start(): Promise<void> {
    if (this.lifecycle === 'new') {
      this.lifecycle = 'starting';
      this.uncomparedSince = this.clock.now();
      const quietCap = this.options.shutdownTimeoutMs / 2;
      // Said once up front, not silently at shutdown: half of the stop budget is kept for the final backup.
      if (this.options.shutdownQuietMs > quietCap) {
        this.log.warn(
          { shutdownQuietMs: this.options.shutdownQuietMs, shutdownTimeoutMs: this.options.shutdownTimeoutMs, quietWaitMs: quietCap },
          `--shutdown-quiet is more than half of --shutdown-timeout: the quiet wait at shutdown will be at most ${quietCap} ms`,
        );
      }
      this.armRescan(this.options.firstRescanMs ?? this.options.intervalMs);
      const database = this.prepareDatabase();
      this.watching = this.watchDirectory();
      this.booted = Promise.all([database, this.watching]).then(() => {
        if (!this.stopping) this.lease.start();
      });
    }
    return this.watching;
  }

  /** Waits for the directory, finishes an interrupted restore in it, and starts watching; retried until it works. */
  private async watchDirectory(): Promise<void> {
    const backoff = new Backoff(RETRY_BACKOFF);
    while (!this.stopping) {
      await this.waitForDirectory();
      if (this.stopping) return;
      try {
        await recoverInterruptedRestore(this.options.dir, this.log);
        await this.watcher.start();
        await this.checkLoginPlacement();
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
    let logged = false;
    while (!this.stopping) {
      const info = await stat(this.options.dir).catch(() => null);
      if (info?.isDirectory()) {
        this.waitingForDirectory = false;
        return;
      }
      if (!logged) this.log.warn({ dir: this.options.dir }, 'waiting for the auth directory to appear');
      logged = true;
      this.waitingForDirectory = true;
      this.markAttempted();
      await this.pause(DIR_POLL_MS);
    }
  }

  /** Migrates and reads the stored state, retrying with backoff while it fails. */
  private async prepareDatabase(): Promise<void> {
    const backoff = new Backoff(RETRY_BACKOFF);
    while (!this.stopping) {
      try {
        await (this.options.prepareSchema ?? (() => migrate(this.db)))();
        const summary = await this.store.summary(this.options.sessionId);
        this.registered = summary?.registeredJid != null;
        this.metrics.sessionRegistered.set(this.registered ? 1 : 0);
        this.metrics.generation.set(summary?.headGeneration ?? 0);
        this.metrics.files.set(summary?.files ?? 0);
        this.metrics.bytes.set(summary?.bytes ?? 0);
        this.stepSucceeded('database');
        return;
      } catch (error) {
        this.databaseError(error, 'start');
        this.failing.set('database', describeError(error));
        await this.pause(backoff.fail());
      }
    }
  }

  /** Waits `ms`, or less if shutdown starts meanwhile. */
  private pause(ms: number): Promise<void> {
    return Promise.race([sleep(this.clock, ms), this.stopSignal]);
  }

  /** A start-up step failed: said at error level the first time, and the loop counts as not running. */
  private stepFailed(step: StartStep, error: unknown): void {
    const problem = describeError(error);
    if (step === 'watch') this.watchFailingSince ??= this.clock.now();
    this.checkProtection();
    if (this.failing.get(step) !== problem)
      this.log.error(
        { step, err: problem },
        `start-up step failed, retrying: ${step === 'watch' ? 'cannot watch the auth directory' : 'database'}: ${problem}`,
      );
    this.failing.set(step, problem);
  }

  private stepSucceeded(step: StartStep): void {
    if (step === 'watch') this.watchFailingSince = null;
    if (this.failing.delete(step)) this.log.info({ step }, 'start-up step recovered');
  }

  /** Arms the periodic audit (every --interval, independent of watch events). */
  private armRescan(ms = this.options.intervalMs): void {
    this.cancelRescan = this.clock.setTimer(() => {
      void this.checkWatcher()
        .then(() => this.audit())
        .finally(() => {
          this.schedule();
          if (!this.stopping) this.armRescan();
        });
    }, ms);
  }

  /**
   * The audit (SPEC "Protection"): compares the directory with the head by metadata and marks every
   * difference dirty, so that the next backup reads just those files. Without a stored whole comparison to
   * compare with (start, a new writer, a refusal, a directory not watched) it asks for a full read instead.
   */
  async audit(): Promise<void> {
    if (this.stopping) return;
    await this.checkLoginPlacement();
    if (!this.book.primed || this.rescanDue || this.fullNext || !this.lease.current || this.watcher.backend === null) {
      this.rescanDue = true;
      return;
    }
    try {
      const result = await auditDirectory(this.options.dir, this.book);
      this.directoryRead();
      const now = this.clock.now();
      for (const name of result.differ) this.dirty.mark(name, now);
      if (result.differ.length > 0)
        this.log.debug({ files: result.differ.length, checked: result.files }, 'audit: files differ from the head');
    } catch (error) {
      this.directoryUnreadable(error);
    }
  }

  /**
   * A configuration mistake the keeper can see (SPEC "Protection"): no creds.json in the directory while a
   * directory below it holds a login (a bot calling useMultiFileAuthState(`auth_info/${id}`)). Nothing of
   * that login is kept: the session is not protected (login_elsewhere), said once with the flag to use.
   */
  private async checkLoginPlacement(): Promise<void> {
    const found = await loginsBelowInstead(this.options.dir).catch(() => []);
    const where = found.length > 0 ? found.join(', ') : null;
    if (where !== null && where !== this.loginElsewhere)
      this.log.warn({ dir: this.options.dir, found }, loginElsewhereAdvice(this.options.dir, found));
    else if (where === null && this.loginElsewhere !== null)
      this.log.info({ dir: this.options.dir }, 'the auth directory holds a creds.json now: no login below it is left unkept');
    this.loginElsewhere = where;
  }

  /** The directory could be read (again). */
  private directoryRead(): void {
    if (this.directoryUnreadableSince === null) return;
    this.directoryUnreadableSince = null;
    this.log.info({ dir: this.options.dir }, 'the auth directory can be read again');
  }

  /**
   * Reading the directory itself failed. Gone (ENOENT): the watcher follows it. Anything else (EACCES,
   * EMFILE…): nothing in it can be stored — a failure, shown in the lag and protection, said once.
   */
  private directoryUnreadable(error: unknown): void {
    const code = ((error as { cause?: { code?: unknown } }).cause ?? (error as { code?: unknown }))?.code;
    void this.checkWatcher();
    if (code === 'ENOENT' || code === 'ENOTDIR') return;
    this.metrics.backups.inc({ result: 'failure' });
    if (this.directoryUnreadableSince !== null) return;
    this.directoryUnreadableSince = this.clock.now();
    this.log.error(
      { dir: this.options.dir, err: describeError(error) },
      `cannot read the auth directory: ${describeError(error)}; nothing in it is stored until it can be read. ` +
        "Give the keeper read and search access (run it with the bot's uid or group, or Kubernetes securityContext.fsGroup); retrying",
    );
  }

  /** A directory deleted and recreated (a bot that logged out) is a new inode: watch the new one. */
  private async checkWatcher(): Promise<void> {
    if (this.stopping || this.watcher.backend === null || (await this.watcher.intact())) return;
    void this.watcher.follow(); // `watching` then asks for the rescan
  }

  private onChange(name: string): void {
    const now = this.clock.now();
    this.lastEventAt = now;
    this.dirty.mark(name, now);
    if (name === CREDS_FILE && !this.registered) void this.checkPairing();
    this.schedule();
  }

  /** A QR scan just happened when creds.json gains `me`: that backup must not wait. */
  private async checkPairing(): Promise<void> {
    const text = await readFile(path.join(this.options.dir, CREDS_FILE), 'utf8').catch(() => null);
    if (text !== null && parseCreds(text)?.registeredJid) {
      this.log.info('creds.json was just paired: backing up at once');
      this.urgent = true;
      this.schedule();
    }
  }

  /**
   * Measures protection now. A change is recorded in the database (so that `status` in another process
   * shows it) while this process is the writer; while a difference is pending and still within the limit,
   * one more check is armed for the moment it would pass it, so that a lag is reported when it happens,
   * not at the next event.
   */
  private checkProtection(): void {
    this.cancelProtectionCheck?.();
    this.cancelProtectionCheck = null;
    const state = this.protection();
    if (state !== this.protectionRecorded) void this.recordProtection(state);
    if (this.stopping || !state.protected) return;
    const lagMs = this.lagSeconds() * 1000;
    if (lagMs === 0 && this.held.size === 0) return;
    const wait = Math.max(1, this.options.maxDelayMs + BACKUP_ALLOWANCE_MS - lagMs + 1);
    this.cancelProtectionCheck = this.clock.setTimer(() => {
      this.cancelProtectionCheck = null;
      this.checkProtection();
    }, wait);
  }

  /** Records `state` under the current lease; one write at a time, the newest state last. */
  private async recordProtection(state: Protection): Promise<void> {
    const lease = this.lease.current;
    if (!lease || this.recordingProtection) return;
    this.recordingProtection = true;
    try {
      if (await this.store.recordProtection(this.options.sessionId, lease, state)) this.protectionRecorded = state;
    } catch (error) {
      this.databaseError(error, 'recording protection');
      return;
    } finally {
      this.recordingProtection = false;
    }
    const now = this.protectionTracker.current;
    if (now !== this.protectionRecorded && !this.stopping) void this.recordProtection(now);
  }

  /** Sets the one timer for the next backup, if one is due and we are the writer. */
  private schedule(): void {
    this.checkProtection();
    if (this.stopping) return;
    this.cancelFlush?.();
    this.cancelFlush = null;
    // Nothing is read while the directory is not watched: it is missing, and a rescan follows its return.
    if (this.flushing || !this.lease.current || this.watcher.backend === null) return;
    const now = this.clock.now();
    let at = this.rescanDue || (this.urgent && this.dirty.size > 0) ? now : dueAt(this.dirty, this.options);
    // Held-back files are read again on their own backoff, not on every change of another file.
    if (this.held.size > 0) at = at === null ? this.heldRetryAt : Math.min(at, this.heldRetryAt);
    if (at === null) return;
    at = Math.max(at, this.retryAt);
    this.cancelFlush = this.clock.setTimer(() => void this.flush(), at - now);
  }

  /** The lease while this process is the session's writer, else null. */
  get writerLease(): Lease | null {
    return this.lease.current;
  }

  /** Reads the whole directory and stores what differs, now (after any backup in progress). */
  async backupNow(): Promise<FlushOutcome> {
    await this.flushing;
    this.rescanDue = true;
    return this.flush();
  }

  /**
   * A write from elsewhere (the session API) just changed the head of the session this loop keeps: the
   * directory is the truth, so it is read and stored at once. Unless this loop was refusing the directory
   * (a stale disk it met at start), the directory is the live bot's and storing it over what was posted is
   * no rollback, whatever the posted files were (older versions, higher counters): the check is skipped.
   */
  async reclaimHead(): Promise<FlushOutcome> {
    const live = this.refusedSince === null && this.lifecycle === 'ready';
    await this.flushing;
    this.reclaimNext = live;
    this.rescanDue = true;
    return this.flush();
  }

  /**
   * The directory was removed for good (many sessions, docs/many-sessions.md): after any backup in
   * flight, records a tombstone generation under this process's lease (taking it if it is free).
   * Returns 'written' (or it was one already), 'standby' when another process is the writer (that one
   * records it), 'failure' when the database failed (try again later). The loop keeps running.
   */
  async tombstone(): Promise<'written' | 'standby' | 'failure'> {
    await this.flushing;
    // Without the lease: 'standby' only when another process really holds it (it records the tombstone);
    // a lease lost to an outage or a race is no reason to drop the session without one.
    const notWriter = async () => ((await this.otherHolder()) ? 'standby' : 'failure');
    const lease = this.lease.current ?? (await this.lease.tryAcquire());
    if (!lease) return notWriter();
    try {
      const result = await this.bounded(() => this.store.tombstone(this.options.sessionId, lease));
      if (result.written)
        this.log.info(
          { generation: result.generation, deleted: result.deleted },
          `the session's directory stayed removed: recorded as removed (tombstone generation ${result.generation}); ` +
            'its history is kept, and restore skips it',
        );
      this.metrics.generation.set(result.generation);
      this.metrics.files.set(0);
      this.metrics.bytes.set(0);
      this.metrics.sessionRegistered.set(0);
      this.registered = false;
      return 'written';
    } catch (error) {
      if (error instanceof LeaseLostError) {
        this.lease.markLost(lease.token, error.message);
        return notWriter();
      }
      this.databaseError(error, 'tombstone');
      return 'failure';
    }
  }

  /**
   * Resolves once no backup, history thinning or lease attempt is in flight: joins those in progress,
   * starts none, never rejects. For callers that move the loop's clock themselves (tests on a manual
   * clock), so that the work a timer started ends before the clock moves on.
   */
  async whenIdle(): Promise<void> {
    for (;;) {
      const flushing = this.flushing;
      const thinning = this.thinning;
      const leasing = this.lease.idle();
      await Promise.all([flushing, thinning, leasing].map((work) => work?.catch(() => undefined)));
      // A backup that ended may have started thinning: wait for that too.
      if (this.flushing === null && this.thinning === null && this.lease.idle() === leasing) return;
    }
  }

  /** Runs one backup now (or joins the one in progress). */
  /**
   * Runs `work` in a backup slot when the process bounds them (many sessions), else at once. Higher
   * `priority` goes first: a backup of changes (the RPO) before periodic rescans and housekeeping.
   */
  private bounded<T>(work: () => Promise<T>, priority: number = SLOT_PRIORITY.housekeeping): Promise<T> {
    const slots = this.options.backupSlots;
    return slots ? slots.runExclusive(work, 1, priority) : work();
  }

  flush(): Promise<FlushOutcome> {
    const priority = this.dirty.size > 0 || this.urgent ? SLOT_PRIORITY.changes : SLOT_PRIORITY.housekeeping;
    this.flushing ??= this.bounded(() => this.backupOnce(), priority).finally(() => {
      this.flushing = null;
      this.schedule();
    });
    return this.flushing;
  }

  private async backupOnce(): Promise<FlushOutcome> {
    const lease = this.lease.current;
    if (!lease) return 'standby';
    const full = this.rescanDue || this.fullNext;
    const checkpoint = this.dirty.checkpoint();
    const names = [...new Set([...this.dirty.names(), ...this.held.names()])];
    if (!full && names.length === 0) return 'clean';
    const started = this.clock.now();
    const readStartedNs = wallNowNs();
    let snapshot: Snapshot;
    try {
      snapshot = full ? await readSnapshot(this.options.dir) : await readNamed(this.options.dir, names);
      this.directoryRead();
    } catch (error) {
      this.directoryUnreadable(error);
      this.retryAt = this.clock.now() + this.backoff.fail();
      return 'failure';
    }
    const torn = [...snapshot.held.values()].filter((held) => held.torn).length;
    if (torn > 0) this.metrics.tornReads.inc(torn);

    let result: BackupResult;
    try {
      result = await this.store.backup(this.options.sessionId, snapshot, {
        lease,
        allowReplace: this.options.allowReplace,
        reason: this.stopping ? 'shutdown' : full ? 'rescan' : 'watch',
        scope: full ? null : new Set(names),
        allowRollback: this.reclaimNext && full,
      });
      this.reclaimNext = false;
    } catch (error) {
      if (error instanceof LeaseLostError) {
        this.lease.markLost(lease.token, error.message);
        return 'standby';
      }
      this.metrics.backups.inc({ result: 'failure' });
      const delay = this.backoff.fail();
      this.retryAt = this.clock.now() + delay;
      // Stored rows under a key this process lacks (or a refused encryption change): no database fault,
      // and retrying alone will not fix it; it is said plainly while the loop keeps trying.
      if (error instanceof IntegrityError)
        this.log.error({ retryInMs: delay, dirty: this.dirty.size }, `backup not stored: ${error.message}`);
      else this.databaseError(error, 'backup', { retryInMs: delay, dirty: this.dirty.size });
      return 'failure';
    }

    const ms = this.clock.now() - started;
    this.metrics.backupDuration.observe(ms / 1000);
    this.backoff.reset();
    this.retryAt = 0;
    this.keepHeld(snapshot, full ? null : names);
    // A refusal leaves the directory different from the head: the lag keeps counting from the change.
    this.refusedSince = result.kind === 'refused' ? (this.refusedSince ?? this.dirty.oldestSince() ?? this.clock.now()) : null;
    this.dirty.clearUpTo(checkpoint);
    if (result.kind !== 'refused') {
      // What was read is the head now; what was not (deleted, held back) is not known to be.
      const absent = (full ? [...snapshot.held.keys()] : names).filter((name) => !snapshot.files.has(name));
      this.book.record(snapshot.files.values(), absent, full, readStartedNs);
    }
    if (full) {
      this.rescanDue = false;
      // A full read of a watched directory is stored: whatever happened while it was not watched is in.
      if (this.watcher.backend !== null) this.unwatchedSince = null;
    }
    this.fullNext = false;
    this.urgent = false;
    this.compared();
    // A file the keeper may not read is a failure, never a no-op (SPEC "Protection").
    const unreadable = [...snapshot.held.values()].some((held) => held.kind === 'unreadable');
    this.metrics.backups.inc({ result: unreadable && result.kind !== 'refused' ? 'failure' : result.kind });
    if (result.kind === 'refused') {
      // Nothing retries a refusal until the directory changes again; then it reads everything.
      this.fullNext = true;
      this.log.warn({ generation: result.generation }, `backup refused: ${result.reason}`);
      return 'refused';
    }
    if (!unreadable && this.held.counts().too_large === 0) this.metrics.lastBackupSuccess.set(this.clock.wall() / 1000);
    this.metrics.generation.set(result.generation);
    if (result.kind === 'success') {
      this.metrics.files.set(result.totalFiles);
      this.metrics.bytes.set(result.totalBytes);
      this.registered = result.registered;
      this.metrics.sessionRegistered.set(result.registered ? 1 : 0);
      // The lease token says which writer's lease a generation was committed under.
      this.log.info(
        { generation: result.generation, token: lease.token, files: result.changed, deleted: result.deleted, ms },
        'backup stored',
      );
      this.thinSoon();
    } else {
      this.log.debug({ generation: result.generation, ms }, 'nothing changed');
    }
    return result.kind;
  }

  /**
   * After a stored backup: files it could not store stay held (pending, retried on HELD_RETRY_BACKOFF,
   * counted in the lag from when they first differed); files it read (`scope`: the names it read, null:
   * the whole directory) and could store, or found gone, are released.
   */
  private keepHeld(snapshot: Snapshot, scope: readonly string[] | null): void {
    const now = this.clock.now();
    for (const name of scope ?? this.held.names()) if (!snapshot.held.has(name)) this.held.release(name);
    for (const [name, held] of snapshot.held) this.held.hold(name, held, this.dirty.sinceOf(name) ?? now);
    if (this.held.size === 0) {
      this.heldBackoff.reset();
      this.heldRetryAt = 0;
    } else {
      this.heldRetryAt = now + this.heldBackoff.fail();
    }
  }

  /** Thins the history in the background, off the backup path, at most every THIN_EVERY_MS. */
  private thinSoon(): void {
    const now = this.clock.now();
    if (this.thinning || this.stopping || now - this.lastThinAt < THIN_EVERY_MS) return;
    this.lastThinAt = now;
    // The first pass of a process, and the one after a failed pass, sweep the whole session: an earlier
    // pass may have been cut off (a shutdown, an outage) after deleting generations.
    const sweepAll = this.sweepAllNext;
    this.thinning = this.bounded(() => this.store.thin(this.options.sessionId, this.options.retention, { sweepAll }))
      .then((thinned) => {
        this.sweepAllNext = false;
        if (thinned.generations > 0 || thinned.files > 0)
          this.log.info({ ...thinned }, `history thinned to the retention schedule (${this.options.retention.text})`);
      })
      .catch((error) => {
        this.sweepAllNext = true;
        this.databaseError(error, 'thinning');
      })
      .finally(() => (this.thinning = null));
  }

  private databaseError(error: unknown, during: string, extra: Record<string, unknown> = {}): void {
    this.metrics.databaseErrors.inc();
    this.log.warn({ during, err: describeError(error), ...extra }, 'database error; retrying');
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
  async shutdown(quietMs = this.options.shutdownQuietMs, options: ShutdownOptions = {}): Promise<boolean> {
    const deadline = options.deadline ?? this.clock.now() + this.options.shutdownTimeoutMs;
    const releaseGraceMs = options.releaseGraceMs ?? RELEASE_GRACE_MS;
    if (!this.booted) {
      this.lifecycle = 'stopped';
      this.stopRequested();
      return true; // never started: nothing watched, nothing to store
    }
    if (this.lifecycle !== 'stopped') this.lifecycle = 'stopping';
    this.stopRequested();
    this.cancelFlush?.();
    this.cancelRescan?.();
    this.cancelProtectionCheck?.();
    const quietSince = this.clock.now();
    // A bot that never goes quiet must not use up the whole budget: half of it is kept for the final backup.
    const quietDeadline = quietSince + Math.min(this.options.shutdownTimeoutMs, deadline - quietSince) / 2;
    for (;;) {
      const quietUntil = Math.min(Math.max(this.lastEventAt, quietSince) + quietMs, quietDeadline);
      const now = this.clock.now();
      if (now >= quietUntil) break;
      await sleep(this.clock, quietUntil - now);
    }
    // Every wait below is bounded by the deadline: a black-holed database must not hold the pod past
    // its grace period (it would be SIGKILLed without releasing anything).
    const left = () => deadline - this.clock.now();
    await within(this.clock, this.booted, left());
    await within(this.clock, this.flushing, left());
    await within(this.clock, this.thinning, left());
    let stored = false;
    if (
      !(await stat(this.options.dir).then(
        (info) => info.isDirectory(),
        () => false,
      ))
    ) {
      // A bot that logged out removes its directory (and may exit): the stored login stays as it is.
      this.log.warn({ dir: this.options.dir }, 'the auth directory is gone at shutdown: nothing to store, the stored login is kept');
      stored = true;
    } else if (
      options.skipWhenClean &&
      this.lease.current &&
      this.dirty.size === 0 &&
      this.held.size === 0 &&
      !this.rescanDue &&
      !this.fullNext &&
      this.unwatchedSince === null &&
      this.watcher.backend === 'native'
    ) {
      // Polling may not have seen the newest change yet, so only a natively watched directory is trusted.
      stored = true;
    }
    while (!stored) {
      const lease = this.lease.current ?? (await valueWithin(this.clock, this.lease.tryAcquire(), left(), null));
      if (!lease && (await valueWithin(this.clock, this.otherHolder(), left(), false))) {
        stored = true; // another process is the writer; nothing here is ours to store
        break;
      }
      if (lease) {
        this.rescanDue = true;
        const outcome = await valueWithin(this.clock, this.flush(), left(), 'failure' as const);
        if (outcome === 'success' || outcome === 'noop' || outcome === 'refused') {
          stored = true; // a refusal is deliberate: the stored login is kept
          break;
        }
      }
      const now = this.clock.now();
      if (now >= deadline) break;
      await sleep(this.clock, Math.min(Math.max(this.retryAt - now, RETRY_BACKOFF.initialMs), deadline - now));
    }
    if (!stored)
      this.log.error(
        { dirty: this.dirty.size },
        'final backup did not complete before --shutdown-timeout: the newest changes are not stored',
      );
    else if (this.lease.current && this.held.size > this.held.counts().torn) {
      // Stored what could be stored; what is held back for good (unreadable, too large) is not, and the log
      // must not say otherwise. A torn leftover keeps its previous version, as every backup does.
      const held = this.held.counts();
      this.log.error(
        { held },
        `final backup left ${held.unreadable + held.too_large} file(s) held back (unreadable ${held.unreadable}, too large ${held.too_large}): ` +
          'they are not stored',
      );
      stored = false;
    }
    await this.watcher.close();
    // Releasing lets a successor start at once; if it cannot be done quickly the lease expires by itself.
    await within(this.clock, this.lease.release(), Math.max(left(), releaseGraceMs));
    this.metrics.leaseHeld.set(0);
    this.lifecycle = 'stopped';
    return stored;
  }

  /**
   * Stops without a final backup, for a session whose directory is gone for good and recorded as removed
   * (many sessions): waits for work in flight (within the shutdown timeout), stops watching, releases the lease.
   */
  async retire(): Promise<void> {
    this.stopRequested();
    this.cancelFlush?.();
    this.cancelRescan?.();
    this.cancelProtectionCheck?.();
    if (!this.booted) {
      this.lifecycle = 'stopped';
      return;
    }
    this.lifecycle = 'stopping';
    const deadline = this.clock.now() + this.options.shutdownTimeoutMs;
    const left = () => Math.max(0, deadline - this.clock.now());
    await within(this.clock, this.booted, left());
    await within(this.clock, this.flushing, left());
    await within(this.clock, this.thinning, left());
    await this.watcher.close();
    await within(this.clock, this.lease.release(), Math.max(left(), RELEASE_GRACE_MS));
    this.metrics.leaseHeld.set(0);
    this.lifecycle = 'stopped';
  }

  private async otherHolder(): Promise<boolean> {
    try {
      const holder = await this.store.leaseHolder(this.options.sessionId);
      return holder !== null && holder.owner !== this.options.owner;
    } catch {
      return false;
    }
  }
}
