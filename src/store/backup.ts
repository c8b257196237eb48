// Writing a session's history: one backup is one generation, written under the fence in ONE transaction
// (docs/reliability.md "Fenced generations"); a tombstone records that the session's directory was removed.
import { closeFiles, currentHashes, currentHashesOf, currentTotals, hasVersions, insertFiles } from '../db/queries/files.js';
import { getGeneration, insertGeneration } from '../db/queries/generations.js';
import {
  clearLoggedOut,
  setEncryptionMarker,
  setHead,
  setLoggedOut,
  setPendingPairing,
  type LockedSession,
} from '../db/queries/sessions.js';
import { CREDS_FILE } from '../creds.js';
import type { Queryable } from '../db/pool.js';
import { RefusedError } from '../errors.js';
import { describeRollback } from '../rollback.js';
import type { Snapshot } from '../snapshot.js';
import { diff, olderThanHead, plaintextHead } from './changes.js';
import { fenced } from './fence.js';
import { recordStamps } from './stamps.js';
import { headCreds, headCredsContent, judgeLogin } from './lifecycle.js';
import { LOGOUT_REASON, TOMBSTONE_REASON, type BackupOptions, type BackupResult, type Lease, type StoreContext } from './types.js';

/**
 * Stores what changed in `snapshot` as generation head+1 in ONE transaction, or nothing when nothing
 * changed. Refused (nothing written) when the directory is older than the head (never backwards), holds
 * another login than the head's, drops the head's login unseen (see BackupOptions.loginSeen) or brings a
 * logged-out login back, without `allowReplace` (src/store/lifecycle.ts). A login dropped while seen is
 * stored as a logout generation. Throws LeaseLostError, without writing, when
 * `options.lease` is no longer held; IntegrityError when the encryption rules forbid the write.
 */
export async function backup(ctx: StoreContext, sessionId: string, snapshot: Snapshot, options: BackupOptions): Promise<BackupResult> {
  const { codec } = ctx;
  return ctx.db.transaction(async (tx) => {
    const session = await fenced(tx, sessionId, options.lease);
    // With a scope (the sidecar's dirty names) only those hashes are read: cost follows the change.
    const stored = options.scope ? await currentHashesOf(tx, sessionId, [...options.scope]) : await currentHashes(tx, sessionId);
    const { changed, deleted } = diff(ctx, sessionId, stored, snapshot, options.scope ?? stored.keys());
    const marker = codec.marker(sessionId, session);
    // A changed creds.json is compared with the head's by the never-backwards check and the identity guard:
    // read once for both (creds.json changes often under a live bot).
    const headCreds =
      session.headGeneration > 0 && changed.some((file) => file.name === CREDS_FILE)
        ? await headCredsContent(ctx, tx, sessionId, marker)
        : undefined;
    // Never backwards (docs/reliability.md): a directory older than the head is refused, like another login.
    const change = { sessionId, headGeneration: session.headGeneration, changed, deleted, whole: !options.scope, headCreds };
    const rollback = ctx.allowRollback || options.allowRollback ? null : await olderThanHead(ctx, tx, change, marker);
    if (rollback)
      return {
        kind: 'refused',
        generation: session.headGeneration,
        refusal: 'rollback',
        reason:
          `${describeRollback(rollback, session.headGeneration)}. It was not backed up, so the newer stored login survives: ` +
          "stop the bot and run 'baileys-keeper restore' (it puts the head back and keeps this directory aside), " +
          'or pass --allow-rollback to store it as the new head',
      };
    // The first encrypted generation also re-stores, encrypted, every plaintext head file this
    // snapshot does not cover (out of scope, or held as torn): from it on, nothing visible is plaintext.
    const startsEncryption = await codec.startsEncryption(sessionId, marker, () => hasVersions(tx, sessionId, false));
    if (startsEncryption) changed.push(...(await plaintextHead(ctx, tx, sessionId, { changed, deleted }, codec.readRule(marker))));
    if (changed.length === 0 && deleted.length === 0) {
      // Nothing to store, but what was read is known now to be the head: its metadata is recorded.
      await recordStamps(tx, sessionId, snapshot, options.stamps, stored, new Set());
      return { kind: 'noop', generation: session.headGeneration };
    }
    codec.checkBackupKey(sessionId, marker);

    const login = await judgeLogin(ctx, tx, session, { changed, deleted }, marker, {
      allowReplace: options.allowReplace,
      login: options.login ?? null,
      headCreds,
    });
    if (login.pendingPairing !== undefined) await setPendingPairing(tx, sessionId, login.pendingPairing);
    // A refusal writes no generation; what it recorded above (a pending pairing) commits with it.
    if (login.kind === 'refused')
      return { kind: 'refused', generation: session.headGeneration, reason: login.reason, refusal: login.refusal };

    const generation = session.headGeneration + 1;
    const previous = session.headGeneration > 0 ? await getGeneration(tx, sessionId, session.headGeneration) : null;
    const closed = await closeFiles(tx, sessionId, [...changed.map((f) => f.name), ...deleted], generation);
    await insertFiles(
      tx,
      sessionId,
      generation,
      changed.map((file) => codec.seal(sessionId, generation, file)),
    );
    // Counted from the rows when the head's generation row is missing (damage, a manual fix): totals
    // carried over from nothing would make the new generation fail every later restore's check.
    const totals =
      session.headGeneration > 0 && !previous
        ? await currentTotals(tx, sessionId)
        : {
            files: (previous?.totalFiles ?? 0) - closed.files + changed.length,
            bytes: (previous?.totalBytes ?? 0) - closed.bytes + changed.reduce((sum, file) => sum + file.content.length, 0),
          };
    await insertGeneration(tx, sessionId, {
      generation,
      reason: login.logout ? LOGOUT_REASON : options.reason,
      filesChanged: changed.length,
      filesDeleted: deleted.length,
      totalFiles: totals.files,
      totalBytes: totals.bytes,
    });
    await recordStamps(tx, sessionId, snapshot, options.stamps, stored, new Set(changed.map((file) => file.name)));
    await setHead(tx, sessionId, generation, codec.storedJid(login.registeredJid));
    if (login.logout) await setLoggedOut(tx, sessionId, generation, login.logout.identity, 'seen');
    if (login.endsLogout) await clearLoggedOut(tx, sessionId);
    if (startsEncryption) await setEncryptionMarker(tx, sessionId, codec.newMarker(sessionId, generation));
    return {
      kind: 'success',
      generation,
      changed: changed.length,
      changedBytes: changed.reduce((sum, file) => sum + file.content.length, 0),
      deleted: deleted.length,
      totalFiles: totals.files,
      totalBytes: totals.bytes,
      registered: login.registeredJid !== null,
      event: login.event,
    };
  });
}

