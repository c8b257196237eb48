// The set of file names changed since they were last stored, and when the next backup is due.

interface Entry {
  /** When the oldest change of this name that is not stored yet happened, ms. */
  since: number;
  /** Sequence number of the newest change, so a backup clears only what it has read. */
  seq: number;
}

export class DirtySet {
  private readonly entries = new Map<string, Entry>();
  private seq = 0;
  /** Time of the newest change of any name, ms. */
  lastChangeAt: number | null = null;

  /** Records a change of `name` at `now`; an already dirty name keeps its older `since`. */
  mark(name: string, now: number): void {
    const entry = this.entries.get(name);
    this.entries.set(name, { since: entry?.since ?? now, seq: ++this.seq });
    this.lastChangeAt = now;
  }

  /** A checkpoint to pass to clearUpTo() once what is dirty now has been stored. */
  checkpoint(): number {
    return this.seq;
  }

  /** Forgets names whose newest change is at or before `checkpoint`; later changes stay dirty. */
  clearUpTo(checkpoint: number): void {
    for (const [name, entry] of this.entries) if (entry.seq <= checkpoint) this.entries.delete(name);
    if (this.entries.size === 0) this.lastChangeAt = null;
  }

  /** When the oldest change of `name` not stored yet happened, ms; null when it is not dirty. */
  sinceOf(name: string): number | null {
    return this.entries.get(name)?.since ?? null;
  }

  names(): string[] {
    return [...this.entries.keys()];
  }

  get size(): number {
    return this.entries.size;
  }

  /** Time of the oldest change not stored yet, or null when clean. */
  oldestSince(): number | null {
    let oldest: number | null = null;
    for (const entry of this.entries.values()) if (oldest === null || entry.since < oldest) oldest = entry.since;
    return oldest;
  }
}

export interface FlushTiming {
  /** Back up after this long without changes, ms. */
  debounceMs: number;
  /** …but never later than this after the first unsaved change, ms. */
  maxDelayMs: number;
}

/** When the dirty names are due to be backed up: after a quiet debounce, capped by max-delay. null when clean. */
export function dueAt(dirty: DirtySet, timing: FlushTiming): number | null {
  const oldest = dirty.oldestSince();
  if (oldest === null || dirty.lastChangeAt === null) return null;
  return Math.min(dirty.lastChangeAt + timing.debounceMs, oldest + timing.maxDelayMs);
}
