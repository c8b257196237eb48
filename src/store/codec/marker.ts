// A session's encryption marker (sql/0003): the generation from which on it is written encrypted, authenticated
// under a key. It decides where plaintext rows may be trusted, and refuses a write that would hide a stripped
// session. Pure rules over what the store read: no queries here.
import { markerMac, sameDigest, type KeyRing } from '../../crypto.js';
import { IntegrityError, RefusedError } from '../../errors.js';
import { missingKeyError, PLAINTEXT_ANYWHERE, plaintextNowhere, type PlaintextRule } from './rows.js';

/** "Encrypted since `generation`", authenticated under key `keyId` (the sessions row's encrypted_since* columns). */
export interface EncryptionMarker {
  generation: number;
  keyId: string;
  mac: Buffer;
}

/** What the marker rules read from the sessions row (src/db/queries/sessions.ts, lockSession). */
export interface MarkerFacts {
  /** The stored marker; null when it has none or only a part of one. */
  marker: EncryptionMarker | null;
  /** Whether encrypted rows exist (needed only without a marker). */
  hasEncryptedRows: boolean;
}

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
 * The session's marker and what it allows under `keys` (null: none configured). Once a session is written
 * encrypted, a plaintext row is genuine only as history from before that; without the marker's key (or
 * without any key) nothing else tells a genuine plaintext row from one written by hand.
 */
export function markerState(keys: KeyRing | null, sessionId: string, facts: MarkerFacts): MarkerState {
  const broken = (problem: string, missingKey: string | null = null): MarkerState => ({
    // No plaintext row is trusted; encrypted rows still authenticate themselves.
    rule: { until: 0, because: `the encryption marker of session ${sessionId} ${problem}` },
    problem: `the encryption marker of session ${sessionId} ${problem}; plaintext rows of it are not trusted`,
    missingKey,
    marker: null,
    neverEncrypted: false,
  });
  const marker = facts.marker;
  if (marker === null) {
    if (!facts.hasEncryptedRows) return { rule: PLAINTEXT_ANYWHERE, problem: null, missingKey: null, marker: null, neverEncrypted: true };
    return broken('is missing although encrypted rows exist (removed by someone with database access)');
  }
  const valid: MarkerState = {
    rule: { until: marker.generation, because: `session ${sessionId} is encrypted since generation ${marker.generation}` },
    problem: null,
    missingKey: null,
    marker,
    neverEncrypted: false,
  };
  if (!keys) return valid;
  const key = keys.find(marker.keyId);
  if (!key) return broken(`is authenticated with key id ${marker.keyId}, which is not configured`, marker.keyId);
  if (!sameDigest(markerMac(key, sessionId, marker.generation), marker.mac))
    return broken('does not verify (altered by someone with database access)');
  return valid;
}

/**
 * Where plaintext rows may be read from (restore, export, verify, rekey): the marker's rule, or nowhere
 * under KEEPER_REQUIRE_ENCRYPTION (`required`). A broken marker's own refusal says more, so it stays.
 * rekey follows it too: under the setting a plaintext row cannot be told from a forged one, and
 * re-encrypting it would make it authentic.
 */
export function readRule(required: boolean, marker: MarkerState): PlaintextRule {
  if (!required) return marker.rule;
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

/** The IntegrityError for starting encryption, under KEEPER_REQUIRE_ENCRYPTION, over plaintext rows without a marker. */
export function strippedOrNeverEncrypted(sessionId: string): IntegrityError {
  // Plaintext rows without a marker are either a session never encrypted or one stripped to plaintext in
  // the database; starting encryption over them would make the latter look genuine.
  return new IntegrityError(
    `session ${sessionId} is stored in plaintext (no encryption marker, no encrypted row) and KEEPER_REQUIRE_ENCRYPTION is on, ` +
      'so nothing was written. ' +
      'If it was never encrypted, encrypt it without KEEPER_REQUIRE_ENCRYPTION first ' +
      '(one backup with the key, then rekey, then verify); ' +
      'if it was encrypted, someone with database access replaced its rows: ' +
      'delete it (baileys-keeper delete --yes) and import a good export, or restore the database from a backup',
  );
}

/** The IntegrityError for a backup without keys over a session stored encrypted: it would store plaintext over it. */
export function noKeyForEncrypted(sessionId: string, marker: MarkerState): IntegrityError {
  const which = marker.marker ? ` since generation ${marker.marker.generation} (key id ${marker.marker.keyId})` : '';
  return new IntegrityError(
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
export function checkRekey(keys: KeyRing | null, sessionId: string, marker: MarkerState): void {
  if (marker.missingKey) throw missingKeyError(keys, `session ${sessionId} (its encryption marker)`, [marker.missingKey]);
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
