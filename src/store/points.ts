// Reading a stored point of a session — the head, a generation, or the newest at a time — with every row
// checked before anyone writes it to disk; and, when a point fails, which older one verifies.
import type { Queryable } from '../db/pool.js';
import { fileVersionsPage, filesAt, filesAtHeads, type StoredFileVersion } from '../db/queries/files.js';
import {
  generationAtTime,
  getGeneration,
  headFacts,
  headFactsOf,
  headGenerations,
  listGenerations,
  type GenerationRow,
} from '../db/queries/generations.js';
import { getSessionWithMarker, sessionsWithMarker } from '../db/queries/sessions.js';
import { IntegrityError, NothingToRestoreError } from '../errors.js';
import { quoteName } from '../names.js';
import { hintsOf, type PlainFile, type PlaintextRule, type RowFailure } from './codec/index.js';
import { headDamage } from './head.js';
import { LOGOUT_REASON, TOMBSTONE_REASON, type StoreContext } from './types.js';

/**
 * The files of the point a restore or export should read — `generation`, the newest at or before
 * `at`, or the head — each checked (safe name, size, digest, encryption) before anyone writes them to
 * disk. One snapshot transaction: a backup pruning concurrently cannot leave a partial set. null when
 * the session has no backup; NothingToRestoreError when an asked-for point is not retained;
 * IntegrityError when the point (or the head) fails a check, naming an older one that verifies.
 */
export async function loadPoint(
  ctx: StoreContext,
  sessionId: string,
  point: { generation?: number | null; at?: Date | null },
): Promise<{ generation: GenerationRow; files: PlainFile[] } | null> {
  return ctx.db.transaction(async (tx) => {
    const session = await getSessionWithMarker(tx, sessionId);
    const rule = ctx.codec.readRule(ctx.codec.marker(sessionId, session ?? { marker: null, hasEncryptedRows: false }));
    let generation: GenerationRow | null;
    if (point.generation != null || point.at != null) {
      generation = await namedPoint(tx, sessionId, point);
    } else {
      const [facts] = await headFacts(tx, sessionId, '', true);
      const damage = facts ? headDamage(facts) : [];
      if (damage.length > 0) {
        // Never "no backup" (the bot would pair anew over a stored login), never a silent older point.
        throw new IntegrityError(
          `the head of session ${sessionId} does not add up: ${damage.join('; ')}. Nothing was written. ` +
            `${await olderVerifying(ctx, tx, sessionId, Number.MAX_SAFE_INTEGER, rule)}` +
            ' (add --force when the directory holds a login); run baileys-keeper verify for the details',
        );
      }
      if (!facts || facts.headGeneration === 0) return null;
      generation = await getGeneration(tx, sessionId, facts.headGeneration);
      if (!generation) return null;
    }
    const files = await openPoint(ctx, tx, sessionId, generation, rule);
    if (files.length !== generation.totalFiles) {
      throw new IntegrityError(
        `generation ${generation.generation} of session ${sessionId} should ` +
          `have ${generation.totalFiles} files but ${files.length} are stored. ` +
          `Nothing was written. ${await olderVerifying(ctx, tx, sessionId, generation.generation, rule)}`,
      );
    }
    return { generation, files };
  }, 'snapshot');
}

/**
 * The generation an asked-for point names — `generation`, or the newest at or before `at` — without reading
 * its files; NothingToRestoreError (exit 3) when it is not retained, saying which are. The check restore makes
 * before it keeps a directory's login: a point that does not exist is an error whatever is on disk.
 */
export async function findPoint(
  ctx: StoreContext,
  sessionId: string,
  point: { generation?: number | null; at?: Date | null },
): Promise<GenerationRow> {
  return ctx.db.transaction((tx) => namedPoint(tx, sessionId, point), 'snapshot');
}

