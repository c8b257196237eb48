// What the parts of one session's loop share: its settings and collaborators, where it is in its life,
// and what the next backup must read and when it may run. Each part (start-up, schedule, backup pass,
// thinning, shutdown) is handed this one object instead of reaching into the others.
import { StampBook } from '../audit.js';
import type { BackupSummary } from '../backup-summary.js';
import type { Clock } from '../clock.js';
import { describeError } from '../errors.js';
import { DirtySet } from '../dirty.js';
import { HeldBackFiles } from '../held-back.js';
import type { LeaseKeeper } from '../lease.js';
import type { Logger } from '../log.js';
import type { SessionMetrics } from '../metrics.js';
import { Backoff } from '../retry.js';
import type { LoginSeen, Refusal, SessionStore } from '../store/index.js';
import type { DirectoryWatcher } from '../watcher.js';
import type { SessionEvent } from '../lifecycle-events.js';
import { HELD_RETRY_BACKOFF, type LoopPhase, RETRY_BACKOFF, type SessionLoopOptions } from './loop-options.js';
import { ProtectionState } from './protection-state.js';

/**
 * What the next backup must read, and when it may run. The requests come from any phase (start, an
 * interval, a takeover, watcher trouble, a refusal, a pairing, the final backup), so they are flags of
 * their own rather than a state of the loop.
 */
export class NextBackup {
  /** The next backup reads the whole directory, and is due now (start, interval, takeover, watcher trouble). */
  rescanDue = true;
  /** The next backup, whenever it comes, reads the whole directory (after a refusal). */
  fullNext = false;
  /** Back up without waiting for the debounce (creds.json was just paired). */
  urgent = false;
  /** The next backup stores the directory over a write from elsewhere, without the never-backwards check. */
  reclaim = false;
  /**
   * The next full comparison may first compare the directory with the head's recorded metadata
   * (store.headStamps) and read nothing when every file matches: set when the lease is acquired (start, a
   * takeover), used once (backup-pass.ts compareWithRecorded).
   */
  fromStamps = false;
  /** Pauses after failed backups (RETRY_BACKOFF). */
  readonly backoff = new Backoff(RETRY_BACKOFF);
  /** No backup before this (after a failure; the loop's clock, ms); 0: no wait. */
  retryAt = 0;
  /** Pauses between reads of held-back files (HELD_RETRY_BACKOFF). */
  readonly heldBackoff = new Backoff(HELD_RETRY_BACKOFF);
  /** When held-back files are read again (the loop's clock, ms). */
  heldRetryAt = 0;

  /** Whether the next backup reads the whole directory rather than the dirty names. */
  get full(): boolean {
    return this.rescanDue || this.fullNext;
  }
}

export class LoopContext {
  /** See LoopPhase; only moves forward. */
  phase: LoopPhase = 'new';
  /** Whether the head holds a paired login: until it does, a write of creds.json is checked for a fresh pairing. */
  registered = false;
  /** When the watcher last reported a change (the loop's clock, ms; 0 before any). */
  lastEventAt = 0;
  /**
   * What this loop watched happen to the head's paired login (BackupOptions.login): 'seen' once a backup
   * read the directory holding it, 'dropped' once creds.json or the directory went away after that; null
   * at start and after a takeover (what the keeper did not see stays guarded).
   */
  loginWatch: LoginSeen = null;
  /** The paired jid this loop last read and stored (what a logged_out event names), or null. */
  loginJid: string | null = null;
  /** The head's paired jid as the store records it at start (masked when the store is encrypted), or null. */
  headJid: string | null = null;
  /** The kind of the last refusal, so that identity_refused is told once per refusal, not per attempt. */
  lastRefusal: Refusal | null = null;
  /** The lease token of the last backup this loop stored: the first under a new lease (start, a takeover) is said at info. */
  storedUnder: number | null = null;
  /** The last backup pass was refused, or failed (one session alone): the next one stored is said at info (the recovery). */
  troubled = false;
  /** The store held no backup of the session when the lease was last acquired, and none was stored since: the next is its first. */
  headless = false;
  readonly dirty = new DirtySet();
  /** What the head holds, by file metadata: what the audit compares the directory with. */
  readonly book = new StampBook();
  /** Files that differ from the head and that no backup could store. */
  readonly held: HeldBackFiles;
  readonly next = new NextBackup();
  readonly protection: ProtectionState;

  /**
   * `log` is the loop's own (component sidecar); `summary` adds up its stored backups; `watchStalled` says
   * whether start-up cannot watch the directory.
   */
  constructor(
    readonly options: SessionLoopOptions,
    readonly store: SessionStore,
    readonly metrics: SessionMetrics,
    readonly log: Logger,
    readonly clock: Clock,
    readonly lease: LeaseKeeper,
    readonly watcher: DirectoryWatcher,
    private readonly stalled: () => boolean,
    readonly summary: BackupSummary,
  ) {
    this.held = new HeldBackFiles(log);
    this.protection = new ProtectionState(this);
  }

  /** True from the moment shutdown() (or retire()) is called. */
  get stopping(): boolean {
    return this.phase === 'stopping' || this.phase === 'stopped';
  }

  /** True while the directory cannot be watched: missing since start, or watching it fails and is retried. */
  get watchStalled(): boolean {
    return this.stalled();
  }

  /** The directory was compared with what is stored, or another process is the writer: start-up is over. */
  compared(): void {
    this.protection.uncomparedSince = null;
    if (this.phase === 'starting') this.phase = 'ready';
  }

  /** Tells the session's event (see SessionLoopOptions.onEvent). */
  emit(event: SessionEvent['event'], generation: number | null, jid: string | null = null): void {
    this.options.onEvent?.({ event, sessionId: this.options.sessionId, generation, jid, at: this.clock.wall() });
  }

  /**
   * Counts and logs a failed database call; the caller retries. In a keeper of many sessions the keeper's
   * outage log says it (once per backoff step for all sessions) and this session's line is debug.
   */
  databaseError(error: unknown, during: string, extra: Record<string, unknown> = {}): void {
    this.metrics.databaseErrors.inc();
    const { outageLog, sessionId } = this.options;
    if (!outageLog) return void this.log.warn({ during, err: describeError(error), ...extra }, 'database error; retrying');
    this.log.debug({ during, err: describeError(error), ...extra }, 'database error; retrying');
    outageLog.failed(during, error, [sessionId]);
  }

  /** Reading the directory failed: maybe it was replaced (see checkWatcher); else see ProtectionState. */
  directoryUnreadable(error: unknown): void {
    void this.checkWatcher();
    this.protection.directoryUnreadable(error);
  }

  /** A directory deleted and recreated (a bot that logged out) is a new inode: watch the new one. */
  async checkWatcher(): Promise<void> {
    if (this.stopping || this.watcher.backend === null || (await this.watcher.intact())) return;
    void this.watcher.follow(); // `watching` then asks for the rescan
  }

  /** Whether another process holds the session's lease now; false when the database cannot say. */
  async otherHolder(): Promise<boolean> {
    try {
      const holder = await this.store.leaseHolder(this.options.sessionId);
      return holder !== null && holder.owner !== this.options.owner;
    } catch {
      return false;
    }
  }
}