/**
 * Records that the session's directory was removed for good (docs/many-sessions.md): a tombstone
 * generation, reason TOMBSTONE_REASON, in which every file is deleted; the history before it is kept,
 * so `restore --generation N --force` can bring the session back. Not subject to the registered-session
 * guard (removing a customer's directory is the platform's decision). Nothing is written when the head
 * is a tombstone already. Throws LeaseLostError, without writing, when `lease` is no longer held.
 */
export async function tombstone(
  ctx: StoreContext,
  sessionId: string,
  lease: Lease,
): Promise<{ generation: number; deleted: number; written: boolean }> {
  return ctx.db.transaction(async (tx) => {
    const session = await fenced(tx, sessionId, lease);
    const head = session.headGeneration > 0 ? await getGeneration(tx, sessionId, session.headGeneration) : null;
    if (head?.reason === TOMBSTONE_REASON) return { generation: head.generation, deleted: 0, written: false };
    return { ...(await deleteEverything(tx, session, TOMBSTONE_REASON)), written: true };
  });
}

/**
 * Marks the session logged out by hand (SPEC "Session lifecycle", the `logout` command and API): a logout
 * generation, reason LOGOUT_REASON, in which every file is deleted, and the session recorded as logged out
 * (restore then writes no login; a backup of that same login is refused; a new pairing is stored). The
 * history keeps the login. Nothing is written when it is logged out already. Throws LeaseLostError when
 * `lease` is no longer held, RefusedError when the head holds no paired login.
 */
export async function logout(
  ctx: StoreContext,
  sessionId: string,
  lease: Lease,
): Promise<{ generation: number; deleted: number; written: boolean }> {
  return ctx.db.transaction(async (tx) => {
    const session = await fenced(tx, sessionId, lease);
    if (session.loggedOut) return { generation: session.loggedOut.generation, deleted: 0, written: false };
    if (session.registeredJid === null)
      throw new RefusedError(
        `session ${sessionId} holds no paired login (generation ${session.headGeneration}): there is nothing to log out`,
      );
    const creds = await headCreds(ctx, tx, sessionId, ctx.codec.marker(sessionId, session));
    const written = await deleteEverything(tx, session, LOGOUT_REASON);
    await setLoggedOut(tx, sessionId, written.generation, creds?.identity ?? null, 'hand');
    return { ...written, written: true };
  });
}

/** Writes generation head+1, with `reason`, deleting every current file; the head then holds no login. */
async function deleteEverything(tx: Queryable, session: LockedSession, reason: string): Promise<{ generation: number; deleted: number }> {
  const names = [...(await currentHashes(tx, session.sessionId)).keys()];
  const generation = session.headGeneration + 1;
  await closeFiles(tx, session.sessionId, names, generation);
  await insertGeneration(tx, session.sessionId, {
    generation,
    reason,
    filesChanged: 0,
    filesDeleted: names.length,
    totalFiles: 0,
    totalBytes: 0,
  });
  await setHead(tx, session.sessionId, generation, null);
  return { generation, deleted: names.length };
}
