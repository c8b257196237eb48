// What one session's loop is given (SessionLoopOptions), where it is in its life (LoopPhase), what a
// backup pass ends with (FlushOutcome), and the fixed timings of its retries.
import type { BackupSummary } from '../backup-summary.js';
import type { SessionEvent } from '../lifecycle-events.js';
import type { Semaphore } from 'async-mutex';
import type { LeaseAttempts } from '../lease-attempts.js';
import type { LeaseRenewals } from '../lease-renewals.js';
import type { OutageLog } from '../outage-log.js';
import type { RetentionPolicy } from '../store/retention.js';
import type { BackoffPolicy } from '../retry.js';
import type { BackupResult } from '../store/index.js';
import type { WatchMode } from '../watcher.js';

export { RETRY_BACKOFF } from '../retry.js';
/**
 * Pauses before reading held-back files again (torn, unreadable, too large): 1 s, doubling, at most 30 s.
 * Soon enough that a file that becomes readable (descriptors freed, permissions fixed) is stored within
 * seconds; slow enough that a file that stays unreadable costs little.
 */
export const HELD_RETRY_BACKOFF: BackoffPolicy = { initialMs: 1_000, factor: 2, maxMs: 30_000 };
/** How often the history is thinned to the retention schedule (after a backup that wrote), ms. */
export const THIN_EVERY_MS = 60_000;
/** Order in the backup slots (many sessions): changes waiting to be stored go before rescans, thinning and tombstones. */
export const SLOT_PRIORITY = { changes: 1, housekeeping: 0 } as const;
/** Time still given to releasing the lease when the shutdown deadline has passed, ms. */
export const RELEASE_GRACE_MS = 1_000;
/**
 * A stored backup of at least this many files (changed or deleted) is said at info even when routine:
 * more than a Baileys key batch (up to ~40 files), so a bulk change (a wiped or replaced folder) shows.
 */
export const MANY_FILES = 100;
/** A first backup reading at least this many files shows progress on a terminal (a large session: ~8,700). */
export const LARGE_SESSION_FILES = 1_000;

export interface SessionLoopOptions {
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
  /** Creates or upgrades the schema; default: the store prepares it. A keeper of many sessions does it once for all. */
  prepareSchema?: () => Promise<void>;
  /** Renew this session's lease together with the process's others (many sessions); default: on its own. */
  renewals?: LeaseRenewals | null;
  /** Try to acquire this session's lease together with the process's other waiting sessions (many sessions); default: on its own. */
  attempts?: LeaseAttempts | null;
  /**
   * When the first interval rescan comes, ms (default: intervalMs). Many sessions spread theirs over the
   * interval, so that a thousand full rescans do not all fall due at the same instant.
   */
  firstRescanMs?: number;
  /** Backups (and history thinning, tombstones) of the process's sessions that may run at once (many sessions: bounds open files); default: no bound. */
  backupSlots?: Semaphore | null;
  /** Where database failures are logged for all the process's sessions (many sessions); default: each on its own, at warn. */
  outageLog?: OutageLog | null;
  /**
   * Adds up the stored backups of all the process's sessions into one periodic info line (many sessions;
   * started and stopped by its owner); default: the loop's own, started and stopped with it.
   */
  summary?: BackupSummary | null;
  /** The first backup of a large session shows progress on a terminal (src/progress.ts); default: no (many sessions). */
  showProgress?: boolean;
  /** Told each lifecycle event of the session (SPEC "Session lifecycle"): logged, counted, sent on; default: none. */
  onEvent?: (event: SessionEvent) => void;
}

/**
 * Where the loop is in its life; it only moves forward:
 * - `new`: constructed, start() not called yet;
 * - `starting`: watching the directory and preparing the database (retried while they fail), and the
 *   directory not yet compared with what is stored;
 * - `ready`: the directory was compared with what is stored, or another process is the writer (/readyz 200);
 * - `stopping`: shutdown() was called: nothing new is scheduled, the final backup is being made;
 * - `stopped`: shutdown() has returned (or was called before start(): nothing was ever watched).
 */
export type LoopPhase = 'new' | 'starting' | 'ready' | 'stopping' | 'stopped';

/** How a backup pass ended: the store's result, or failure, standby (not the writer), clean (nothing to read). */
export type FlushOutcome = BackupResult['kind'] | 'failure' | 'standby' | 'clean';

/** How SessionLoop.shutdown bounds and shortens its work (a keeper of many sessions stops them together). */
export interface ShutdownOptions {
  /** When everything must be over, the loop's clock, ms; default shutdownTimeoutMs from now. */
  deadline?: number;
  /** Time still given to releasing the lease once the deadline has passed, ms; default 1 s. */
  releaseGraceMs?: number;
  /** Skip the final read when nothing is pending (see shutdown). */
  skipWhenClean?: boolean;
  /**
   * `run`: the bot's process group exited on its own before the keeper was asked to stop. A directory gone
   * then, after the loop saw the login in it, is a logout (the bot wiped it and exited); otherwise a gone
   * directory keeps the stored login.
   */
  botExited?: boolean;
}
