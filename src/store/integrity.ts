// Checking and re-sealing everything stored of a session: verify reads every retained version, rekey
// re-encrypts them under the newest key (docs/security.md "Key rotation").
import { hasVersions, reencryptVersions, versionsNotSealedWith } from '../db/queries/files.js';
import { getSessionWithMarker, lockSession, setEncryptionMarker, setRegisteredJid } from '../db/queries/sessions.js';
import { IntegrityError } from '../errors.js';
import { everyVersion } from './points.js';
import { noSession } from './sessions.js';
import type { StoreContext, VerifyFailure } from './types.js';

/** Stored versions re-encrypted per rekey transaction. */
export const REKEY_BATCH_ROWS = 200;

/**
 * Recomputes the checksum of every retained version of every file (`pageSize` versions per read); returns how
 * many were checked and what failed (the encryption marker as name ''). NothingToRestoreError when the session
 * does not exist.
 */
export async function verify(
  ctx: StoreContext,
  sessionId: string,
  pageSize = 500,
): Promise<{ checked: number; failures: VerifyFailure[] }> {
  const session = await getSessionWithMarker(ctx.db, sessionId);
  if (!session) throw noSession(sessionId);
  const marker = ctx.codec.marker(sessionId, session);
  const failures: VerifyFailure[] = [];
  if (marker.problem) failures.push({ name: '', generationFrom: null, reason: marker.problem, missingKey: marker.missingKey });
  let checked = 0;
  const rule = ctx.codec.readRule(marker);
  for await (const version of everyVersion(ctx.db, sessionId, pageSize)) {
    const opened = ctx.codec.open(sessionId, version, rule);
    if ('reason' in opened)
      failures.push({
        name: version.name,
        generationFrom: version.generationFrom,
        reason: opened.reason,
        missingKey: opened.missingKey,
        hint: opened.hint,
      });
    checked++;
  }
  return { checked, failures };
}

/**
 * Re-encrypts every retained version of the session that is not under the newest (writing) key in the
 * current cipher format (src/crypto.ts; format-1 rows under that key too), plaintext ones included,
 * `batchRows` per transaction. Each row is checked before it is re-encrypted (a tampered row is never
 * laundered into a valid one) and every row is valid under some configured key at every moment, so a
 * restore works at any point of a rekey, and an interrupted rekey is simply run again. Backups of the
 * session wait for each batch (it locks the session row). Returns the versions rewritten and the key id.
 * Throws NothingToRestoreError (no such session), RefusedError (never encrypted), IntegrityError (a row or
 * the marker fails its check; what was rewritten before stays valid).
 */
export async function rekey(
  ctx: StoreContext,
  sessionId: string,
  batchRows = REKEY_BATCH_ROWS,
): Promise<{ rewritten: number; keyId: string }> {
  const { codec } = ctx;
  let rewritten = 0;
  let keyId = '';
  let after: { name: string; generationFrom: number } | null = null;
  for (;;) {
    const page = await ctx.db.transaction(async (tx) => {
      const session = await lockSession(tx, sessionId);
      if (!session) throw noSession(sessionId);
      const marker = codec.marker(sessionId, session);
      const target = codec.rekeyTarget(sessionId, marker);
      keyId = target.keyId;
      if (after === null && session.registeredJid !== null) await setRegisteredJid(tx, sessionId, codec.storedJid(session.registeredJid));
      const rows = await versionsNotSealedWith(tx, sessionId, target, after, batchRows);
      const updates = rows.map((row) => {
        // Plaintext is re-encrypted only where it is the session's history from before encryption.
        const opened = codec.open(sessionId, row, codec.readRule(marker));
        if ('reason' in opened) {
          if (opened.missingKey) throw codec.missingKey(`session ${sessionId}`, [opened.missingKey]);
          throw new IntegrityError(
            `cannot rekey session ${sessionId}: the version of generation ${row.generationFrom} failed its check: ${opened.reason}. ` +
              `${rewritten} versions were re-encrypted before it and stay valid; ` +
              `run 'baileys-keeper verify', then restore or delete the damaged history`,
          );
        }
        const sealed = codec.seal(sessionId, row.generationFrom, { name: row.name, content: opened.content });
        return {
          name: row.name,
          generationFrom: row.generationFrom,
          content: sealed.content,
          digest: sealed.sha256,
          keyId: sealed.keyId!,
          cipherVersion: sealed.cipherVersion,
        };
      });
      await reencryptVersions(tx, sessionId, updates);
      return rows;
    });
    rewritten += page.length;
    const last = page.at(-1);
    if (!last || page.length < batchRows) break;
    after = { name: last.name, generationFrom: last.generationFrom };
  }
  await ctx.db.transaction(async (tx) => {
    const session = await lockSession(tx, sessionId);
    if (!session) return; // deleted meanwhile: nothing left to authenticate
    const marker = codec.markerAfterRekey(sessionId, codec.marker(sessionId, session), await hasVersions(tx, sessionId, false));
    if (marker) await setEncryptionMarker(tx, sessionId, marker);
  });
  return { rewritten, keyId };
}
