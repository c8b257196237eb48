// Reads what the never-backwards rules (src/rollback.ts, docs/reliability.md "Never backwards") compare a
// directory with: the head's creds, the versions the head replaced or deleted, and the older generations.
import { CREDS_FILE } from '../creds.js';
import type { Queryable } from '../db/pool.js';
import {
  closedVersionsMatching,
  currentVersionsOf,
  newestCurrentWriteOutside,
  versionDigestsChangedSince,
  type StoredFileVersion,
  type VersionDigest,
} from '../db/queries/files.js';
import { listGenerations } from '../db/queries/generations.js';
import { countersBehind, credsFacts, neverRevisited, type CounterBehind, type Revisited, type RollbackFinding } from '../rollback.js';
import type { PlainFile } from './codec/index.js';

/** What a backup (or a restore's check) would turn the head into. */
export interface RollbackCheck {
  sessionId: string;
  headGeneration: number;
  /** Files whose content differs from the head's (new or changed). */
  changed: readonly PlainFile[];
  /** Names the head holds that the result lacks. */
  deleted: readonly string[];
  /** The result is a whole directory read (not a set of watched names): compare it with older generations. */
  whole: boolean;
  /** Every digest a stored version of a file can carry (sha256, keyed hashes: RowCodec.digests). */
  digests: (file: PlainFile) => Buffer[];
  /** A stored version's plaintext, or null when it cannot be opened (then it is not compared). */
  open: (version: StoredFileVersion) => Buffer | null;
  /** The head's creds.json when the caller read it already (opened as `open` would); undefined: read it here. */
  headCreds?: Buffer | null;
}

/**
 * Why the state `check` describes is older than the head, or null when it is not (or is another
 * identity: the registered-session guard's business). Reads only: the caller's transaction sees a
 * consistent head. Cost: the versions of the changed names, plus, for whole reads, the versions
 * closed since the newest generation that could still be equal.
 */
export async function findRollback(q: Queryable, check: RollbackCheck): Promise<RollbackFinding | null> {
  if (check.headGeneration === 0 || (check.changed.length === 0 && check.deleted.length === 0)) return null;
  // A deleted creds.json is a logout or another directory: the registered-session guard's business.
  if (check.deleted.includes(CREDS_FILE)) return null;
  let counters: CounterBehind[] = [];
  const newCredsFile = check.changed.find((file) => file.name === CREDS_FILE);
  if (newCredsFile) {
    // Unchanged creds are the head's own (same login, same counters); changed ones are compared.
    const headCredsContent = check.headCreds !== undefined ? check.headCreds : await openHeadCreds(q, check);
    const headCreds = headCredsContent ? credsFacts(headCredsContent) : null;
    const newCreds = credsFacts(newCredsFile.content);
    if (!headCreds || !newCreds || newCreds.identity !== headCreds.identity) return null;
    counters = countersBehind(headCreds, newCreds);
  }
  const revisited = await revisitedFiles(q, check);
  const equalsGeneration = check.whole ? await equalOlderGeneration(q, check) : null;
  if (counters.length === 0 && revisited.length === 0 && equalsGeneration === null) return null;
  return { counters, revisited, equalsGeneration };
}

/** The head's creds.json, opened by `check.open`; null when there is none or it cannot be opened. */
async function openHeadCreds(q: Queryable, check: RollbackCheck): Promise<Buffer | null> {
  const [row] = await currentVersionsOf(q, check.sessionId, [CREDS_FILE]);
  return row ? check.open(row) : null;
}

/** Changed never-revisited files whose content is a version the head replaced or deleted. */
async function revisitedFiles(q: Queryable, check: RollbackCheck): Promise<Revisited[]> {
  const candidates = check.changed.filter((file) => neverRevisited(file.name));
  const pairs = candidates.flatMap((file) => check.digests(file).map((digest) => ({ name: file.name, digest })));
  const found = new Map<string, number>();
  for (const version of await closedVersionsMatching(q, check.sessionId, pairs))
    found.set(version.name, Math.max(found.get(version.name) ?? 0, version.generationTo));
  if (found.size === 0) return [];
  const current = new Set((await currentVersionsOf(q, check.sessionId, [...found.keys()])).map((version) => version.name));
  return [...found]
    .map(([name, replacedIn]) => ({ name, replacedIn, deleted: !current.has(name) }))
    .sort((a, b) => Number(b.deleted) - Number(a.deleted) || a.name.localeCompare(b.name));
}

/**
 * The newest retained generation before the head that the result equals file for file, or null.
 * Only generations at or after the newest write of a file the result leaves as the head has it can
 * be equal (before it, that file had another version or none): usually none at all for a live bot.
 */
async function equalOlderGeneration(q: Queryable, check: RollbackCheck): Promise<number | null> {
  // Only files missing that come and go in a live bot's life (no content back to an older value, no
  // Signal state or pre-key lost): the bot deleted what it had written since, which is no rollback.
  if (check.changed.length === 0 && !check.deleted.some(neverRevisited)) return null;
  const touched = [...check.changed.map((file) => file.name), ...check.deleted];
  const since = await newestCurrentWriteOutside(q, check.sessionId, touched);
  if (since >= check.headGeneration) return null;
  const rows = await listGenerations(q, check.sessionId, null);
  const generations = rows.map((row) => row.generation).filter((g) => g >= since && g >= 1 && g < check.headGeneration);
  if (generations.length === 0) return null;
  const versions = await versionDigestsChangedSince(q, check.sessionId, since, touched);
  const changed = new Map(check.changed.map((file) => [file.name, check.digests(file)]));
  const deleted = new Set(check.deleted);
  // A directory that went back to g is older than the head only if the directory itself moved on after g.
  // When everything after g came from elsewhere (a body posted to the API, an imported archive, a
  // tombstone), the directory did not go backwards: those writes are what it does not hold.
  const movedOnAfter = (g: number) =>
    rows.some((row) => row.generation > g && row.generation <= check.headGeneration && !NOT_FROM_THE_DIRECTORY.has(row.reason));
  return generations.find((g) => equalsAt(g, versions, changed, deleted) && movedOnAfter(g)) ?? null;
}

/** Reasons of generations not written from the session's directory (src/api.ts, commands/import*.ts, tombstones). */
const NOT_FROM_THE_DIRECTORY = new Set(['api', 'import', 'import-legacy', 'removed']);

/** Whether the result equals generation g, given every version that can differ between g and it. */
function equalsAt(
  g: number,
  versions: readonly VersionDigest[],
  changed: ReadonlyMap<string, readonly Buffer[]>,
  deleted: ReadonlySet<string>,
): boolean {
  let matched = 0;
  for (const version of versions) {
    if (version.generationFrom > g || (version.generationTo !== null && version.generationTo <= g)) continue;
    // Visible at g. A file the result deletes, or one it leaves alone whose version at g was replaced
    // since (its current version is newer than g): the result differs from g.
    if (deleted.has(version.name)) return false;
    const digests = changed.get(version.name);
    if (!digests?.some((digest) => digest.equals(version.sha256))) return false;
    matched++;
  }
  // Every changed file must have had its version at g (a file new since g makes the result differ).
  return matched === changed.size;
}
