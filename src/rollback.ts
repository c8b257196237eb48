// Recognises a directory that is OLDER than the stored head (docs/reliability.md "Never backwards"):
// a disk that missed generations (a VM snapshot rolled back, a volume restored from an old backup) holds
// an older valid login, and storing it would bring back used one-time pre-keys and old Signal sessions.
//
// Every signal here is one a live bot's own writes cannot produce, so normal churn is never called a
// rollback: counters Baileys only ever increases, Signal state files that never return to an earlier
// value, and (for whole-directory reads only) a directory equal to an older retained generation.
//
// The rules, on values; src/store/rollback-check.ts reads the stored versions they are applied to.
import { quoteName } from './names.js';

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
