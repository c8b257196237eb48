// How a file becomes a stored row and back: plaintext with its sha256, or (with a key) AES-256-GCM
// ciphertext bound to (session, name, generation that wrote it) with a keyed hash. Every row is
// opened through here, so restore, export, the API and verify apply the same checks.
import { cipherOf, keyedHash, sameDigest, type KeyRing } from '../../crypto.js';
import { IntegrityError } from '../../errors.js';
import { invalidNameReason, quoteName } from '../../names.js';
import { sha256 } from '../../snapshot.js';

export interface PlainFile {
  name: string;
  content: Buffer;
}

/** What change detection compares: the stored digest and, when the row is encrypted, its key id. */
export interface StoredDigest {
  /** sha256 of the content for plaintext rows; the keyed hash (crypto.keyedHash) when keyId is set. */
  digest: Buffer;
  keyId: string | null;
}

/**
 * A row as stored: the files table's columns (src/db/queries/files.ts, FileVersion), written out here because
 * the codec imports nothing from src/db/ (test/unit/layers.test.ts); the types agree structurally.
 */
export interface SealedRow {
  name: string;
  /** sha256 of the plaintext, or its keyed hash when sealed. */
  sha256: Buffer;
  /** Plaintext bytes. */
  size: number;
  content: Buffer;
  keyId: string | null;
  /** The cipher format it is sealed in (crypto.RowCipher.stored); null for plaintext. */
  cipherVersion: number | null;
}

/** A stored file version as the codec reads it: a row and the generations it is visible in. */
export interface StoredRow extends SealedRow {
  generationFrom: number;
  generationTo: number | null;
}

/** Why a stored row cannot be opened. `missingKey`: it names a key id that is not configured. */
export interface RowFailure {
  reason: string;
  missingKey: string | null;
  /** What to do about it, said once for all the rows it applies to. */
  hint?: string;
}

/** The distinct hints of `failures`, each said once. */
export function hintsOf(failures: readonly { hint?: string }[]): string[] {
  return [...new Set(failures.flatMap((failure) => (failure.hint ? [failure.hint] : [])))];
}

/** The row to store for `file`, written at `generation`: encrypted under the ring's writer key, or plaintext without keys. */
export function sealRow(keys: KeyRing | null, sessionId: string, generation: number, file: PlainFile): SealedRow {
  const size = file.content.length;
  if (!keys) return { name: file.name, sha256: sha256(file.content), size, content: file.content, keyId: null, cipherVersion: null };
  const key = keys.writer;
  return {
    name: file.name,
    sha256: keyedHash(key, sessionId, file.name, file.content),
    size,
    content: keys.cipher.seal(key, { sessionId, name: file.name, generation }, file.content),
    keyId: key.id,
    cipherVersion: keys.cipher.stored,
  };
}

/**
 * True when `content` is what the stored row holds. With encryption on, a plaintext row never
 * counts as the same: it is stored again, encrypted. Throws RowKeyMissing for a row under a key
 * this process does not have (storing over it would silently give up its encryption).
 */
export function storedMatches(keys: KeyRing | null, sessionId: string, name: string, content: Buffer, stored: StoredDigest): boolean {
  if (stored.keyId === null) return keys === null && sha256(content).equals(stored.digest);
  const key = keys?.find(stored.keyId);
  if (!key) throw new RowKeyMissing(stored.keyId);
  return sameDigest(keyedHash(key, sessionId, name, content), stored.digest);
}

export class RowKeyMissing extends Error {
  constructor(readonly keyId: string) {
    super(`stored files are encrypted with key id ${keyId}, which is not configured`);
  }
}

/** The IntegrityError (exit 4) for `what`, stored under key ids `keyIds` that `keys` does not hold: it says which key to configure. */
export function missingKeyError(keys: KeyRing | null, what: string, keyIds: string[]): IntegrityError {
  const configured = keys ? `configured: ${keys.describe()}` : 'no key is configured';
  return new IntegrityError(
    `${what} is encrypted with key id ${keyIds.join(', ')}, which is not configured (${configured}): ` +
      'set KEEPER_ENCRYPTION_KEY / KEEPER_ENCRYPTION_KEY_FILE to that key, or add it to KEEPER_ENCRYPTION_KEYS; nothing was written',
  );
}

