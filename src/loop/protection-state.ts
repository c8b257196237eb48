// Whether one session is protected (SPEC "Protection"): since when each kind of difference between the
// directory and the head has lasted (a change not stored, a held-back file, a directory not watched, not
// readable, not compared yet, refused), the lag they add up to, and the record of it in the database.
import type { Clock } from '../clock.js';
import { describeError } from '../errors.js';
import type { DirtySet } from '../dirty.js';
import type { HeldBackFiles } from '../held-back.js';
import type { LeaseKeeper } from '../lease.js';
import type { Logger } from '../log.js';
import { loginElsewhereAdvice, loginsBelowInstead } from '../login-search.js';
import type { SessionMetrics } from '../metrics.js';
import { BACKUP_ALLOWANCE_MS, type Protection, ProtectionTracker } from '../protection.js';
import type { SessionStore } from '../store/index.js';
import type { SessionLoopOptions } from './loop-options.js';

/** What the protection of a session is measured from (the loop's shared state). */
export interface ProtectionSources {
  readonly options: Pick<SessionLoopOptions, 'sessionId' | 'dir' | 'maxDelayMs'>;
  readonly store: SessionStore;
  readonly metrics: SessionMetrics;
  readonly log: Logger;
  readonly clock: Clock;
  readonly dirty: DirtySet;
  readonly held: HeldBackFiles;
  readonly lease: LeaseKeeper;
  /** True from the moment shutdown starts. */
  readonly stopping: boolean;
  /** True while the directory cannot be watched: missing since start, or watching it fails and is retried. */
  readonly watchStalled: boolean;
  databaseError(error: unknown, during: string): void;
  /** Tells a lifecycle event of the session (protected / unprotected). */
  emit(event: 'protected' | 'unprotected', generation: number | null): void;
}

export class ProtectionState {
  /** When the directory stopped being watched (it was removed), for the lag; null while watched. */
  unwatchedSince: number | null = null;
  /**
   * Since when the directory cannot be watched (a start that fails and is retried), null while it can:
   * nothing in it is being stored, so the lag grows (with many sessions, this is how one such session shows).
   */
  watchFailingSince: number | null = null;
  /** Since when the loop runs without having compared the directory with the head; null once it has. */
  uncomparedSince: number | null = null;
  /** Since when the guard refuses what the directory holds (it differs from the head and is not stored), else null. */
  refusedSince: number | null = null;
  /** Since when the directory itself cannot be read (EACCES, EMFILE…), null while it can. */
  private directoryUnreadableSince: number | null = null;
  /** A login found below the directory while it has none itself (relative path), else null. */
  private loginElsewhere: string | null = null;
  private readonly tracker: ProtectionTracker;
  private cancelCheck: (() => void) | null = null;
  /** The protection last recorded in the database under the current lease; null: record it at the next check. */
  private recorded: Protection | null = null;
  private recording = false;

  constructor(private readonly loop: ProtectionSources) {
    this.tracker = new ProtectionTracker(
      loop.log,
      loop.options.maxDelayMs + BACKUP_ALLOWANCE_MS,
      () => loop.clock.wall(),
      (isProtected) => loop.emit(isProtected ? 'protected' : 'unprotected', null),
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
      this.loop.dirty.oldestSince(),
      this.loop.held.oldestSince(),
      this.unwatchedSince,
      this.watchFailingSince,
      this.directoryUnreadableSince,
      this.uncomparedSince,
      this.refusedSince,
    ].filter((at): at is number => at !== null);
    return since.length === 0 ? 0 : Math.max(0, (this.loop.clock.now() - Math.min(...since)) / 1000);
  }

  /** Whether the session is protected now, with the reasons when it is not and since when; a change is logged once. */
  measure(): Protection {
    const allowance = this.loop.clock.now() - this.loop.options.maxDelayMs - BACKUP_ALLOWANCE_MS;
    const held = this.loop.held.counts();
    return this.tracker.update({
      lagSeconds: this.lagSeconds(),
      notWatched: this.loop.watchStalled || this.unwatchedSince !== null,
      directoryUnreadable: this.directoryUnreadableSince !== null,
      held: { ...held, torn: this.loop.held.countOlderThan('torn', allowance) },
      loginElsewhere: this.loginElsewhere,
    });
  }

