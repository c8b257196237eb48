// The rules for file names, shared by the snapshot reader, the restorer, the archive reader and the API
// (one rule, so that a name one path refuses no other path accepts), and how a sessions-directory folder
// name becomes a session id and back (--sessions-dir).
import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';

/** Longest session id, characters. */
const MAX_SESSION_ID = 100;
/** Session ids: the same rule for flags, env, the API and imported rows. */
const SESSION_ID_PATTERN = new RegExp(`^[A-Za-z0-9._-]{1,${MAX_SESSION_ID}}$`);
export const SESSION_ID_RULE = '1-100 characters of A-Z a-z 0-9 . _ -';

export function isValidSessionId(value: string): boolean {
  return SESSION_ID_PATTERN.test(value);
}

/** Session id characters other than the two that the folder mapping reserves (`.` and `_`). */
const PLAIN_BYTE = /^[A-Za-z0-9-]$/;
/** Hex digits of SHA-256 that name a folder whose escaped name is too long: 128 bits. */
const NAME_HASH_HEX = 32;

/**
 * With --sessions-dir: how sub-directory `name` becomes a session id (docs/many-sessions.md, "Folder names").
 * - `prefix + name` when that is a valid session id and `name` does not start with `.` (`mapped: false`):
 *   what every existing deployment already stores.
 * - Otherwise the name is mapped (`mapped: true`) to `prefix + "." + escape(name)`: every UTF-8 byte of the
 *   name outside `A-Z a-z 0-9 -` becomes `_XX` (upper-case hex), so `João` is `.Jo_C3_A3o`. Invertible.
 * - When that passes 100 characters: `prefix + "." + <start of the escaped name> + "." + <32 hex digits of
 *   SHA-256 of the name's bytes>`; the folder's name is stored with the session so that restore can
 *   recreate it (SessionStore.recordFolder).
 * One-to-one: the identity ids never start with `.` after the prefix (dotted folders are skipped), an escaped
 * part holds no `.` and decodes to one name, a hashed one holds exactly one more `.` (two names share it only
 * when their SHA-256 agree on 128 bits). Skipped (with why):
 * dotted names, names holding NUL or `/`, and prefixes too long to leave room for the hashed form.
 */
export function sessionIdFor(prefix: string, name: string): { sessionId: string; mapped: boolean } | { skipped: string } {
  if (name.startsWith('.')) return { skipped: 'its name starts with a dot' };
  if (name === '' || name.includes('\0') || name.includes('/')) return { skipped: 'its name is not a folder name' };
  const identity = `${prefix}${name}`;
  if (isValidSessionId(identity)) return { sessionId: identity, mapped: false };
  const escaped = escapeFolderName(name);
  if (prefix.length + 1 + escaped.length <= MAX_SESSION_ID) return { sessionId: `${prefix}.${escaped}`, mapped: true };
  const room = MAX_SESSION_ID - prefix.length - 2 - NAME_HASH_HEX;
  if (room < 0)
    return {
      skipped: `the prefix is too long to map a name that is no session id (at most ${MAX_SESSION_ID - 2 - NAME_HASH_HEX} characters)`,
    };
  const hash = createHash('sha256').update(name, 'utf8').digest('hex').slice(0, NAME_HASH_HEX);
  return { sessionId: `${prefix}.${escaped.slice(0, room)}.${hash}`, mapped: true };
}

