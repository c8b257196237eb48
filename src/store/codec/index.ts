// How a session's files become stored rows and back, and what its encryption marker allows: plaintext, or
// sealed under a key ring (AES-256-GCM, keyed hashes; src/crypto.ts). Every encryption decision of the store
// is made here, over values the store read; the codec runs no queries.
import { keyedHash, markerMac, type KeyRing } from '../../crypto.js';
import { maskJid } from '../../creds.js';
import type { IntegrityError } from '../../errors.js';
import { sha256 } from '../../snapshot.js';
import {
  checkRekey,
  markerState,
  noKeyForEncrypted,
  readRule,
  strippedOrNeverEncrypted,
  type EncryptionMarker,
  type MarkerFacts,
  type MarkerState,
} from './marker.js';
import {
  missingKeyError,
  openRow,
  RowKeyMissing,
  sealRow,
  storedMatches,
  type PlainFile,
  type PlaintextRule,
  type RowFailure,
  type SealedRow,
  type StoredDigest,
  type StoredRow,
} from './rows.js';

export type { EncryptionMarker, MarkerFacts, MarkerState, PlainFile, PlaintextRule, RowFailure, SealedRow, StoredDigest, StoredRow };
export { hintsOf } from './rows.js';

export interface CodecOptions {
  /** KEEPER_REQUIRE_ENCRYPTION: reading a plaintext row is an integrity failure (sealed codecs only). */
  requireEncryption?: boolean;
}

/** Plaintext rows with their sha256, or sealed rows under `keys` (the first key seals new rows). */
export class RowCodec {
  private readonly required: boolean;

  private constructor(
    private readonly keys: KeyRing | null,
    options: CodecOptions,
  ) {
    this.required = options.requireEncryption ?? false;
  }

  /** Stores rows in plaintext (no key configured); `requireEncryption` still refuses plaintext on read. */
  static plaintext(options: CodecOptions = {}): RowCodec {
    return new RowCodec(null, options);
  }

  /** Seals new rows under `keys`' writer key; opens rows under any key of the ring. */
  static sealed(keys: KeyRing, options: CodecOptions = {}): RowCodec {
    return new RowCodec(keys, options);
  }

  /** sealed(keys) or plaintext() as configured (`keys` null: none). */
  static of(keys: KeyRing | null, options: CodecOptions = {}): RowCodec {
    return new RowCodec(keys, options);
  }

  /** What the marker `facts` of session `sessionId` allow (see markerState). */
  marker(sessionId: string, facts: MarkerFacts): MarkerState {
    return markerState(this.keys, sessionId, facts);
  }

  /** Where plaintext rows may be read from, for a session whose marker is in `state`. */
  readRule(state: MarkerState): PlaintextRule {
    return readRule(this.required, state);
  }

  /**
   * True when a backup of the session now starts its encryption (a sealed codec, a session never written
   * encrypted): it re-stores the plaintext head sealed and writes newMarker(). Throws IntegrityError, before
   * anything is written, when encryption is required and the session holds plaintext rows without a marker
   * (`plaintextRowsExist` is asked only then).
   */
  async startsEncryption(sessionId: string, state: MarkerState, plaintextRowsExist: () => Promise<boolean>): Promise<boolean> {
    const starts = this.wouldStartEncryption(state);
    if (starts && this.required && (await plaintextRowsExist())) throw strippedOrNeverEncrypted(sessionId);
    return starts;
  }

  /**
   * Whether a head row stored under `keyId` (null: plaintext) is kept as it is by a backup under this codec:
   * sealed under a key of the ring, or plaintext with no key configured and none required. False when a
   * backup would re-store it (a plaintext row under a sealed codec), refuse it (a key not configured) or
   * fail on it (plaintext where encryption is required): such a session is not trusted by metadata alone.
   */
  keepsRow(keyId: string | null): boolean {
    if (this.keys) return keyId !== null && this.keys.find(keyId) !== null;
    return keyId === null && !this.required;
  }

