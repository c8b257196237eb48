// The metadata a head file's content was read with (files.stamp), so that a restarted keeper compares its
// directory with the head by metadata instead of reading every file (docs/many-sessions.md "Start-up").
// Stored as text, "dev:ino:size:mtime_ns:ctime_ns" in decimal: readable in psql, exact for 64-bit values.
import type { Queryable } from '../db/pool.js';
import { currentStamps, setStamps, type StoredDigest } from '../db/queries/files.js';
import type { FileStamp, Snapshot } from '../snapshot.js';
import type { StoreContext } from './types.js';

/** The stamp as files.stamp stores it. */
export function encodeStamp(stamp: FileStamp): string {
  return `${stamp.dev}:${stamp.ino}:${stamp.size}:${stamp.mtimeNs}:${stamp.ctimeNs}`;
}

/** files.stamp back as a stamp; null for NULL or for text that is not five decimal numbers (never trusted). */
export function decodeStamp(text: string | null): FileStamp | null {
  if (text === null || !/^\d+:\d+:\d+:\d+:\d+$/.test(text)) return null;
  const [dev, ino, size, mtimeNs, ctimeNs] = text.split(':') as [string, string, string, string, string];
  return { dev: BigInt(dev), ino: BigInt(ino), size: Number(size), mtimeNs: BigInt(mtimeNs), ctimeNs: BigInt(ctimeNs) };
}

/**
 * name → the recorded stamp (null where not known) of every file the session's head holds; empty when
 * the head holds none (no backup yet, a tombstone, a logout).
 */
export async function headStamps(ctx: StoreContext, sessionId: string): Promise<Map<string, FileStamp | null>> {
  const stored = await currentStamps(ctx.db, sessionId);
  return new Map([...stored].map(([name, text]) => [name, decodeStamp(text)]));
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
    const text = encodeStamp(stamp);
    if (changed.has(name) || stored.get(name)?.stamp !== text) updates.set(name, text);
  }
  await setStamps(tx, sessionId, updates);
}
