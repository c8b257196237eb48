// Thinning a session's history to what the retention schedule keeps (src/store/retention.ts,
// docs/storage.md "Retention"), in short bounded transactions that never touch the head.
import { deleteInvisibleFiles } from '../db/queries/files.js';
import { databaseNow, deleteGenerations, generationTimes } from '../db/queries/generations.js';
import { lockSession } from '../db/queries/sessions.js';
import { retainedGenerations, type RetentionPolicy } from './retention.js';
import type { StoreContext, ThinResult } from './types.js';

/** Generations deleted per thinning transaction, and file versions deleted per transaction after them. */
const THIN_BATCH_GENERATIONS = 500;
const THIN_BATCH_FILES = 2_000;

/**
 * Thins the session's history to what `policy` retains at `now` (default: the database's clock, which
 * stamped the generations): deletes the other generations, then every file version no retained
 * generation can see. Each transaction holds the session row only briefly, so backups keep going; a
 * backup that commits meanwhile is never touched (the head and anything newer are kept). Safe to run
 * concurrently and to interrupt: what is left is always consistent, and a later pass with `sweepAll`
 * reclaims the file versions an interrupted one left.
 */
export async function thin(
  ctx: StoreContext,
  sessionId: string,
  policy: RetentionPolicy,
  options: { now?: Date; sweepAll?: boolean } = {},
): Promise<ThinResult> {
  const db = ctx.db;
  const { at, dated } = await db.transaction(
    async (tx) => ({ at: options.now ?? (await databaseNow(tx)), dated: await generationTimes(tx, sessionId) }),
    'snapshot',
  );
  const retained = retainedGenerations(dated, policy, at);
  const doomed = dated
    .map((g) => g.generation)
    .filter((g) => !retained.has(g))
    .sort((a, b) => a - b);
  const result: ThinResult = { generations: 0, files: 0, retained: retained.size, transactions: 0 };
  if (doomed.length === 0 && !options.sweepAll) return result;
  for (let i = 0; i < doomed.length; i += THIN_BATCH_GENERATIONS) {
    const batch = doomed.slice(i, i + THIN_BATCH_GENERATIONS);
    result.transactions++;
    result.generations += await db.transaction(async (tx) => {
      // Serialised with backups of this session, which lock the same row, for a few milliseconds.
      await lockSession(tx, sessionId);
      return deleteGenerations(tx, sessionId, batch);
    });
  }
  for (;;) {
    result.transactions++;
    const deleted = await db.transaction(async (tx) => {
      await lockSession(tx, sessionId);
      // The versions this pass's deletions could have orphaned; sweepAll: any (an interrupted pass's too).
      const [low, high] = options.sweepAll || doomed.length === 0 ? [0, Number.MAX_SAFE_INTEGER] : [doomed[0]!, doomed.at(-1)!];
      return deleteInvisibleFiles(tx, sessionId, low, high, THIN_BATCH_FILES);
    });
    result.files += deleted;
    if (deleted < THIN_BATCH_FILES) return result;
  }
}
