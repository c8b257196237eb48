// When one session's loop reads the directory: the one timer for the next backup (debounce, max-delay,
// a rescan due, held-back files on their own backoff, after a failure's backoff), the periodic audit
// every --interval, and the backup slots that many sessions share.
import { auditDirectory } from '../audit.js';
import { dueAt } from '../dirty.js';
import type { LoopContext } from './context.js';
import { type FlushOutcome, SLOT_PRIORITY, type SessionLoopOptions } from './loop-options.js';

/**
 * Runs `work` in a backup slot when the process bounds them (many sessions), else at once. Higher
 * `priority` goes first: a backup of changes (the RPO) before periodic rescans and housekeeping.
 */
export function inSlot<T>(options: SessionLoopOptions, work: () => Promise<T>, priority: number = SLOT_PRIORITY.housekeeping): Promise<T> {
  const slots = options.backupSlots;
  return slots ? slots.runExclusive(work, 1, priority) : work();
}

export class Schedule {
  /** The backup in progress, if any: there is at most one. */
  flushing: Promise<FlushOutcome> | null = null;
  private cancelFlush: (() => void) | null = null;
  private cancelRescan: (() => void) | null = null;

  /** `pass` runs one backup pass (backup-pass.ts). */
  constructor(
    private readonly loop: LoopContext,
    private readonly pass: () => Promise<FlushOutcome>,
  ) {}

  /** Sets the one timer for the next backup, if one is due and we are the writer. */
  plan(): void {
    const loop = this.loop;
    const next = loop.next;
    loop.protection.check();
    if (loop.stopping) return;
    this.cancelFlush?.();
    this.cancelFlush = null;
    // Nothing is read while the directory is not watched: it is missing, and a rescan follows its return.
    if (this.flushing || !loop.lease.current || loop.watcher.backend === null) return;
    const now = loop.clock.now();
    let at = next.rescanDue || (next.urgent && loop.dirty.size > 0) ? now : dueAt(loop.dirty, loop.options);
    // Held-back files are read again on their own backoff, not on every change of another file.
    if (loop.held.size > 0) at = at === null ? next.heldRetryAt : Math.min(at, next.heldRetryAt);
    if (at === null) return;
    at = Math.max(at, next.retryAt);
    this.cancelFlush = loop.clock.setTimer(() => void this.flush(), at - now);
  }

  /** Runs one backup now (or joins the one in progress); plans the next one when it ends. */
  flush(): Promise<FlushOutcome> {
    const priority = this.loop.dirty.size > 0 || this.loop.next.urgent ? SLOT_PRIORITY.changes : SLOT_PRIORITY.housekeeping;
    this.flushing ??= inSlot(this.loop.options, this.pass, priority).finally(() => {
      this.flushing = null;
      this.plan();
    });
    return this.flushing;
  }

  /** Arms the periodic audit (every --interval, independent of watch events); `ms` until the first one. */
  armRescan(ms = this.loop.options.intervalMs): void {
    this.cancelRescan = this.loop.clock.setTimer(() => {
      void this.loop
        .checkWatcher()
        .then(() => audit(this.loop))
        .finally(() => {
          this.plan();
          if (!this.loop.stopping) this.armRescan();
        });
    }, ms);
  }

  /** Drops the timers of the next backup and the next audit (shutdown). */
  cancel(): void {
    this.cancelFlush?.();
    this.cancelFlush = null;
    this.cancelRescan?.();
    this.cancelRescan = null;
  }
}

/**
 * The audit (SPEC "Protection"): compares the directory with the head by metadata and marks every
 * difference dirty, so that the next backup reads just those files. Without a stored whole comparison to
 * compare with (start, a new writer, a refusal, a directory not watched) it asks for a full read instead.
 */
export async function audit(loop: LoopContext): Promise<void> {
  if (loop.stopping) return;
  await loop.protection.checkLoginPlacement();
  if (!loop.book.primed || loop.next.full || !loop.lease.current || loop.watcher.backend === null) {
    loop.next.rescanDue = true;
    return;
  }
  try {
    const result = await auditDirectory(loop.options.dir, loop.book);
    loop.protection.directoryRead();
    const now = loop.clock.now();
    for (const name of result.differ) loop.dirty.mark(name, now);
    if (result.differ.length > 0)
      loop.log.debug({ files: result.differ.length, checked: result.files }, 'audit: files differ from the head');
    // Nothing differs, waits or is held back: the directory is stored as it is now, proven by the same
    // metadata a start from recorded stamps trusts (a no-op backup). A quiet bot's last success moves on,
    // so "time since the last success" measures what is stored, not how busy the bot is.
    else if (loop.dirty.size === 0 && loop.held.size === 0 && loop.lease.current)
      loop.metrics.lastBackupSuccess.set(loop.clock.wall() / 1000);
  } catch (error) {
    loop.directoryUnreadable(error);
  }
}
