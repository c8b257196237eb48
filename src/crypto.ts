// Encryption at rest: AES-256-GCM for stored file contents and a keyed hash (HMAC-SHA-256) for change
// detection, so that neither the contents nor plaintext hashes of them are in the database.
//
// Every configured key (32 random bytes) is split with HKDF-SHA-256 into independent subkeys: one seeds
// the per-row content keys, one keys the change-detection hash, one names the key (its fingerprint id),
// and one is the content key of format 1, kept to read rows written before format 2. Nothing here logs
// or formats key bytes; errors name key ids only.
//
// Why a key per row (format 2): GCM with random 96-bit nonces is bounded at 2^32 encryptions per key
// (NIST SP 800-38D, 8.3), and format 1 used one content key per configured key for every session of a
// fleet. Format 2 derives the AES key of each row from a fresh random 128-bit salt and the session id,
// so each AES key encrypts one row and no per-key count exists to reach (docs/security.md has the figures).
import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';

export const KEY_BYTES = 32;
/** GCM nonce: 96 random bits per stored row (NIST SP 800-38D's recommended size). */
export const NONCE_BYTES = 12;
export const TAG_BYTES = 16;
/**
 * Format 2: random HKDF salt per stored row, 128 bits. Two rows of one session share an AES key only when
 * their salts repeat (likely only after about 2^64 rows), and even then GCM fails only if their random
 * nonces repeat as well.
 */
export const SALT_BYTES = 16;
/** Explicit key ids in KEEPER_ENCRYPTION_KEYS (they are stored with every row). */
export const KEY_ID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;
/** Ids derived from the key itself start with this; see keyFingerprint. */
export const FINGERPRINT_PREFIX = 'fp-';

// HKDF "info" labels: one per purpose, versioned, so a subkey can never be used for another job.
const INFO_ENCRYPT = 'baileys-keeper v1 content encryption';
const INFO_HASH = 'baileys-keeper v1 change-detection hash';
const INFO_ID = 'baileys-keeper v1 key fingerprint';
const INFO_ROW_SEED = 'baileys-keeper v2 row key seed';
const INFO_ROW_KEY = 'baileys-keeper v2 row key';
const AAD_LABEL = 'baileys-keeper v1 file';
const MARKER_LABEL = 'baileys-keeper v1 encrypted since';

export interface EncryptionKey {
  /** The id stored with each row this key encrypts. */
  readonly id: string;
  /** The id derived from the key bytes (equal to id for the single-key forms). */
  readonly fingerprint: string;
  /** Format 1's content key: every row of every session under this key (read-only since format 2). */
  readonly legacyContentKey: Buffer;
  /** Format 2's input keying material: each row's AES key is derived from it (see rowKey). */
  readonly rowKeySeed: Buffer;
  readonly hashKey: Buffer;
}

/** Where a stored row belongs: its ciphertext is bound to exactly this (see aad). */
export interface RowIdentity {
  sessionId: string;
  name: string;
  /** The generation that wrote the row (files.generation_from), not the ones it is visible in. */
  generation: number;
}

/** The keys a process knows: the first one encrypts new rows, any of them decrypts. */
export class KeyRing {
  private readonly byId = new Map<string, EncryptionKey>();
  private readonly byFingerprint = new Map<string, EncryptionKey>();

  /**
   * `cipher`: the format new rows are written in, CURRENT_CIPHER unless told. Stored rows are read in
   * whatever format they name. LEGACY_CIPHER writes rows exactly as keepers before format 2 did, which
   * is how the compatibility tests make them.
   */
  constructor(
    readonly keys: readonly EncryptionKey[],
    readonly cipher: RowCipher = CURRENT_CIPHER,
  ) {
    if (keys.length === 0) throw new Error('a key ring needs at least one key');
    for (const key of keys) {
      this.byId.set(key.id, key);
      this.byFingerprint.set(key.fingerprint, key);
    }
  }

  /** The key that encrypts new rows (the first configured). */
  get writer(): EncryptionKey {
    return this.keys[0]!;
  }

