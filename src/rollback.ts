// Recognises a directory that is OLDER than the stored head (docs/reliability.md "Never backwards"):
// a disk that missed generations (a VM snapshot rolled back, a volume restored from an old backup) holds
// an older valid login, and storing it would bring back used one-time pre-keys and old Signal sessions.
//
// Every signal here is one a live bot's own writes cannot produce, so normal churn is never called a
// rollback: counters Baileys only ever increases, Signal state files that never return to an earlier
// value, and (for whole-directory reads only) a directory equal to an older retained generation.
import { CREDS_FILE } from './creds.js';
import { keyedHash, type KeyRing } from './crypto.js';
import type { Queryable } from './db/pool.js';
import {
  closedVersionsMatching,
  currentVersionsOf,
  newestCurrentWriteOutside,
  versionDigestsChangedSince,
  type StoredFileVersion,
  type VersionDigest,
} from './db/queries/files.js';
import { listGenerations } from './db/queries/generations.js';
import { quoteName } from './names.js';
import type { PlainFile } from './rows.js';
import { sha256 } from './snapshot.js';

/**
 * The creds.json fields Baileys (6 and 7) only ever increases: pre-key ids are handed out in order
 * (`getNextPreKeys`), account syncs are counted and stamped, history-sync chunks are appended. A value
 * below the head's means the creds are from before the head. Fields a creds object lacks are skipped.
 */
export const MONOTONIC_CREDS_COUNTERS: readonly { name: string; read: (creds: Record<string, unknown>) => unknown }[] = [
  { name: 'nextPreKeyId', read: (c) => c['nextPreKeyId'] },
  { name: 'firstUnuploadedPreKeyId', read: (c) => c['firstUnuploadedPreKeyId'] },
  { name: 'accountSyncCounter', read: (c) => c['accountSyncCounter'] },
  { name: 'lastAccountSyncTimestamp', read: (c) => c['lastAccountSyncTimestamp'] },
  {
    name: 'processedHistoryMessages (count)',
    read: (c) => (Array.isArray(c['processedHistoryMessages']) ? c['processedHistoryMessages'].length : undefined),
  },
];

/** What the rollback rules read from a creds.json: whose login it is, and its monotonic counters. */
export interface CredsFacts {
  /** registrationId and the public identity key: a re-pair (initAuthCreds) changes both. */
  identity: string;
  counters: ReadonlyMap<string, number>;
}

/** A counter of the directory's creds.json below the head's. */
export interface CounterBehind {
  counter: string;
  head: number;
  dir: number;
}

/** A file that came back byte for byte as a version the head had replaced or deleted. */
export interface Revisited {
  name: string;
  /** The generation that replaced or deleted that version. */
  replacedIn: number;
  /** True when the head has no such file at all (deleted, e.g. a used one-time pre-key). */
  deleted: boolean;
}

/** Why a directory is older than the head; at least one part is non-empty. */
export interface RollbackFinding {
  counters: CounterBehind[];
  revisited: Revisited[];
  /** The older retained generation the directory equals, or null. */
  equalsGeneration: number | null;
}

/** creds.json text → its facts; null when it is not a creds object. */
export function credsFacts(content: Buffer): CredsFacts | null {
  let value: unknown;
  try {
    value = JSON.parse(content.toString('utf8'));
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return null;
  const creds = value as Record<string, unknown>;
  const identityKey = (creds['signedIdentityKey'] as Record<string, unknown> | undefined)?.['public'];
  const counters = new Map<string, number>();
  for (const { name, read } of MONOTONIC_CREDS_COUNTERS) {
    const count = read(creds);
    if (typeof count === 'number' && Number.isFinite(count)) counters.set(name, count);
  }
  return { identity: JSON.stringify([creds['registrationId'], identityKey ?? null]), counters };
}

/** The counters of `dir` that are below the head's (a counter missing on either side is not compared). */
export function countersBehind(head: CredsFacts, dir: CredsFacts): CounterBehind[] {
  const behind: CounterBehind[] = [];
  for (const [counter, headValue] of head.counters) {
    const dirValue = dir.counters.get(counter);
    if (dirValue !== undefined && dirValue < headValue) behind.push({ counter, head: headValue, dir: dirValue });
  }
  return behind;
}

/**
 * Files whose every write is a new value, never an earlier one: one-time pre-keys (random key pairs
 * under ids that only grow, deleted once used) and Signal ratchet state (sessions and sender keys,
 * whose chains only move forward). `sender-key-memory-*` is a plain map that may legitimately repeat.
 */
export function neverRevisited(name: string): boolean {
  if (name.startsWith('sender-key-memory-')) return false;
  return /^(pre-key|session|sender-key)-.+\.json$/.test(name);
}

/** A one-line account of a finding, for the refusal and the restore's log. */
export function describeRollback(finding: RollbackFinding, headGeneration: number): string {
  const parts: string[] = [];
  if (finding.counters.length > 0)
    parts.push(`its creds.json is behind the head's: ${finding.counters.map((c) => `${c.counter} ${c.dir} < ${c.head}`).join(', ')}`);
  const deleted = finding.revisited.filter((r) => r.deleted);
  const replaced = finding.revisited.filter((r) => !r.deleted);
  if (deleted.length > 0) parts.push(`${listNames(deleted)} deleted by the head (used) came back`);
  if (replaced.length > 0) parts.push(`${listNames(replaced)} went back to a version the head had replaced`);
  if (finding.equalsGeneration !== null) parts.push(`it equals the older generation ${finding.equalsGeneration}`);
  return `the directory is older than the stored head (generation ${headGeneration}): ${parts.join('; ')}`;
}

function listNames(files: readonly Revisited[]): string {
  const shown = files.slice(0, 3).map((f) => `${quoteName(f.name)} (${f.deleted ? 'deleted' : 'replaced'} in generation ${f.replacedIn})`);
  const more = files.length > 3 ? ` and ${files.length - 3} more` : '';
  return `${files.length === 1 ? 'the file' : `${files.length} files`} ${shown.join(', ')}${more}`;
}

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
  /** Encryption keys: an encrypted row's digest is a keyed hash. */
  keys: KeyRing | null;
  /** A stored version's plaintext, or null when it cannot be opened (then it is not compared). */
  open: (version: StoredFileVersion) => Buffer | null;
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
    const [headCredsRow] = await currentVersionsOf(q, check.sessionId, [CREDS_FILE]);
    const headCredsContent = headCredsRow ? check.open(headCredsRow) : null;
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

/** Changed never-revisited files whose content is a version the head replaced or deleted. */
async function revisitedFiles(q: Queryable, check: RollbackCheck): Promise<Revisited[]> {
  const candidates = check.changed.filter((file) => neverRevisited(file.name));
  const pairs = candidates.flatMap((file) => digestsOf(check, file).map((digest) => ({ name: file.name, digest })));
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
  const changed = new Map(check.changed.map((file) => [file.name, digestsOf(check, file)]));
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

/** Every digest a stored version of `file` can carry: its sha256, or a keyed hash under a configured key. */
function digestsOf(check: RollbackCheck, file: PlainFile): Buffer[] {
  const digests = [sha256(file.content)];
  for (const key of check.keys?.keys ?? []) digests.push(keyedHash(key, check.sessionId, file.name, file.content));
  return digests;
}
