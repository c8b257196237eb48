// What a keeper stored, said once every few minutes. A bot writes keys every second or so, and a line per
// stored backup buries everything else; so a routine backup is a debug line, and this adds them up into
// one info line per SUMMARY_INTERVAL_MS for all the sessions of the process (a thousand sessions: still
// one line). Nothing stored in an interval: no line — the metrics and the heartbeat say the keeper is alive.
import type { Clock } from './clock.js';
import { formatBytes } from './commands/output.js';
import type { Logger } from './log.js';
import { formatDuration } from './store/retention.js';

/** How often the stored backups are summed up in one info line, ms: 5 minutes. */
export const SUMMARY_INTERVAL_MS = 5 * 60_000;

/** What one stored backup adds to the summary (a successful BackupResult has these). */
export interface StoredBackup {
  /** Files written (new or changed). */
  changed: number;
  /** Bytes of those files. */
  changedBytes: number;
  /** Files recorded as deleted. */
  deleted: number;
}

export class BackupSummary {
  private generations = 0;
  private files = 0;
  private deleted = 0;
  private bytes = 0;
  private readonly sessions = new Set<string>();
  /** Start of the period being added up (the clock's ms). */
  private since: number;
  private cancel: (() => void) | null = null;

  /** `intervalMs`: the period of the line (default SUMMARY_INTERVAL_MS), on `clock`. */
  constructor(
    private readonly log: Logger,
    private readonly clock: Clock,
    private readonly intervalMs = SUMMARY_INTERVAL_MS,
  ) {
    this.since = clock.now();
  }

  /** Starts the periodic line (again after stop(): a new period). */
  start(): void {
    if (this.cancel !== null) return;
    this.reset();
    this.arm();
  }

  /** A backup of `sessionId` was stored: counted in the current period. */
  stored(sessionId: string, backup: StoredBackup): void {
    this.generations++;
    this.files += backup.changed;
    this.deleted += backup.deleted;
    this.bytes += backup.changedBytes;
    this.sessions.add(sessionId);
  }

  /** Stops the periodic line; what the current period stored is said now (the keeper is stopping). */
  stop(): void {
    this.cancel?.();
    this.cancel = null;
    this.say();
  }

  private arm(): void {
    this.cancel = this.clock.setTimer(() => {
      this.say();
      this.arm();
    }, this.intervalMs);
  }

  private say(): void {
    const periodMs = this.clock.now() - this.since;
    if (this.generations > 0) {
      const sessions = this.sessions.size;
      this.log.info(
        { generations: this.generations, files: this.files, deleted: this.deleted, bytes: this.bytes, sessions, periodMs },
        `backups in the last ${formatDuration(periodMs)}: ${this.generations} generation${this.generations === 1 ? '' : 's'} stored ` +
          `(${this.files} files changed, ${this.deleted} deleted, ${formatBytes(this.bytes)}) ` +
          `for ${sessions} session${sessions === 1 ? '' : 's'}`,
      );
    }
    this.reset();
  }

  private reset(): void {
    this.generations = this.files = this.deleted = this.bytes = 0;
    this.sessions.clear();
    this.since = this.clock.now();
  }
}