  /** The key stored rows name as `id`: by its configured id, or by its fingerprint (rows written with the single-key form). */
  find(id: string): EncryptionKey | null {
    return this.byId.get(id) ?? this.byFingerprint.get(id) ?? null;
  }

  /** The configured ids, for messages ("configured: a, b"). */
  describe(): string {
    return this.keys.map((key) => (key.id === key.fingerprint ? key.id : `${key.id} (${key.fingerprint})`)).join(', ');
  }
}

/**
 * Decodes a key given as base64 (standard or URL-safe, padding optional) of exactly 32 bytes.
 * Returns why it is unusable instead of throwing, so callers word the error without the value.
 */
export function decodeKey(text: string): Buffer | string {
  const trimmed = text.trim();
  if (trimmed === '') return 'it is empty';
  if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(trimmed)) return 'it is not base64';
  const bytes = Buffer.from(trimmed.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  if (bytes.length !== KEY_BYTES) return `it decodes to ${bytes.length} bytes, not ${KEY_BYTES}`;
  return bytes;
}

/** A usable key from its 32 bytes; `id` defaults to the key's fingerprint. */
export function makeKey(material: Buffer, id?: string): EncryptionKey {
  const derive = (info: string, length: number) => Buffer.from(hkdfSync('sha256', material, Buffer.alloc(0), info, length));
  const fingerprint = FINGERPRINT_PREFIX + derive(INFO_ID, 6).toString('hex');
  return {
    id: id ?? fingerprint,
    fingerprint,
    legacyContentKey: derive(INFO_ENCRYPT, KEY_BYTES),
    rowKeySeed: derive(INFO_ROW_SEED, KEY_BYTES),
    hashKey: derive(INFO_HASH, 32),
  };
}

/** Length-prefixed fields, so ("ab","c") and ("a","bc") never encode alike. */
function encodeFields(label: string, fields: readonly (string | bigint)[]): Buffer {
  const parts: Buffer[] = [Buffer.from(label, 'utf8')];
  for (const field of fields) {
    const bytes = typeof field === 'bigint' ? bigEndian64(field) : Buffer.from(field, 'utf8');
    const length = Buffer.alloc(4);
    length.writeUInt32BE(bytes.length);
    parts.push(length, bytes);
  }
  return Buffer.concat(parts);
}

function bigEndian64(value: bigint): Buffer {
  const bytes = Buffer.alloc(8);
  bytes.writeBigUInt64BE(value);
  return bytes;
}

/** Additional authenticated data: a row moved to another session, name or generation fails to decrypt. */
export function aad(row: RowIdentity): Buffer {
  return encodeFields(AAD_LABEL, [row.sessionId, row.name, BigInt(row.generation)]);
}

/**
 * One way of sealing a row's content. Which one a stored row uses is recorded with it
 * (files.cipher_version, sql/0006), so rows of every format stay readable side by side and rekey
 * can find the ones not yet in the current format.
 */
export interface RowCipher {
  /** files.cipher_version of the rows it writes: null for format 1 (written before the column existed). */
  readonly stored: number | null;
  /** The value stored in files.content for `plaintext`, bound to `row`. */
  seal(key: EncryptionKey, row: RowIdentity, plaintext: Buffer): Buffer;
  /** The plaintext, or null when the key is wrong or anything of the row (content, session, name, generation) was altered. */
  open(key: EncryptionKey, row: RowIdentity, stored: Buffer): Buffer | null;
}

/**
 * Format 1, as written before format 2 existed: nonce ‖ ciphertext ‖ tag under the key's one
 * content subkey, shared by every session. Read-only in normal operation: its random nonces cap a
 * key at 2^32 rows (NIST SP 800-38D, 8.3).
 */
export const LEGACY_CIPHER: RowCipher = {
  stored: null,
  seal: (key, row, plaintext) => gcmSeal(key.legacyContentKey, aad(row), plaintext),
  open: (key, row, stored) => gcmOpen(key.legacyContentKey, aad(row), stored),
};

