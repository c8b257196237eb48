// The rules for file names, shared by the snapshot reader, the restorer, the archive reader and the API:
// one rule, so that a name one path refuses no other path accepts.
import { Buffer } from 'node:buffer';

/** Session ids: the same rule for flags, env, the API and imported rows. */
const SESSION_ID_PATTERN = /^[A-Za-z0-9._-]{1,100}$/;
export const SESSION_ID_RULE = '1-100 characters of A-Z a-z 0-9 . _ -';

export function isValidSessionId(value: string): boolean {
  return SESSION_ID_PATTERN.test(value);
}

/**
 * With --sessions-dir: the session id of sub-directory `name` (prefix + name), or why the directory is
 * skipped (a dotted name, or one that makes no valid session id).
 */
export function sessionIdFor(prefix: string, name: string): { sessionId: string } | { skipped: string } {
  if (name.startsWith('.')) return { skipped: 'its name starts with a dot' };
  const sessionId = `${prefix}${name}`;
  if (!isValidSessionId(sessionId)) return { skipped: `${JSON.stringify(sessionId)} is not a valid session id (${SESSION_ID_RULE})` };
  return { sessionId };
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
