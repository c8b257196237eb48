// The metadata a head file's content was read with (files.stamp), so that a restarted keeper compares its
// directory with the head by metadata instead of reading every file (docs/many-sessions.md "Start-up").
// Stored as text (snapshot.ts stampKey): readable in psql, exact for 64-bit values.
import type { Queryable } from '../db/pool.js';
import { currentStamps, setStamps, type StoredDigest } from '../db/queries/files.js';
import { type FileStamp, type Snapshot, stampKey } from '../snapshot.js';
import type { StoreContext } from './types.js';

/** What files.stamp holds when it holds a stamp (snapshot.ts stampKey); anything else is never trusted. */
const STAMP_TEXT = /^\d+:\d+:\d+:\d+:\d+$/;

/**
 * name → the recorded stamp key (stampKey; null where not known) of every file the session's head holds; empty when
 * the head holds none (no backup yet, a tombstone, a logout).
 */
export async function headStamps(ctx: StoreContext, sessionId: string): Promise<Map<string, string | null>> {
  const stored = await currentStamps(ctx.db, sessionId);
  return new Map([...stored].map(([name, text]) => [name, text !== null && STAMP_TEXT.test(text) ? text : null]));
}

/**
 * Records, inside a backup's transaction, the stamps of the files it read whose content is now the head's
 * (`stored`: the head's digests before the backup, `changed`: the names it writes) — new versions, and
 * unchanged ones whose recorded stamp differs (or was not known). `stamps` holds only trustworthy ones
 * (read outside the racy window, audit.ts): a file without one keeps NULL and is read at the next start.
 */
export async function recordStamps(
  tx: Queryable,
  sessionId: string,
  snapshot: Snapshot,
  stamps: ReadonlyMap<string, FileStamp> | undefined,
  stored: ReadonlyMap<string, StoredDigest>,
  changed: ReadonlySet<string>,
): Promise<void> {
  if (!stamps || stamps.size === 0) return;
  const updates = new Map<string, string>();
  for (const [name, stamp] of stamps) {
    if (!snapshot.files.has(name)) continue;
    const text = stampKey(stamp);
    if (changed.has(name) || stored.get(name)?.stamp !== text) updates.set(name, text);
  }
  await setStamps(tx, sessionId, updates);
}