/** The mapped form of a folder name: its UTF-8 bytes, `A-Z a-z 0-9 -` kept, every other byte `_XX`. */
function escapeFolderName(name: string): string {
  let out = '';
  for (const byte of Buffer.from(name, 'utf8')) {
    const char = String.fromCharCode(byte);
    out += PLAIN_BYTE.test(char) ? char : `_${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** Inverse of escapeFolderName, or null when `escaped` is not one (or its bytes are not UTF-8). */
function unescapeFolderName(escaped: string): string | null {
  if (!/^(?:[A-Za-z0-9-]|_[0-9A-F]{2})+$/.test(escaped)) return null;
  const bytes: number[] = [];
  for (let i = 0; i < escaped.length; i++) {
    if (escaped[i] === '_') {
      bytes.push(Number.parseInt(escaped.slice(i + 1, i + 3), 16));
      i += 2;
    } else bytes.push(escaped.charCodeAt(i));
  }
  return decodeUtf8(Uint8Array.from(bytes));
}

/** `bytes` as a string when they are well-formed UTF-8, else null (Linux names are bytes, not text). */
export function decodeUtf8(bytes: Uint8Array): string | null {
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    return null;
  }
}

/**
 * Why `name` must not be created as a folder of the sessions directory by restore, or null when it may:
 * empty, over 255 bytes, `.`-started (which covers `.` and `..`), a path separator, NUL or a control character.
 */
export function unsafeFolderReason(name: string): string | null {
  if (name.length === 0) return 'the name is empty';
  if (Buffer.byteLength(name, 'utf8') > MAX_NAME_BYTES) return `the name is over ${MAX_NAME_BYTES} bytes`;
  if (name.startsWith('.')) return 'the name starts with a dot';
  if (name.includes('/')) return 'the name contains a path separator';
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters (and NUL) are exactly what is refused
  if (/[\u0000-\u001f\u007f]/.test(name)) return 'the name contains NUL or a control character';
  return null;
}

/**
 * Restore's side of sessionIdFor: the folder of stored session `sessionId` under `prefix`, given the folder
 * name stored with it (null when none was). The name must map back to `sessionId` and be safe to create
 * (unsafeFolderReason); an escaped id is decoded when no name was stored. Else why it cannot be restored by name.
 */
export function folderFor(prefix: string, sessionId: string, stored: string | null): { folder: string } | { skipped: string } {
  if (!sessionId.startsWith(prefix)) return { skipped: `it does not start with the prefix ${JSON.stringify(prefix)}` };
  const rest = sessionId.slice(prefix.length);
  const folder = stored ?? (rest.startsWith('.') ? unescapeFolderName(rest.slice(1)) : rest);
  if (folder === null) return { skipped: 'its folder name was not stored with it and cannot be derived from the id' };
  const unsafe = unsafeFolderReason(folder);
  if (unsafe) return { skipped: `its folder name ${quoteName(folder)} is not safe to create: ${unsafe}` };
  const id = sessionIdFor(prefix, folder);
  if (!('sessionId' in id) || id.sessionId !== sessionId)
    return {
      skipped: `the folder name ${quoteName(folder)} does not map to this session id (it maps to ${'sessionId' in id ? id.sessionId : 'none'})`,
    };
  return { folder };
}

declare global {
  interface String {
    /** ES2024 (Node >= 20), missing from the es2023 library typings: false when a surrogate is unpaired. */
    isWellFormed(): boolean;
  }
}

/** Longest name most filesystems accept for one path component. */
export const MAX_NAME_BYTES = 255;

/** Why a name would not be backed up from a directory, or null when it would be. */
export function skippedNameReason(name: string): string | null {
  if (name.startsWith('.')) return 'dotfile';
  if (name.endsWith('.tmp')) return 'temporary file';
  return null;
}

/**
 * Why `name` is not a safe single file name inside the auth directory, or null when it is.
 * Rejects anything that could escape the directory or that the backup would never have stored.
 */
export function invalidNameReason(name: string): string | null {
  if (typeof name !== 'string' || name.length === 0) return 'the name is empty';
  if (Buffer.byteLength(name, 'utf8') > MAX_NAME_BYTES) return `the name is over ${MAX_NAME_BYTES} bytes`;
  // A lone surrogate half has no UTF-8 form: PostgreSQL and the filesystem would store U+FFFD, so two such
  // names would become one (and a different name from the one given).
  if (!name.isWellFormed()) return 'the name is not well-formed Unicode (it contains an unpaired surrogate)';
  if (name.includes('\0')) return 'the name contains a NUL byte';
  if (name.includes('/') || name.includes('\\')) return 'the name contains a path separator';
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what is refused
  if (/[\u0000-\u001f\u007f]/.test(name)) return 'the name contains a control character';
  if (name === '.' || name === '..') return 'the name is a directory reference';
  const skipped = skippedNameReason(name);
  if (skipped) return `the name is a ${skipped}, which is never backed up`;
  return null;
}

/** Printable form of an untrusted name for error messages. */
export function quoteName(name: string): string {
  return JSON.stringify(name.length > 300 ? `${name.slice(0, 300)}…` : name);
}
