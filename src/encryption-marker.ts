// A session's encryption marker (sql/0003): the generation from which on it is written encrypted, authenticated
// under a key. It decides where plaintext rows may be trusted, and refuses a write that would hide a stripped session.
import { markerMac, sameDigest, type KeyRing } from './crypto.js';
import type { Queryable } from './db/pool.js';
import { hasVersions } from './db/queries/files.js';
import { getEncryptionMarker, setEncryptionMarker, type EncryptionMarker } from './db/queries/sessions.js';
import { IntegrityError, RefusedError } from './errors.js';
import { missingKeyError, PLAINTEXT_ANYWHERE, plaintextNowhere, type PlaintextRule } from './rows.js';

/** What a session's encryption marker allows, and what is wrong with it. */
export interface MarkerState {
  /** Where plaintext rows may be. */
  rule: PlaintextRule;
  /** The marker is missing while encrypted rows exist, altered, or under a key not configured. */
  problem: string | null;
  missingKey: string | null;
  /** The stored marker when it verifies (or cannot be checked, without keys). */
  marker: EncryptionMarker | null;
  /** No marker and no encrypted row: the session has never been written encrypted. */
  neverEncrypted: boolean;
}

/**
 * The marker rules under one keeper's keys (null: none configured) and its KEEPER_REQUIRE_ENCRYPTION
 * setting (`requireEncryption`: reading a plaintext row is an integrity failure).
 */
export class EncryptionMarkers {
  constructor(
    private readonly keys: KeyRing | null,
    private readonly requireEncryption: boolean,
  ) {}

  /**
   * The session's encryption marker and what it allows. Once a session is written encrypted, a
   * plaintext row is genuine only as history from before that; without the marker's key (or
   * without any key) nothing else tells a genuine plaintext row from one written by hand.
   */
  async state(q: Queryable, sessionId: string): Promise<MarkerState> {
    const marker = await getEncryptionMarker(q, sessionId);
    const broken = (problem: string, missingKey: string | null = null): MarkerState => ({
      // No plaintext row is trusted; encrypted rows still authenticate themselves.
      rule: { until: 0, because: `the encryption marker of session ${sessionId} ${problem}` },
      problem: `the encryption marker of session ${sessionId} ${problem}; plaintext rows of it are not trusted`,
      missingKey,
      marker: null,
      neverEncrypted: false,
    });
    if (marker === null) {
      if (!(await hasVersions(q, sessionId, true))) {
        return { rule: PLAINTEXT_ANYWHERE, problem: null, missingKey: null, marker: null, neverEncrypted: true };
      }
      return broken('is missing although encrypted rows exist (removed by someone with database access)');
    }
    const valid: MarkerState = {
      rule: { until: marker.generation, because: `session ${sessionId} is encrypted since generation ${marker.generation}` },
      problem: null,
      missingKey: null,
      marker,
      neverEncrypted: false,
    };
    if (!this.keys) return valid;
    const key = this.keys.find(marker.keyId);
    if (!key) return broken(`is authenticated with key id ${marker.keyId}, which is not configured`, marker.keyId);
    if (!sameDigest(markerMac(key, sessionId, marker.generation), marker.mac)) {
      return broken('does not verify (altered by someone with database access)');
    }
    return valid;
  }

  /**
   * Where plaintext rows may be read from (restore, export, verify, rekey): the marker's rule, or nowhere
   * when encryption is required. A broken marker's own refusal says more, so it stays. rekey follows it
   * too: under the setting a plaintext row cannot be told from a forged one, and re-encrypting it would
   * make it authentic.
   */
  readRule(marker: MarkerState): PlaintextRule {
    if (!this.requireEncryption) return marker.rule;
    if (marker.problem) return plaintextNowhere(`Its plaintext rows are not trusted: ${marker.problem}.`);
    if (marker.neverEncrypted) {
      return plaintextNowhere(
        'The session has no encryption marker: either it was never encrypted ' +
          '(encrypt it first, without KEEPER_REQUIRE_ENCRYPTION: one backup with the key, rekey, verify), ' +
          'or someone with database access stripped it to plaintext (then do not: delete it and import a good export).',
      );
    }
    return plaintextNowhere(
      "Plaintext history from before encryption is encrypted by 'baileys-keeper rekey' run without KEEPER_REQUIRE_ENCRYPTION; " +
        'any other plaintext row was written by someone with database access.',
    );
  }

