// Reading a sessions directory (--sessions-dir, docs/many-sessions.md): which entries are sessions and
// under which id, which wait for a login, which are skipped and why. One listing for the fleet and for
// `backup --sessions-dir`, so that both keep exactly the same folders.
import { Buffer } from 'node:buffer';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { CREDS_FILE } from './creds.js';
import { decodeUtf8, sessionIdFor } from './names.js';

/** One entry of the sessions directory, as the listing judged it. */
export type SessionsDirEntry =
  /** A session: a folder named like a session id, or a folder with another name that holds a login. */
  | { kind: 'session'; name: string; sessionId: string; mapped: boolean }
  /** A folder whose name is no session id and that holds no login (yet): it becomes a session once it does. */
  | { kind: 'waiting'; name: string; sessionId: string }
  /** Not a session: a file, a link, a dotted or non-UTF-8 name; `holdsLogin` says whether a login is left unkept. */
  | { kind: 'skipped'; name: string; why: string; holdsLogin: boolean; link: boolean };

/**
 * Lists `sessionsDir` (absolute) and judges every entry with the session ids of `prefix` (names.sessionIdFor).
 * A folder named like a session id is a session whatever it holds (as it always was); a folder with any other
 * name is one once it holds a creds.json, so that stray folders (`lost+found` at a volume's root) are not
 * customers. `known(name)` true skips that look for a folder already kept. Rejects when the directory cannot
 * be read; an entry that vanishes meanwhile is judged as it was listed.
 */
export async function listSessionsDir(
  sessionsDir: string,
  prefix: string,
  known: (name: string) => boolean = () => false,
): Promise<SessionsDirEntry[]> {
  const entries = await readdir(sessionsDir, { withFileTypes: true, encoding: 'buffer' });
  return Promise.all(
    entries.map(async (entry): Promise<SessionsDirEntry> => {
      // Linux names are bytes: read them as bytes, so that a name that is not UTF-8 is seen as such
      // instead of as a lossy string that names no folder (or another one).
      const bytes = entry.name as Buffer;
      const name = decodeUtf8(bytes);
      const shown = name ?? bytes.toString('utf8');
      const full = Buffer.concat([Buffer.from(`${sessionsDir}${path.sep}`), bytes]);
      const skipped = async (why: string, link = false): Promise<SessionsDirEntry> => ({
        kind: 'skipped',
        name: shown,
        why,
        holdsLogin: await holdsLogin(full),
        link,
      });
      if (entry.isSymbolicLink()) return skipped('it is a symbolic link (links are never followed; make it a directory)', true);
      if (!entry.isDirectory())
        return {
          kind: 'skipped',
          name: shown,
          why: 'it is not a directory (every session is a sub-directory)',
          holdsLogin: false,
          link: false,
        };
      if (name === null)
        return skipped(`its name is not valid UTF-8 (bytes ${bytes.toString('hex')}): rename it to a UTF-8 name to keep it`);
      const id = sessionIdFor(prefix, name);
      if ('skipped' in id) return skipped(id.skipped);
      if (!id.mapped || known(name) || (await holdsLogin(full))) return { kind: 'session', name, ...id };
      return { kind: 'waiting', name, sessionId: id.sessionId };
    }),
  );
}

/**
 * True when directory `dir` (a path, as text or bytes) holds a login, or may: a creds.json that is a regular
 * file (links followed), or a directory the keeper may not look into (EACCES, EIO…). Only "no such file"
 * means no login: a folder the keeper cannot read is kept as a session, which then reports it unreadable,
 * rather than passed over as empty while it holds a customer's login.
 */
export async function holdsLogin(dir: string | Buffer): Promise<boolean> {
  const file = typeof dir === 'string' ? path.join(dir, CREDS_FILE) : Buffer.concat([dir, Buffer.from(`${path.sep}${CREDS_FILE}`)]);
  return stat(file).then(
    (info) => info.isFile(),
    (error: NodeJS.ErrnoException) => error.code !== 'ENOENT' && error.code !== 'ENOTDIR',
  );
}
