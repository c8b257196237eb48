// Writing a session's history: one backup is one generation, written under the fence in ONE transaction
// (docs/reliability.md "Fenced generations"); a tombstone records that the session's directory was removed.
import { CREDS_FILE, maskJid, parseCreds } from '../creds.js';
import { closeFiles, currentHashes, currentHashesOf, currentTotals, hasVersions, insertFiles } from '../db/queries/files.js';
import { getGeneration, insertGeneration } from '../db/queries/generations.js';
import { setEncryptionMarker, setHead } from '../db/queries/sessions.js';
import { describeRollback } from '../rollback.js';
import type { Snapshot } from '../snapshot.js';
import { diff, olderThanHead, plaintextHead } from './changes.js';
import { fenced } from './fence.js';
import { TOMBSTONE_REASON, type BackupOptions, type BackupResult, type Lease, type StoreContext } from './types.js';

/**
 * Stores what changed in `snapshot` as generation head+1 in ONE transaction, or nothing when nothing
 * changed. Refused (nothing written) when the directory is older than the head (never backwards) or
 * drops a registered login without `allowReplace`. Throws LeaseLostError, without writing, when
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
    // Never backwards (docs/reliability.md): a directory older than the head is refused, like another login.
    const change = { sessionId, headGeneration: session.headGeneration, changed, deleted, whole: !options.scope };
    const rollback = ctx.allowRollback || options.allowRollback ? null : await olderThanHead(ctx, tx, change, marker);
    if (rollback)
      return {
        kind: 'refused',
        generation: session.headGeneration,
        reason:
          `${describeRollback(rollback, session.headGeneration)}. It was not backed up, so the newer stored login survives: ` +
          "stop the bot and run 'baileys-keeper restore' (it puts the head back and keeps this directory aside), " +
          'or pass --allow-rollback to store it as the new head',
      };
    // The first encrypted generation also re-stores, encrypted, every plaintext head file this
    // snapshot does not cover (out of scope, or held as torn): from it on, nothing visible is plaintext.
    const startsEncryption = await codec.startsEncryption(sessionId, marker, () => hasVersions(tx, sessionId, false));
    if (startsEncryption) changed.push(...(await plaintextHead(ctx, tx, sessionId, { changed, deleted }, codec.readRule(marker))));
    if (changed.length === 0 && deleted.length === 0) return { kind: 'noop', generation: session.headGeneration };
    codec.checkBackupKey(sessionId, marker);

    const credsChange = changed.find((file) => file.name === CREDS_FILE);
    const credsDeleted = deleted.includes(CREDS_FILE);
    const registeredJid = credsDeleted
      ? null
      : credsChange
        ? (parseCreds(credsChange.content.toString('utf8'))?.registeredJid ?? null)
        : session.registeredJid;
    if (session.registeredJid !== null && registeredJid === null && !options.allowReplace) {
      const what = credsDeleted ? 'has no creds.json' : 'holds a creds.json that is not registered (no QR scanned)';
      return {
        kind: 'refused',
        generation: session.headGeneration,
        reason:
          `the stored session is registered to ${maskJid(session.registeredJid)} but the directory ${what}; ` +
          'it was not backed up so the stored login survives. Restore it, or pass --allow-replace to overwrite it',
      };
    }

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
      reason: options.reason,
      filesChanged: changed.length,
      filesDeleted: deleted.length,
      totalFiles: totals.files,
      totalBytes: totals.bytes,
    });
    await setHead(tx, sessionId, generation, codec.storedJid(registeredJid));
    if (startsEncryption) await setEncryptionMarker(tx, sessionId, codec.newMarker(sessionId, generation));
    return {
      kind: 'success',
      generation,
      changed: changed.length,
      deleted: deleted.length,
      totalFiles: totals.files,
      totalBytes: totals.bytes,
      registered: registeredJid !== null,
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
    const names = [...(await currentHashes(tx, sessionId)).keys()];
    const generation = session.headGeneration + 1;
    await closeFiles(tx, sessionId, names, generation);
    await insertGeneration(tx, sessionId, {
      generation,
      reason: TOMBSTONE_REASON,
      filesChanged: 0,
      filesDeleted: names.length,
      totalFiles: 0,
      totalBytes: 0,
    });
    await setHead(tx, sessionId, generation, null);
    return { generation, deleted: names.length, written: true };
  });
}