  /**
   * Measures protection now. A change is recorded in the database (so that `status` in another process
   * shows it) while this process is the writer; while a difference is pending and still within the limit,
   * one more check is armed for the moment it would pass it, so that a lag is reported when it happens,
   * not at the next event.
   */
  check(): void {
    this.cancel();
    const state = this.measure();
    if (state !== this.recorded) void this.record(state);
    if (this.loop.stopping || !state.protected) return;
    const lagMs = this.lagSeconds() * 1000;
    if (lagMs === 0 && this.loop.held.size === 0) return;
    const wait = Math.max(1, this.loop.options.maxDelayMs + BACKUP_ALLOWANCE_MS - lagMs + 1);
    this.cancelCheck = this.loop.clock.setTimer(() => {
      this.cancelCheck = null;
      this.check();
    }, wait);
  }

  /** Drops the check armed by check(), if any (shutdown). */
  cancel(): void {
    this.cancelCheck?.();
    this.cancelCheck = null;
  }

  /** A new lease was taken: what was recorded under an earlier one is recorded again at the next check. */
  leaseChanged(): void {
    this.recorded = null;
  }

  /** Records `state` under the current lease; one write at a time, the newest state last. */
  private async record(state: Protection): Promise<void> {
    const lease = this.loop.lease.current;
    if (!lease || this.recording) return;
    this.recording = true;
    try {
      if (await this.loop.store.recordProtection(this.loop.options.sessionId, lease, state)) this.recorded = state;
    } catch (error) {
      this.loop.databaseError(error, 'recording protection');
      return;
    } finally {
      this.recording = false;
    }
    const now = this.tracker.current;
    if (now !== this.recorded && !this.loop.stopping) void this.record(now);
  }

  /**
   * A configuration mistake the keeper can see (SPEC "Protection"): no creds.json in the directory while a
   * directory below it holds a login (a bot calling useMultiFileAuthState(`auth_info/${id}`)). Nothing of
   * that login is kept: the session is not protected (login_elsewhere), said once with the flag to use.
   */
  async checkLoginPlacement(): Promise<void> {
    const dir = this.loop.options.dir;
    const found = await loginsBelowInstead(dir).catch(() => []);
    const where = found.length > 0 ? found.join(', ') : null;
    if (where !== null && where !== this.loginElsewhere) this.loop.log.warn({ dir, found }, loginElsewhereAdvice(dir, found));
    else if (where === null && this.loginElsewhere !== null)
      this.loop.log.info({ dir }, 'the auth directory holds a creds.json now: no login below it is left unkept');
    this.loginElsewhere = where;
  }

  /** The directory could be read (again). */
  directoryRead(): void {
    if (this.directoryUnreadableSince === null) return;
    this.directoryUnreadableSince = null;
    this.loop.log.info({ dir: this.loop.options.dir }, 'the auth directory can be read again');
  }

  /**
   * Reading the directory itself failed. Gone (ENOENT): the watcher follows it. Anything else (EACCES,
   * EMFILE…): nothing in it can be stored — a failure, shown in the lag and protection, said once.
   */
  directoryUnreadable(error: unknown): void {
    const code = ((error as { cause?: { code?: unknown } }).cause ?? (error as { code?: unknown }))?.code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return;
    this.loop.metrics.backups.inc({ result: 'failure' });
    if (this.directoryUnreadableSince !== null) return;
    this.directoryUnreadableSince = this.loop.clock.now();
    this.loop.log.error(
      { dir: this.loop.options.dir, err: describeError(error) },
      `cannot read the auth directory: ${describeError(error)}; nothing in it is stored until it can be read. ` +
        "Give the keeper read and search access (run it with the bot's uid or group, or Kubernetes securityContext.fsGroup); retrying",
    );
  }
}