/**
 * Where a plaintext row may legitimately be. Its sha256 is unkeyed, so anyone who can write the table
 * can forge one; once a session is encrypted, only its older (pre-encryption) history may be plaintext.
 */
export interface PlaintextRule {
  /** null: anywhere (the session was never written encrypted); M: only rows that end at or before generation M. */
  until: number | null;
  /** Why a plaintext row outside that range is refused, for the failure message. */
  because: string;
  /** The refusal is the operator's setting (KEEPER_REQUIRE_ENCRYPTION): every plaintext row, whatever its range. */
  required?: boolean;
  /** With `required`: what to do about a plaintext row (it depends on the session's marker). */
  hint?: string;
}

export const PLAINTEXT_ANYWHERE: PlaintextRule = { until: null, because: '' };

/** KEEPER_REQUIRE_ENCRYPTION: no plaintext row anywhere, whatever its range or the session's history. */
export function plaintextNowhere(hint: string): PlaintextRule {
  return { until: 0, because: 'KEEPER_REQUIRE_ENCRYPTION is on', required: true, hint };
}

/** The plaintext of a stored row after every check (safe name, decryption, size, digest), or why it fails. */
export function openRow(
  keys: KeyRing | null,
  sessionId: string,
  row: StoredRow,
  plaintext: PlaintextRule = PLAINTEXT_ANYWHERE,
): { content: Buffer } | RowFailure {
  const label = quoteName(row.name);
  const bad = invalidNameReason(row.name);
  if (bad) return { reason: `${label}: unsafe file name (${bad})`, missingKey: null };
  // Generations start at 1: a row from before that is visible in no real generation, and would pass as
  // pre-encryption history below (and be re-encrypted by rekey) if it were let through.
  if (row.generationFrom < 1)
    return {
      reason: `${label}: stored from generation ${row.generationFrom}, before the first one (written by someone with database access)`,
      missingKey: null,
    };
  // Likewise a row whose range is empty (the table's CHECK forbids it, but whoever owns the table can
  // drop that): it would pass the range test below as pre-encryption history.
  if (row.generationTo !== null && row.generationTo <= row.generationFrom) {
    return {
      reason:
        `${label}: stored for generations ${row.generationFrom} to ` +
        `${row.generationTo}, an empty range (written by someone with database access)`,
      missingKey: null,
    };
  }
  if (row.keyId === null && plaintext.required)
    return { reason: `${label}: stored in plaintext, and ${plaintext.because}`, missingKey: null, hint: plaintext.hint };
  if (row.keyId === null && plaintext.until !== null && (row.generationTo === null || row.generationTo > plaintext.until)) {
    return {
      reason:
        `${label}: stored in plaintext where ${plaintext.because}, so the keeper ` +
        `did not write it (forged or re-linked by someone with database access)`,
      missingKey: null,
    };
  }
  let content = row.content;
  let matches: (plain: Buffer) => boolean = (plain) => sha256(plain).equals(row.sha256);
  let digestName = 'sha256';
  if (row.keyId !== null) {
    const key = keys?.find(row.keyId);
    if (!key) return { reason: `${label}: encrypted with key id ${row.keyId}, which is not configured`, missingKey: row.keyId };
    const cipher = cipherOf(row.cipherVersion);
    if (!cipher) {
      return {
        reason:
          `${label}: sealed in cipher format ${row.cipherVersion}, which this keeper version does not know ` +
          '(written by a newer keeper, or altered): run the newest keeper version',
        missingKey: null,
      };
    }
    const plain = cipher.open(key, { sessionId, name: row.name, generation: row.generationFrom }, row.content);
    if (!plain) {
      return {
        reason: `${label}: cannot be decrypted with key id ${row.keyId} (wrong key, or its content, name or generation was altered)`,
        missingKey: null,
      };
    }
    content = plain;
    matches = (value) => sameDigest(keyedHash(key, sessionId, row.name, value), row.sha256);
    digestName = 'keyed hash';
  }
  if (content.length !== row.size)
    return { reason: `${label}: size ${content.length} differs from the recorded ${row.size}`, missingKey: null };
  if (!matches(content)) return { reason: `${label}: ${digestName} mismatch`, missingKey: null };
  return { content };
}