async function namedPoint(
  tx: Queryable,
  sessionId: string,
  point: { generation?: number | null; at?: Date | null },
): Promise<GenerationRow> {
  if (point.generation != null) {
    const generation = await getGeneration(tx, sessionId, point.generation);
    if (generation) return generation;
    throw new NothingToRestoreError(
      `generation ${point.generation} of session ${sessionId} is not retained; ${await retainedRange(tx, sessionId)}`,
    );
  }
  if (point.at == null) throw new TypeError('namedPoint needs a generation or a time');
  const generation = await generationAtTime(tx, sessionId, point.at);
  if (generation) return generation;
  throw new NothingToRestoreError(
    `session ${sessionId} has no retained generation at or before ${point.at.toISOString()}; ${await retainedRange(tx, sessionId)}`,
  );
}

/**
 * What loadHeads found for one session: its head's checked files, ready to write; or 'held' (a live
 * writer holds its lease: wait for its hand-over first); or 'one by one' (anything else — no backup, a
 * tombstone or logout head or a logged-out session, a damaged head, a row that fails a check, a key or
 * marker problem: loadPoint and the restore's own rules say what to do and with which message).
 */
export type HeadLoad = { generation: GenerationRow; files: PlainFile[] } | 'held' | 'one by one';

/**
 * The heads of many sessions, read in one snapshot transaction of four statements however many
 * sessions are listed (a restore of a fleet, a batch at a time; the caller bounds the batch, whose
 * contents are all held at once). Returns a HeadLoad for every listed id. The files given are exactly
 * what loadPoint gives for the head, under the same checks; every session that loadPoint would refuse
 * or answer differently is 'one by one', so the batch never decides an outcome loadPoint would not.
 */
export async function loadHeads(ctx: StoreContext, sessionIds: readonly string[]): Promise<Map<string, HeadLoad>> {
  return ctx.db.transaction(async (tx) => {
    const sessions = new Map((await sessionsWithMarker(tx, sessionIds)).map((row) => [row.sessionId, row]));
    const facts = new Map((await headFactsOf(tx, sessionIds, true)).map((row) => [row.sessionId, row]));
    const heads = await headGenerations(tx, sessionIds);
    const files = await filesAtHeads(tx, sessionIds);
    const loads = new Map<string, HeadLoad>();
    for (const sessionId of sessionIds) {
      const session = sessions.get(sessionId);
      const head = heads.get(sessionId);
      const fact = facts.get(sessionId);
      let load: HeadLoad = 'one by one';
      if (session?.leaseLive) load = 'held';
      else if (session && head && fact && !session.loggedOut && headDamage(fact).length === 0 && fact.headGeneration > 0) {
        if (head.reason !== TOMBSTONE_REASON && head.reason !== LOGOUT_REASON) {
          const opened = openQuietly(ctx, sessionId, session, files.get(sessionId) ?? []);
          if (opened !== null && opened.length === head.totalFiles) load = { generation: head, files: opened };
        }
      }
      loads.set(sessionId, load);
    }
    return loads;
  }, 'snapshot');
}

/** The rows opened and checked as openPoint does; null on any failure (openPoint then names it). */
function openQuietly(
  ctx: StoreContext,
  sessionId: string,
  session: Parameters<StoreContext['codec']['marker']>[1],
  rows: readonly StoredFileVersion[],
): PlainFile[] | null {
  try {
    const rule = ctx.codec.readRule(ctx.codec.marker(sessionId, session));
    const files: PlainFile[] = [];
    const seen = new Set<string>();
    for (const row of rows) {
      if (seen.has(row.name)) return null;
      seen.add(row.name);
      const opened = ctx.codec.open(sessionId, row, rule);
      if ('reason' in opened) return null;
      files.push({ name: row.name, content: opened.content });
    }
    return files;
  } catch {
    return null;
  }
}

