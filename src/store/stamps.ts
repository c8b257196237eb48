// The metadata a head file's content was read with (files.stamp), so that a restarted keeper compares its
// directory with the head by metadata instead of reading every file (docs/many-sessions.md "Start-up").
// Stored as text (snapshot.ts stampKey): readable in psql, exact for 64-bit values.
import type { Queryable } from '../db/pool.js';
import { currentStamps, setStamps, type StoredDigest } from '../db/queries/files.js';
import { getSessionWithMarker } from '../db/queries/sessions.js';
import { type FileStamp, type Snapshot, stampKey } from '../snapshot.js';
import type { StoreContext } from './types.js';

/** What files.stamp holds when it holds a stamp (snapshot.ts stampKey); anything else is never trusted. */
const STAMP_TEXT = /^\d+:\d+:\d+:\d+:\d+$/;

/** What a restart compares its directory with (headStamps). */
export interface RecordedHead {
  /** name → the recorded stamp key (stampKey) of every file the head holds, null where not known. */
  stamps: Map<string, string | null>;
  /** The head's paired jid as stored (masked when the store is encrypted), null when not paired. */
  registeredJid: string | null;
}

/**
 * The head's files with their recorded metadata, and its login, for a comparison by metadata at start; null
 * when the head cannot be trusted by metadata alone and the whole directory must be read as a backup would:
 * no head files (no backup yet, a tombstone, a logout), or a backup now would store or refuse rows whatever
 * the directory holds — encryption starting, a row under a key not configured, plaintext where encryption is
 * required, encrypted rows with no key (RowCodec.keepsRow).
 */
export async function headStamps(ctx: StoreContext, sessionId: string): Promise<RecordedHead | null> {
  const session = await getSessionWithMarker(ctx.db, sessionId);
  if (!session || session.headGeneration === 0) return null;
  if (ctx.codec.wouldStartEncryption(ctx.codec.marker(sessionId, session))) return null;
  const rows = await currentStamps(ctx.db, sessionId);
  if (rows.length === 0 || rows.some((row) => !ctx.codec.keepsRow(row.keyId))) return null;
  return {
    stamps: new Map(rows.map((row) => [row.name, row.stamp !== null && STAMP_TEXT.test(row.stamp) ? row.stamp : null])),
    registeredJid: session.registeredJid,
  };
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