  /** Whether a backup of a session whose marker is in `state` starts its encryption (see startsEncryption). */
  wouldStartEncryption(state: MarkerState): boolean {
    return this.keys !== null && state.neverEncrypted;
  }

  /** Throws IntegrityError when the session is stored encrypted and no key is configured: a backup would store plaintext over it. */
  checkBackupKey(sessionId: string, state: MarkerState): void {
    if (!this.keys && !state.neverEncrypted) throw noKeyForEncrypted(sessionId, state);
  }

  /** The row to store for `file`, written at `generation`. */
  seal(sessionId: string, generation: number, file: PlainFile): SealedRow {
    return sealRow(this.keys, sessionId, generation, file);
  }

  /** The plaintext of `row` after every check (safe name, decryption, size, digest, `rule`), or why it fails. */
  open(sessionId: string, row: StoredRow, rule?: PlaintextRule): { content: Buffer } | RowFailure {
    return openRow(this.keys, sessionId, row, rule);
  }

  /**
   * True when `file` is what `stored` holds (false: it must be stored; a plaintext row under a sealed codec
   * is stored again, sealed). Throws IntegrityError when the row is under a key id not configured.
   */
  isStored(sessionId: string, file: PlainFile, stored: StoredDigest | undefined): boolean {
    if (!stored) return false;
    try {
      return storedMatches(this.keys, sessionId, file.name, file.content, stored);
    } catch (error) {
      if (error instanceof RowKeyMissing) throw this.missingKey(`session ${sessionId}`, [error.keyId]);
      throw error;
    }
  }

  /** Every digest a stored version of `file` can carry: its sha256, or its keyed hash under any configured key. */
  digests(sessionId: string, file: PlainFile): Buffer[] {
    return [sha256(file.content), ...(this.keys?.keys ?? []).map((key) => keyedHash(key, sessionId, file.name, file.content))];
  }

  /** The jid to store for the head's creds.json: sealed sessions keep only the masked number (all output masks it anyway). */
  storedJid(jid: string | null): string | null {
    return jid !== null && this.keys ? maskJid(jid) : jid;
  }

  /** "Encrypted since `generation`", authenticated under the writer key (a sealed codec only). */
  newMarker(sessionId: string, generation: number): EncryptionMarker {
    const key = this.ring().writer;
    return { generation, keyId: key.id, mac: markerMac(key, sessionId, generation) };
  }

  /**
   * The marker at the end of a rekey: with no plaintext left none can be genuine any more, so it drops to 1;
   * otherwise it keeps its generation. Either way it is authenticated under the newest key, so the old key can
   * go; null when the session has none to re-authenticate.
   */
  markerAfterRekey(sessionId: string, state: MarkerState, plaintextLeft: boolean): EncryptionMarker | null {
    if (!plaintextLeft) return this.newMarker(sessionId, 1);
    return state.marker ? this.newMarker(sessionId, state.marker.generation) : null;
  }

  /**
   * What rekey seals to (the writer key id and cipher format), after checking the session may be rekeyed
   * (see marker.checkRekey). Throws Error without keys (the rekey command requires them).
   */
  rekeyTarget(sessionId: string, state: MarkerState): { keyId: string; cipherVersion: number | null } {
    const keys = this.ring();
    checkRekey(keys, sessionId, state);
    return { keyId: keys.writer.id, cipherVersion: keys.cipher.stored };
  }

  /** The IntegrityError (exit 4) for `what`, stored under key ids `keyIds` not configured. */
  missingKey(what: string, keyIds: string[]): IntegrityError {
    return missingKeyError(this.keys, what, keyIds);
  }

  private ring(): KeyRing {
    if (!this.keys) throw new Error('this needs encryption keys (KEEPER_ENCRYPTION_KEY / _FILE / KEEPER_ENCRYPTION_KEYS)');
    return this.keys;
  }
}