/** Every file of `generation`, opened and checked; IntegrityError (naming an older good point) on any failure. */
async function openPoint(
  ctx: StoreContext,
  tx: Queryable,
  sessionId: string,
  generation: GenerationRow,
  rule: PlaintextRule,
): Promise<PlainFile[]> {
  const files: PlainFile[] = [];
  const failures: RowFailure[] = [];
  const seen = new Set<string>();
  for (const row of await filesAt(tx, sessionId, generation.generation)) {
    // Two versions of one name visible at once only come from edited validity ranges.
    if (seen.has(row.name))
      failures.push({
        reason: `${quoteName(row.name)}: stored twice in this generation (its validity ranges were edited by someone with database access)`,
        missingKey: null,
      });
    seen.add(row.name);
    const opened = ctx.codec.open(sessionId, row, rule);
    if ('reason' in opened) failures.push(opened);
    else files.push({ name: row.name, content: opened.content });
  }
  const missing = [...new Set(failures.map((f) => f.missingKey).filter((id): id is string => id !== null))];
  if (missing.length > 0) throw ctx.codec.missingKey(`generation ${generation.generation} of session ${sessionId}`, missing);
  if (failures.length > 0) {
    const reasons = failures.map((f) => f.reason);
    const hints = hintsOf(failures);
    throw new IntegrityError(
      `generation ${generation.generation} of session ${sessionId} failed its integrity check: ${reasons.slice(0, 5).join('; ')}` +
        `${reasons.length > 5 ? ` (and ${reasons.length - 5} more)` : ''}. Nothing was written. ` +
        `${hints.map((hint) => `${hint} `).join('')}${await olderVerifying(ctx, tx, sessionId, generation.generation, rule)}`,
    );
  }
  return files;
}

/** Every stored version of the session, a page at a time, in (name, generation_from) order. */
export async function* everyVersion(q: Queryable, sessionId: string, pageSize = 500): AsyncGenerator<StoredFileVersion> {
  let after: { name: string; generationFrom: number } | null = null;
  for (;;) {
    const page = await fileVersionsPage(q, sessionId, after, pageSize);
    yield* page;
    const last = page.at(-1);
    if (!last || page.length < pageSize) return;
    after = { name: last.name, generationFrom: last.generationFrom };
  }
}

/**
 * Which older retained generation passes every check, for the message of a refused restore. One
 * pass over the stored versions: a generation verifies when none of the failing versions is visible
 * in it and as many versions are visible as it recorded files.
 */
async function olderVerifying(
  ctx: StoreContext,
  tx: Queryable,
  sessionId: string,
  generation: number,
  rule: PlaintextRule,
): Promise<string> {
  const bad: StoredFileVersion[] = [];
  const spans: { generationFrom: number; generationTo: number | null }[] = [];
  for await (const version of everyVersion(tx, sessionId)) {
    spans.push({ generationFrom: version.generationFrom, generationTo: version.generationTo });
    if ('reason' in ctx.codec.open(sessionId, version, rule)) bad.push(version);
  }
  const visible = (version: { generationFrom: number; generationTo: number | null }, g: number) =>
    version.generationFrom <= g && (version.generationTo === null || version.generationTo > g);
  const older = (await listGenerations(tx, sessionId, null)).filter((row) => row.generation < generation);
  const good = older.find(
    (row) =>
      !bad.some((version) => visible(version, row.generation)) &&
      spans.filter((span) => visible(span, row.generation)).length === row.totalFiles,
  );
  return good
    ? `Generation ${good.generation} (${good.createdAt.toISOString()}) verifies: restore it with --generation ${good.generation}`
    : 'No older retained generation verifies: restore from an export, or pair again by QR';
}

/** The retained generations of the session in one phrase, for "not retained" messages. */
async function retainedRange(tx: Queryable, sessionId: string): Promise<string> {
  const rows = await listGenerations(tx, sessionId, null);
  if (rows.length === 0) return 'it has no backup';
  const [oldest, newest] = [rows.at(-1)!, rows[0]!];
  const span = `(${oldest.createdAt.toISOString()} .. ${newest.createdAt.toISOString()})`;
  if (newest.generation - oldest.generation + 1 === rows.length)
    return `retained generations are ${oldest.generation}..${newest.generation} ${span}`;
  return (
    `${rows.length} generations between ${oldest.generation} and ${newest.generation} are ` +
    `retained ${span}, thinned by the retention schedule: 'baileys-keeper history' lists them`
  );
}