  /**
   * True when a backup of the session now starts its encryption (a key is configured and the session
   * was never written encrypted): it re-stores the plaintext head encrypted and then calls write().
   * Throws IntegrityError, before anything is written, when encryption is required and the session
   * holds plaintext rows without a marker.
   */
  async startsEncryption(tx: Queryable, sessionId: string, marker: MarkerState): Promise<boolean> {
    const starts = this.keys !== null && marker.neverEncrypted;
    if (starts && this.requireEncryption && (await hasVersions(tx, sessionId, false))) {
      // Under the setting a session is encrypted from its first backup. Plaintext rows without a
      // marker are either a session never encrypted or one stripped to plaintext in the database;
      // starting encryption over them would make the latter look genuine.
      throw new IntegrityError(
        `session ${sessionId} is stored in plaintext (no encryption marker, no encrypted row) and KEEPER_REQUIRE_ENCRYPTION is on, ` +
          'so nothing was written. ' +
          'If it was never encrypted, encrypt it without KEEPER_REQUIRE_ENCRYPTION first ' +
          '(one backup with the key, then rekey, then verify); ' +
          'if it was encrypted, someone with database access replaced its rows: ' +
          'delete it (baileys-keeper delete --yes) and import a good export, or restore the database from a backup',
      );
    }
    return starts;
  }

  /** Throws IntegrityError when the session is stored encrypted and no key is configured: a backup would store plaintext over it. */
  checkBackupKey(sessionId: string, marker: MarkerState): void {
    if (this.keys || marker.neverEncrypted) return;
    const which = marker.marker ? ` since generation ${marker.marker.generation} (key id ${marker.marker.keyId})` : '';
    throw new IntegrityError(
      `session ${sessionId} is stored encrypted${which}, and no key is configured: ` +
        'a backup would store plaintext over it, so nothing was written. ' +
        'Set KEEPER_ENCRYPTION_KEY / KEEPER_ENCRYPTION_KEY_FILE / KEEPER_ENCRYPTION_KEYS as the other keepers have it',
    );
  }

  /**
   * Throws unless rekey may re-encrypt the session: IntegrityError when its marker is under a key not
   * configured or damaged (rekey authenticates the marker anew at its end: over a damaged one that would
   * erase the evidence), RefusedError when it has never been backed up encrypted.
   */
  checkRekey(sessionId: string, marker: MarkerState): void {
    if (marker.missingKey) throw missingKeyError(this.keys, `session ${sessionId} (its encryption marker)`, [marker.missingKey]);
    if (marker.problem) {
      throw new IntegrityError(
        `cannot rekey session ${sessionId}: ${marker.problem}. ` +
          "Nothing was re-encrypted; run 'baileys-keeper verify' and restore the session from a good export",
      );
    }
    if (marker.neverEncrypted) {
      throw new RefusedError(
        `session ${sessionId} has never been backed up with encryption on: ` +
          "run 'baileys-keeper backup' with the key first (or let the sidecar back it up), " +
          'which stores the head encrypted; then rekey re-encrypts the older, plaintext history',
      );
    }
  }

  /** Records "encrypted since `generation`", authenticated under the writing key (keys must be configured). */
  async write(tx: Queryable, sessionId: string, generation: number): Promise<void> {
    const key = this.keys!.writer;
    await setEncryptionMarker(tx, sessionId, { generation, keyId: key.id, mac: markerMac(key, sessionId, generation) });
  }

  /**
   * At the end of a rekey (in a transaction holding the session row): with no plaintext left, no
   * plaintext row can be genuine any more, so the marker drops to 1. Either way it is authenticated
   * under the newest key, so the old key can go.
   */
  async writeAfterRekey(tx: Queryable, sessionId: string): Promise<void> {
    const marker = await this.state(tx, sessionId);
    if (!(await hasVersions(tx, sessionId, false))) await this.write(tx, sessionId, 1);
    else if (marker.marker) await this.write(tx, sessionId, marker.marker.generation);
  }
}
