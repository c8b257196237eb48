// Encryption at rest: AES-256-GCM for stored file contents and a keyed hash (HMAC-SHA-256) for change
// detection, so that neither the contents nor plaintext hashes of them are in the database.
//
// Every configured key (32 random bytes) is split with HKDF-SHA-256 into independent subkeys: one
// encrypts, one keys the change-detection hash, one names the key (its fingerprint id). Nothing here
// logs or formats key bytes; errors name key ids only.
import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';

export const KEY_BYTES = 32;
/** GCM nonce: 96 random bits per stored row (NIST SP 800-38D's recommended size). */
export const NONCE_BYTES = 12;
export const TAG_BYTES = 16;
/** Explicit key ids in KEEPER_ENCRYPTION_KEYS (they are stored with every row). */
export const KEY_ID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;
/** Ids derived from the key itself start with this; see keyFingerprint. */
export const FINGERPRINT_PREFIX = 'fp-';

// HKDF "info" labels: one per purpose, versioned, so a subkey can never be used for another job.
const INFO_ENCRYPT = 'baileys-keeper v1 content encryption';
const INFO_HASH = 'baileys-keeper v1 change-detection hash';
const INFO_ID = 'baileys-keeper v1 key fingerprint';
const AAD_LABEL = 'baileys-keeper v1 file';
const MARKER_LABEL = 'baileys-keeper v1 encrypted since';

export interface EncryptionKey {
  /** The id stored with each row this key encrypts. */
  readonly id: string;
  /** The id derived from the key bytes (equal to id for the single-key forms). */
  readonly fingerprint: string;
  readonly encryptKey: Buffer;
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

  constructor(readonly keys: readonly EncryptionKey[]) {
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
  return { id: id ?? fingerprint, fingerprint, encryptKey: derive(INFO_ENCRYPT, KEY_BYTES), hashKey: derive(INFO_HASH, 32) };
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

/** nonce ‖ ciphertext ‖ tag, as stored in files.content. */
export function encrypt(key: EncryptionKey, row: RowIdentity, plaintext: Buffer): Buffer {
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key.encryptKey, nonce, { authTagLength: TAG_BYTES });
  cipher.setAAD(aad(row));
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([nonce, body, cipher.getAuthTag()]);
}

/** The plaintext, or null when the key is wrong or anything of the row (content, session, name, generation) was altered. */
export function decrypt(key: EncryptionKey, row: RowIdentity, stored: Buffer): Buffer | null {
  if (stored.length < NONCE_BYTES + TAG_BYTES) return null;
  const nonce = stored.subarray(0, NONCE_BYTES);
  const tag = stored.subarray(stored.length - TAG_BYTES);
  const body = stored.subarray(NONCE_BYTES, stored.length - TAG_BYTES);
  try {
    const decipher = createDecipheriv('aes-256-gcm', key.encryptKey, nonce, { authTagLength: TAG_BYTES });
    decipher.setAAD(aad(row));
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