/**
 * Format 2: salt ‖ nonce ‖ ciphertext ‖ tag, where the AES-256-GCM key is rowKey(key, session, salt)
 * for a fresh random salt. Each AES key encrypts one row, so GCM's per-key limit on random nonces
 * never comes into play; the cost is one HKDF (two HMAC-SHA-256) and SALT_BYTES per row.
 */
export const ROW_KEY_CIPHER: RowCipher = {
  stored: 2,
  seal(key, row, plaintext) {
    const salt = randomBytes(SALT_BYTES);
    return Buffer.concat([salt, gcmSeal(rowKey(key, row.sessionId, salt), aad(row), plaintext)]);
  },
  open(key, row, stored) {
    if (stored.length < SALT_BYTES) return null;
    const salt = stored.subarray(0, SALT_BYTES);
    return gcmOpen(rowKey(key, row.sessionId, salt), aad(row), stored.subarray(SALT_BYTES));
  },
};

/** The format new rows are written in. */
export const CURRENT_CIPHER = ROW_KEY_CIPHER;

const CIPHERS: readonly RowCipher[] = [LEGACY_CIPHER, ROW_KEY_CIPHER];

/** The format a stored row names in files.cipher_version (null: format 1), or null for one this version does not know. */
export function cipherOf(stored: number | null): RowCipher | null {
  return CIPHERS.find((cipher) => cipher.stored === stored) ?? null;
}

/**
 * Format 2's AES-256 key of one row: HKDF-SHA-256 (RFC 5869) with the key's row-key seed as input
 * keying material, the row's random salt as salt and (label, session id) as info. Deterministic in
 * (key, session, salt); distinct sessions or salts give independent keys.
 */
export function rowKey(key: EncryptionKey, sessionId: string, salt: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', key.rowKeySeed, salt, encodeFields(INFO_ROW_KEY, [sessionId]), KEY_BYTES));
}

/** nonce ‖ ciphertext ‖ tag under `aesKey`, with a random nonce. */
function gcmSeal(aesKey: Buffer, additionalData: Buffer, plaintext: Buffer): Buffer {
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv('aes-256-gcm', aesKey, nonce, { authTagLength: TAG_BYTES });
  cipher.setAAD(additionalData);
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([nonce, body, cipher.getAuthTag()]);
}

/** The plaintext of gcmSeal's output, or null when it does not authenticate. */
function gcmOpen(aesKey: Buffer, additionalData: Buffer, stored: Buffer): Buffer | null {
  if (stored.length < NONCE_BYTES + TAG_BYTES) return null;
  const nonce = stored.subarray(0, NONCE_BYTES);
  const tag = stored.subarray(stored.length - TAG_BYTES);
  const body = stored.subarray(NONCE_BYTES, stored.length - TAG_BYTES);
  try {
    const decipher = createDecipheriv('aes-256-gcm', aesKey, nonce, { authTagLength: TAG_BYTES });
    decipher.setAAD(additionalData);
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(body), decipher.final()]);
  } catch {
    return null;
  }
}

/**
 * The change-detection hash of an encrypted row: HMAC-SHA-256 over (session, name, content) with the
 * key's hash subkey. Without the key it does not reveal the content, nor whether files of different
 * names or sessions are equal; it is deterministic per (session, name), though, so anyone who sees
 * the database can tell when a file returns to a value it had before.
 */
export function keyedHash(key: EncryptionKey, sessionId: string, name: string, content: Buffer): Buffer {
  return createHmac('sha256', key.hashKey)
    .update(encodeFields(AAD_LABEL, [sessionId, name]))
    .update(content)
    .digest();
}

/**
 * Authenticates a session's encryption marker, "encrypted since generation N": HMAC-SHA-256 over
 * (session, N) with the hash subkey, under a label no file hash uses.
 */
export function markerMac(key: EncryptionKey, sessionId: string, generation: number): Buffer {
  return createHmac('sha256', key.hashKey)
    .update(encodeFields(MARKER_LABEL, [sessionId, BigInt(generation)]))
    .digest();
}

export function sameDigest(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
