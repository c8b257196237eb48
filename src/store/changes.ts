// What a directory read changes in a session's head: the files to store and the names to delete, the
// plaintext head a first encrypted backup re-stores, and whether the result would take the head backwards.
import type { Queryable } from '../db/pool.js';
import { currentHashes, currentPlaintextVersions } from '../db/queries/files.js';
import { getSessionWithMarker } from '../db/queries/sessions.js';
import { IntegrityError } from '../errors.js';
import type { RollbackFinding } from '../rollback.js';
import type { Snapshot } from '../snapshot.js';
import type { MarkerState, PlainFile, PlaintextRule, StoredDigest } from './codec/index.js';
import { findRollback } from './rollback-check.js';
import type { StoreContext } from './types.js';

/** The snapshot's files that differ from `stored`, and the `considered` names it no longer holds. */
export function diff(
  ctx: StoreContext,
  sessionId: string,
  stored: ReadonlyMap<string, StoredDigest>,
  snapshot: Snapshot,
  considered: Iterable<string>,
): { changed: PlainFile[]; deleted: string[] } {
  const changed = [...snapshot.files.values()].filter((file) => !ctx.codec.isStored(sessionId, file, stored.get(file.name)));
  const deleted = [...considered].filter((name) => stored.has(name) && !snapshot.files.has(name) && !snapshot.held.has(name));
  return { changed, deleted };
}

/** findRollback (src/store/rollback-check.ts) for `changed`/`deleted` over the head, reading stored rows by the session's rule. */
export async function olderThanHead(
  ctx: StoreContext,
  tx: Queryable,
  change: {
    sessionId: string;
    headGeneration: number;
    changed: readonly PlainFile[];
    deleted: readonly string[];
    whole: boolean;
    /** The head's creds.json when the caller read it already (lifecycle.headCredsContent). */
    headCreds?: Buffer | null;
  },
  marker: MarkerState,
): Promise<RollbackFinding | null> {
  const rule = ctx.codec.readRule(marker);
  return findRollback(tx, {
    ...change,
    digests: (file) => ctx.codec.digests(change.sessionId, file),
    open: (version) => {
      const opened = ctx.codec.open(change.sessionId, version, rule);
      return 'reason' in opened ? null : opened.content;
    },
  });
}

/**
 * Whether `snapshot`, a whole directory read, is older than the session's head (docs/reliability.md
 * "Never backwards"), and what shows it; null when it is not, when it is another login, or when the
 * session has no head. Reads only; honours no --allow-rollback (the caller decides what to do).
 */
export async function rollbackOf(
  ctx: StoreContext,
  sessionId: string,
  snapshot: Snapshot,
): Promise<{ finding: RollbackFinding; headGeneration: number } | null> {
  return ctx.db.transaction(async (tx) => {
    const session = await getSessionWithMarker(tx, sessionId);
    if (!session || session.headGeneration === 0) return null;
    const stored = await currentHashes(tx, sessionId);
    const { changed, deleted } = diff(ctx, sessionId, stored, snapshot, stored.keys());
    const marker = ctx.codec.marker(sessionId, session);
    const change = { sessionId, headGeneration: session.headGeneration, changed, deleted, whole: true };
    const finding = await olderThanHead(ctx, tx, change, marker);
    return finding ? { finding, headGeneration: session.headGeneration } : null;
  }, 'snapshot');
}

/** The plaintext head files a backup does not already store again, checked, to re-store encrypted. */
export async function plaintextHead(
  ctx: StoreContext,
  tx: Queryable,
  sessionId: string,
  covered: { changed: readonly PlainFile[]; deleted: readonly string[] },
  rule: PlaintextRule,
): Promise<PlainFile[]> {
  const names = new Set([...covered.changed.map((file) => file.name), ...covered.deleted]);
  const files: PlainFile[] = [];
  for (const row of await currentPlaintextVersions(tx, sessionId)) {
    if (names.has(row.name)) continue;
    // The session's read rule: anywhere for a never-encrypted session, nowhere under the setting (the
    // backup refused a session with plaintext rows before this; a row that appeared since is refused too).
    const opened = ctx.codec.open(sessionId, row, rule);
    if ('reason' in opened) {
      throw new IntegrityError(
        `cannot start encrypting session ${sessionId}: its stored ${opened.reason}; nothing ` +
          `was written. Run 'baileys-keeper verify', then restore a good generation and back it up`,
      );
    }
    files.push({ name: row.name, content: opened.content });
  }
  return files;
}
