// Finds a Baileys login that sits below the configured auth directory instead of in it: a bot calling
// useMultiFileAuthState(`auth_info/${id}`) while the keeper watches `auth_info` keeps nothing, and the
// next pod pairs by QR. docs/storage.md "A login below --dir" and SPEC "Protection" (no login where one
// is expected) say what is done about it; this module only looks.
import { constants, type Dir } from 'node:fs';
import { type FileHandle, lstat, open, opendir } from 'node:fs/promises';
import path from 'node:path';
import { CREDS_FILE, parseCreds } from './creds.js';

/** How deep below the directory a login is looked for by default: SPEC asks for at least three levels. */
export const LOGIN_SEARCH_DEPTH = 3;
/**
 * Directory entries read at most in one search, so that a `--dir` pointed at a huge tree (a home
 * directory, a volume root) cannot stall start-up or `doctor`; what was found before the bound is returned.
 */
export const LOGIN_SEARCH_MAX_ENTRIES = 20_000;
/** A creds.json larger than this is not read: Baileys writes a few KiB. */
const MAX_CREDS_BYTES = 1024 * 1024;

export interface LoginSearchOptions {
  /** Levels below `dir` searched, 1 = its immediate sub-directories; default LOGIN_SEARCH_DEPTH. */
  maxDepth?: number;
  /** Directory entries read at most; default LOGIN_SEARCH_MAX_ENTRIES. */
  maxEntries?: number;
}

/**
 * The directories below `dir` (depth 1..maxDepth) that hold a `creds.json` parsing as Baileys creds
 * (creds.ts parseCreds), as paths relative to `dir` (`mybot`, `tenants/a`), sorted. Breadth first; never
 * follows a symbolic link; a directory it may not read (or that vanishes) is skipped; a directory that holds
 * a login is not searched further (an auth directory has no sub-directories of its own). Never throws:
 * `dir` missing or unreadable gives []. Bounded by `maxEntries` entries read in all.
 */
export async function findLoginsBelow(dir: string, options: LoginSearchOptions = {}): Promise<string[]> {
  const maxDepth = options.maxDepth ?? LOGIN_SEARCH_DEPTH;
  let budget = options.maxEntries ?? LOGIN_SEARCH_MAX_ENTRIES;
  const found: string[] = [];
  let level: string[] = [''];
  for (let depth = 1; depth <= maxDepth && level.length > 0 && budget > 0; depth++) {
    const next: string[] = [];
    for (const parent of level) {
      if (budget <= 0) break;
      let handle: Dir;
      try {
        handle = await opendir(path.join(dir, parent));
      } catch {
        continue; // unreadable, vanished or not a directory: nothing to find there
      }
      try {
        for await (const entry of handle) {
          if (--budget < 0) break;
          // Dirent types come from readdir (lstat semantics): a symbolic link is never a directory here.
          // Dotted directories are never kept (a restore's stage, the stale copy a restore set aside).
          if (entry.isDirectory() && !entry.name.startsWith('.')) next.push(path.join(parent, entry.name));
        }
      } catch {
        // an I/O error half way through a listing: keep what was listed
      }
    }
    level = [];
    for (const candidate of next) {
      if (await holdsLogin(path.join(dir, candidate))) found.push(candidate);
      else level.push(candidate);
    }
  }
  return found.sort();
}

/**
 * findLoginsBelow, used as the rule says: only when `dir` itself holds no creds.json (nothing of that
 * name: a torn or unpaired creds.json is still the login's place). [] when it does, or nothing is below.
 */
export async function loginsBelowInstead(dir: string, options: LoginSearchOptions = {}): Promise<string[]> {
  const own = await lstat(path.join(dir, CREDS_FILE)).then(
    () => true,
    (error: NodeJS.ErrnoException) => error.code !== 'ENOENT' && error.code !== 'ENOTDIR',
  );
  return own ? [] : findLoginsBelow(dir, options);
}

/** True when `dir/creds.json` is a regular file (not a link) that parses as Baileys creds. */
async function holdsLogin(dir: string): Promise<boolean> {
  let handle: FileHandle;
  try {
    handle = await open(path.join(dir, CREDS_FILE), constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    return false;
  }
  try {
    const info = await handle.stat();
    if (!info.isFile() || info.size > MAX_CREDS_BYTES) return false;
    return parseCreds(await handle.readFile('utf8')) !== null;
  } catch {
    return false;
  } finally {
    await handle.close();
  }
}

/**
 * What to tell the user when `dir` has no creds.json but `found` (from findLoginsBelow, non-empty) lists
 * logins below it: the directory and the flag to use. One login: `--dir dir/x`; several that share a parent:
 * `--sessions-dir parent`; otherwise one `--dir` per login. Paths are shown as `dir` was given.
 */
export function loginElsewhereAdvice(dir: string, found: readonly string[]): string {
  const full = found.map((relative) => path.join(dir, relative));
  const head = `${dir} holds no ${CREDS_FILE}`;
  if (full.length === 1) {
    const [only] = full as [string];
    return (
      `${head}, but ${only} holds a Baileys login: nothing of it is kept. Point the keeper at it with --dir ${only} ` +
      `(KEEPER_DIR), or --sessions-dir ${path.dirname(only)} when the bot keeps one login per sub-directory there`
    );
  }
  const parents = [...new Set(full.map((login) => path.dirname(login)))];
  const listed = full.join(', ');
  if (parents.length === 1)
    return `${head}, but ${full.length} directories below it hold Baileys logins (${listed}): nothing of them is kept. Keep them all with --sessions-dir ${parents[0]} (KEEPER_SESSIONS_DIR)`;
  return `${head}, but ${full.length} directories below it hold Baileys logins (${listed}): nothing of them is kept. Run one keeper per login with --dir (${full.map((login) => `--dir ${login}`).join(', ')}), or move them under one directory and use --sessions-dir`;
}
