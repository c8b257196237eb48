// Files that differ from the head and that no backup can store now (SPEC "Protection"): torn, unreadable,
// too large. They stay pending — retried with backoff, counted in the lag and in
// baileys_keeper_held_back_files{reason} — until stored or gone, and each is logged once per reason.
import type { Logger } from './log.js';
import { HELD_REASONS, type HeldFile, type HeldReason } from './snapshot.js';

interface Held {
  kind: HeldReason;
  /** Since when the file has differed from the head, the loop's clock, ms. */
  since: number;
}

export class HeldBackFiles {
  private readonly files = new Map<string, Held>();

  constructor(private readonly log: Logger) {}

  /**
   * Records that a backup could not store `name` (`held`), different from the head since `since` (ms; an
   * older record keeps its time). Warns once per file and reason; a new reason for the same file warns again.
   */
  hold(name: string, held: HeldFile, since: number): void {
    const before = this.files.get(name);
    this.files.set(name, { kind: held.kind, since: Math.min(before?.since ?? since, since) });
    if (before?.kind === held.kind) return;
    const advice: Record<HeldReason, string> = {
      torn: 'the stored version is kept and it is read again shortly',
      unreadable:
        "it is NOT stored: give the keeper read access (run it with the bot's uid or group, Kubernetes securityContext.fsGroup, or a bot umask of 027); retrying with backoff",
      too_large:
        'it is NOT stored: the per-file limit is 16 MiB (Baileys key files stay under ~150 KiB); move the file out of the auth directory',
    };
    this.log.warn({ file: name, reason: held.kind }, `not stored: ${name}: ${held.reason}; ${advice[held.kind]}`);
  }

  /** `name` was stored, or is gone: no longer held. Says so when it had been held for a reason other than a torn write. */
  release(name: string): void {
    const before = this.files.get(name);
    if (!before) return;
    this.files.delete(name);
    if (before.kind !== 'torn') this.log.info({ file: name, reason: before.kind }, `${name} is no longer held back`);
  }

  /** Forgets every file (the directory is gone, or a new writer takes over). */
  clear(): void {
    this.files.clear();
  }

  get size(): number {
    return this.files.size;
  }

  names(): string[] {
    return [...this.files.keys()];
  }

  has(name: string): boolean {
    return this.files.has(name);
  }

  /** Since when the oldest held file has differed from the head, ms; null when none is held. */
  oldestSince(): number | null {
    let oldest: number | null = null;
    for (const held of this.files.values()) if (oldest === null || held.since < oldest) oldest = held.since;
    return oldest;
  }

  /** Held files by reason (every reason present, 0 when none). */
  counts(): Record<HeldReason, number> {
    const counts = Object.fromEntries(HELD_REASONS.map((reason) => [reason, 0])) as Record<HeldReason, number>;
    for (const held of this.files.values()) counts[held.kind]++;
    return counts;
  }

  /** Held files of `kind` held since before `before` (ms). */
  countOlderThan(kind: HeldReason, before: number): number {
    let count = 0;
    for (const held of this.files.values()) if (held.kind === kind && held.since < before) count++;
    return count;
  }
}
