// The session store: backups as fenced generations, restore points, history, verification, leases.
import { CREDS_FILE, maskJid, parseCreds } from './creds.js';
import type { KeyRing } from './crypto.js';
import type { Database, Queryable } from './db/pool.js';
import {
  closeFiles,
  currentHashes,
  currentHashesOf,
  currentPlaintextVersions,
  currentTotals,
  deleteInvisibleFiles,
  fileVersionsPage,
  filesAt,
  insertFiles,
  reencryptVersions,
  versionsNotSealedWith,
  type FileVersion,
  type StoredDigest,
  type StoredFileVersion,
} from './db/queries/files.js';
import {
  databaseNow,
  deleteGenerations,
  generationAtTime,
  generationTimes,
  getGeneration,
  headFacts,
  insertGeneration,
  listGenerations,
  type GenerationRow,
  type HeadFacts,
} from './db/queries/generations.js';
import {
  acquireLease,
  deleteSession,
  ensureSession,
  setFolder,
  getSession,
  listSessions,
  lockSession,
  releaseLease,
  renewLease,
  renewLeases,
  setHead,
  setProtection,
  setRegisteredJid,
  type SessionSummary,
} from './db/queries/sessions.js';
import { EncryptionMarkers } from './encryption-marker.js';
import { IntegrityError, LeaseLostError, NothingToRestoreError, RefusedError } from './errors.js';
import { quoteName } from './names.js';
import {
  hintsOf,
  missingKeyError,
  openRow,
  RowKeyMissing,
  sealRow,
  storedMatches,
  type PlaintextRule,
  type PlainFile,
  type RowFailure,
} from './rows.js';
import { retainedGenerations, type RetentionPolicy } from './retention.js';
import type { Protection } from './protection.js';
import { describeRollback, findRollback, type RollbackFinding } from './rollback.js';
import type { Snapshot } from './snapshot.js';

export type { FileVersion, GenerationRow, PlainFile, SessionSummary };

/** The single-writer lease a backup must hold; its token fences off writers that lost it. */
export interface Lease {
  owner: string;
  token: number;
}

export interface BackupOptions {
  lease: Lease;
  allowReplace: boolean;
  /** Recorded with the generation: "backup", "import", "watch", "rescan", "shutdown", "api"… */
  reason: string;
  /**
   * Names the snapshot speaks for. null: the whole directory, so stored files absent from it are
   * deletions. A set: only those names (the sidecar's dirty set); others are left as stored.
   */
  scope?: ReadonlySet<string> | null;
  /**
   * Skip the never-backwards check for this backup (docs/reliability.md): the directory is known to be the
   * live bot's — its loop stored it, then a write from elsewhere (the session API) changed the head.
   */
  allowRollback?: boolean;
}

export type BackupResult =
  | { kind: 'success'; generation: number; changed: number; deleted: number; totalFiles: number; totalBytes: number; registered: boolean }
  | { kind: 'noop'; generation: number }
  | { kind: 'refused'; generation: number; reason: string };

export interface VerifyFailure {
  /** The file; '' for the session's encryption marker. */
  name: string;
  /** The generation that wrote the row; null for the encryption marker. */
  generationFrom: number | null;
  reason: string;
  /** The row is encrypted under a key id that is not configured. */
  missingKey: string | null;
  /** What to do about it (the same for every row it applies to). */
  hint?: string;
}

/** The reason of a tombstone generation: the session's directory was removed (docs/many-sessions.md). */
export const TOMBSTONE_REASON = 'removed';

/** Generations deleted per thinning transaction, and file versions deleted per transaction after them. */
const THIN_BATCH_GENERATIONS = 500;
const THIN_BATCH_FILES = 2_000;

export interface ThinResult {
  /** Generations and file versions deleted. */
  generations: number;
  files: number;
  /** Generations retained. */
  retained: number;
  /** Write transactions it took (each short and bounded). */
  transactions: number;
}

/** Stored versions re-encrypted per rekey transaction. */
const REKEY_BATCH_ROWS = 200;

export interface StoreOptions {
  /** KEEPER_REQUIRE_ENCRYPTION: reading a plaintext row is an integrity failure (needs `keys`). */
  requireEncryption?: boolean;
  /** --allow-rollback: store a directory older than the head (docs/reliability.md "Never backwards"). */
  allowRollback?: boolean;
}

export class SessionStore {
  private readonly markers: EncryptionMarkers;
  private readonly allowRollback: boolean;

  /** `keys`: encryption at rest (the first key encrypts new rows); null stores plaintext. */
  constructor(
    private readonly db: Database,
    private readonly keys: KeyRing | null = null,
    options: StoreOptions = {},
  ) {
    this.markers = new EncryptionMarkers(keys, options.requireEncryption ?? false);
    this.allowRollback = options.allowRollback ?? false;
  }

  /**
   * Stores what changed in `snapshot` as generation head+1 in ONE transaction, or nothing when
   * nothing changed. Throws LeaseLostError, without writing, when `lease` is no longer held.
   */
  async backup(sessionId: string, snapshot: Snapshot, options: BackupOptions): Promise<BackupResult> {
    const db = this.db;
    return db.transaction(async (tx) => {
      const session = await lockSession(tx, sessionId);
      if (!session || session.leaseOwner !== options.lease.owner || session.leaseToken !== options.lease.token || !session.leaseLive) {
        throw new LeaseLostError(
          `the lease on session ${sessionId} is no longer held by ` +
            `${options.lease.owner} (token ${options.lease.token}); nothing was written`,
        );
      }
      // With a scope (the sidecar's dirty names) only those hashes are read: cost follows the change.
      const stored = options.scope ? await currentHashesOf(tx, sessionId, [...options.scope]) : await currentHashes(tx, sessionId);
      const { changed, deleted } = this.diff(sessionId, stored, snapshot, options.scope ?? stored.keys());
      const marker = await this.markers.state(tx, sessionId);
      // Never backwards (docs/reliability.md): a directory older than the head is refused, like another login.
      const rollback =
        this.allowRollback || options.allowRollback
          ? null
          : await this.rollbackIn(tx, sessionId, session.headGeneration, changed, deleted, !options.scope, marker);
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
      const startsEncryption = await this.markers.startsEncryption(tx, sessionId, marker);
      if (startsEncryption) changed.push(...(await this.plaintextHead(tx, sessionId, changed, deleted, this.markers.readRule(marker))));
      if (changed.length === 0 && deleted.length === 0) return { kind: 'noop', generation: session.headGeneration };
      this.markers.checkBackupKey(sessionId, marker);

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
        changed.map((file) => sealRow(this.keys, sessionId, generation, file)),
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
      const [totalFiles, totalBytes] = [totals.files, totals.bytes];
      await insertGeneration(tx, sessionId, {
        generation,
        reason: options.reason,
        filesChanged: changed.length,
        filesDeleted: deleted.length,
        totalFiles,
        totalBytes,
      });
      await setHead(tx, sessionId, generation, this.storedJid(registeredJid));
      if (startsEncryption) await this.markers.write(tx, sessionId, generation);
      return {
        kind: 'success',
        generation,
        changed: changed.length,
        deleted: deleted.length,
        totalFiles,
        totalBytes,
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
  async tombstone(sessionId: string, lease: Lease): Promise<{ generation: number; deleted: number; written: boolean }> {
    return this.db.transaction(async (tx) => {
      const session = await lockSession(tx, sessionId);
      if (!session || session.leaseOwner !== lease.owner || session.leaseToken !== lease.token || !session.leaseLive)
        throw new LeaseLostError(
          `the lease on session ${sessionId} is no longer held by ${lease.owner} (token ${lease.token}); nothing was written`,
        );
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

  /**
   * Thins the session's history to what `policy` retains at `now` (default: the database's clock):
   * deletes the other generations, then every file version no retained generation can see. Runs in
   * short transactions of bounded size, each holding the session row only briefly, so backups keep
   * going; a backup that commits meanwhile is never touched (the head and anything newer are kept).
   * Safe to run concurrently and to interrupt: what is left is always consistent, and a later pass
   * with `sweepAll` reclaims the file versions an interrupted one left. `now`: the time to measure
   * ages against (default: the database's clock, which stamped the generations).
   */
  async thin(sessionId: string, policy: RetentionPolicy, options: { now?: Date; sweepAll?: boolean } = {}): Promise<ThinResult> {
    const db = this.db;
    const { at, dated } = await db.transaction(
      async (tx) => ({ at: options.now ?? (await databaseNow(tx)), dated: await generationTimes(tx, sessionId) }),
      'snapshot',
    );
    const retained = retainedGenerations(dated, policy, at);
    const doomed = dated
      .map((g) => g.generation)
      .filter((g) => !retained.has(g))
      .sort((a, b) => a - b);
    const result: ThinResult = { generations: 0, files: 0, retained: retained.size, transactions: 0 };
    if (doomed.length === 0 && !options.sweepAll) return result;
    for (let i = 0; i < doomed.length; i += THIN_BATCH_GENERATIONS) {
      const batch = doomed.slice(i, i + THIN_BATCH_GENERATIONS);
      result.transactions++;
      result.generations += await db.transaction(async (tx) => {
        // Serialised with backups of this session, which lock the same row, for a few milliseconds.
        await lockSession(tx, sessionId);
        return deleteGenerations(tx, sessionId, batch);
      });
    }
    for (;;) {
      result.transactions++;
      const deleted = await db.transaction(async (tx) => {
        await lockSession(tx, sessionId);
        // The versions this pass's deletions could have orphaned; sweepAll: any (an interrupted pass's too).
        const [low, high] = options.sweepAll || doomed.length === 0 ? [0, Number.MAX_SAFE_INTEGER] : [doomed[0]!, doomed.at(-1)!];
        return deleteInvisibleFiles(tx, sessionId, low, high, THIN_BATCH_FILES);
      });
      result.files += deleted;
      if (deleted < THIN_BATCH_FILES) return result;
    }
  }

  /**
   * The files of the point a restore or export should read — `generation`, the newest at or before
   * `at`, or the head — each checked (safe name, size, sha256) before anyone writes them to disk.
   * One snapshot transaction: a backup pruning concurrently cannot leave a partial set. null when the
   * session has no backup; NothingToRestoreError when an asked-for point is not retained.
   */
  async loadPoint(
    sessionId: string,
    point: { generation?: number | null; at?: Date | null },
  ): Promise<{ generation: GenerationRow; files: PlainFile[] } | null> {
    const db = this.db;
    return db.transaction(async (tx) => {
      let generation: GenerationRow | null;
      if (point.generation != null) {
        generation = await getGeneration(tx, sessionId, point.generation);
        if (!generation)
          throw new NothingToRestoreError(
            `generation ${point.generation} of session ${sessionId} is not retained; ${await retainedRange(tx, sessionId)}`,
          );
      } else if (point.at != null) {
        generation = await generationAtTime(tx, sessionId, point.at);
        if (!generation)
          throw new NothingToRestoreError(
            `session ${sessionId} has no retained generation at or before ${point.at.toISOString()}; ${await retainedRange(tx, sessionId)}`,
          );
      } else {
        const [facts] = await headFacts(tx, sessionId, '', true);
        const damage = facts ? headDamage(facts) : [];
        if (damage.length > 0) {
          // Never "no backup" (the bot would pair anew over a stored login), never a silent older point.
          throw new IntegrityError(
            `the head of session ${sessionId} does not add up: ${damage.join('; ')}. Nothing was written. ` +
              `${await this.olderVerifying(tx, sessionId, Number.MAX_SAFE_INTEGER, this.markers.readRule(await this.markers.state(tx, sessionId)))}` +
              ' (add --force when the directory holds a login); run baileys-keeper verify for the details',
          );
        }
        if (!facts || facts.headGeneration === 0) return null;
        generation = await getGeneration(tx, sessionId, facts.headGeneration);
        if (!generation) return null;
      }
      const rows = await filesAt(tx, sessionId, generation.generation);
      const rule = this.markers.readRule(await this.markers.state(tx, sessionId));
      const files: PlainFile[] = [];
      const failures: RowFailure[] = [];
      const seen = new Set<string>();
      for (const row of rows) {
        // Two versions of one name visible at once only come from edited validity ranges.
        if (seen.has(row.name))
          failures.push({
            reason:
              `${quoteName(row.name)}: stored twice in this generation (its ` +
              `validity ranges were edited by someone with database access)`,
            missingKey: null,
          });
        seen.add(row.name);
        const opened = openRow(this.keys, sessionId, row, rule);
        if ('reason' in opened) failures.push(opened);
        else files.push({ name: row.name, content: opened.content });
      }
      const missing = [...new Set(failures.map((f) => f.missingKey).filter((id): id is string => id !== null))];
      if (missing.length > 0) throw missingKeyError(this.keys, `generation ${generation.generation} of session ${sessionId}`, missing);
      if (failures.length > 0) {
        const reasons = failures.map((f) => f.reason);
        const hints = hintsOf(failures);
        throw new IntegrityError(
          `generation ${generation.generation} of session ${sessionId} failed its integrity check: ${reasons.slice(0, 5).join('; ')}` +
            `${reasons.length > 5 ? ` (and ${reasons.length - 5} more)` : ''}. Nothing was written. ` +
            `${hints.map((hint) => `${hint} `).join('')}${await this.olderVerifying(tx, sessionId, generation.generation, rule)}`,
        );
      }
      if (files.length !== generation.totalFiles) {
        throw new IntegrityError(
          `generation ${generation.generation} of session ${sessionId} should ` +
            `have ${generation.totalFiles} files but ${files.length} are stored. ` +
            `Nothing was written. ${await this.olderVerifying(tx, sessionId, generation.generation, rule)}`,
        );
      }
      return { generation, files };
    }, 'snapshot');
  }

  /**
   * Re-encrypts every retained version of the session that is not under the newest (writing) key in
   * the current cipher format (crypto.ts; format-1 rows under that key too), plaintext ones included, a
   * batch per transaction. Each row is checked before it is re-encrypted
   * (a tampered row is never laundered into a valid one) and every row is valid under some configured
   * key at every moment, so a restore works at any point of a rekey, and an interrupted rekey is
   * simply run again. Backups of the session wait for each batch (it locks the session row).
   */
  async rekey(sessionId: string, batchRows = REKEY_BATCH_ROWS): Promise<{ rewritten: number; keyId: string }> {
    const keys = this.keys;
    if (!keys) throw new Error('rekey needs encryption keys');
    const db = this.db;
    let rewritten = 0;
    let after: { name: string; generationFrom: number } | null = null;
    for (;;) {
      const page = await db.transaction(async (tx) => {
        const session = await lockSession(tx, sessionId);
        if (!session) throw new NothingToRestoreError(`no session named ${sessionId}; 'baileys-keeper status' lists them`);
        const marker = await this.markers.state(tx, sessionId);
        this.markers.checkRekey(sessionId, marker);
        if (after === null && session.registeredJid !== null) await setRegisteredJid(tx, sessionId, this.storedJid(session.registeredJid));
        const rows = await versionsNotSealedWith(
          tx,
          sessionId,
          { keyId: keys.writer.id, cipherVersion: keys.cipher.stored },
          after,
          batchRows,
        );
        const updates = rows.map((row) => {
          // Plaintext is re-encrypted only where it is the session's history from before encryption.
          const opened = openRow(keys, sessionId, row, this.markers.readRule(marker));
          if ('reason' in opened) {
            if (opened.missingKey) throw missingKeyError(keys, `session ${sessionId}`, [opened.missingKey]);
            throw new IntegrityError(
              `cannot rekey session ${sessionId}: the version of generation ${row.generationFrom} failed its check: ${opened.reason}. ` +
                `${rewritten} versions were re-encrypted before it and stay valid; ` +
                `run 'baileys-keeper verify', then restore or delete the damaged history`,
            );
          }
          const sealed = sealRow(keys, sessionId, row.generationFrom, { name: row.name, content: opened.content });
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
    await db.transaction(async (tx) => {
      await lockSession(tx, sessionId);
      await this.markers.writeAfterRekey(tx, sessionId);
    });
    return { rewritten, keyId: keys.writer.id };
  }

  /** Retained generations, newest first. */
  async history(sessionId: string, limit: number | null = null): Promise<GenerationRow[]> {
    await this.requireSession(sessionId);
    return listGenerations(this.db, sessionId, limit);
  }

  /** The database's clock, which stamps generations: retention ages are measured on it. */
  databaseNow(): Promise<Date> {
    return databaseNow(this.db);
  }

  /** One session with its head's totals, or null when it does not exist. */
  async summary(sessionId: string): Promise<SessionSummary | null> {
    return (await listSessions(this.db, sessionId))[0] ?? null;
  }

  /** Every session (or one, or those whose id starts with `prefix`) with its head's totals. */
  async status(sessionId: string | null, prefix = ''): Promise<SessionSummary[]> {
    const sessions = await listSessions(this.db, sessionId, prefix);
    if (sessionId !== null && sessions.length === 0)
      throw new NothingToRestoreError(`no session named ${sessionId}; 'baileys-keeper status' lists them`);
    return sessions;
  }

  /** Records the sessions-directory folder that mapped session `sessionId` is kept from (creating its row). */
  async recordFolder(sessionId: string, folder: string): Promise<void> {
    await setFolder(this.db, sessionId, folder);
  }

  /** Deletes the session and its whole history; refused while a writer holds its lease. */
  async delete(sessionId: string): Promise<void> {
    const db = this.db;
    await db.transaction(async (tx) => {
      const session = await lockSession(tx, sessionId);
      if (!session) throw new NothingToRestoreError(`no session named ${sessionId}; 'baileys-keeper status' lists them`);
      if (session.leaseLive) {
        throw new RefusedError(
          `session ${sessionId} is in use by ${session.leaseOwner} (lease until ` +
            `${session.leaseExpiresAt?.toISOString()}): stop that sidecar first`,
        );
      }
      await deleteSession(tx, sessionId);
    });
  }

  /**
   * Sessions (one, or every one with `prefix`) whose head does not add up (see headDamage), each with
   * what is wrong; sessions that add up are left out. `thorough` also scans every stored version for
   * generations past the head that only wrote files (costly over many sessions; see headFacts).
   */
  async headProblems(sessionId: string | null, prefix = '', thorough = false): Promise<Map<string, string[]>> {
    const damaged = new Map<string, string[]>();
    for (const facts of await headFacts(this.db, sessionId, prefix, thorough)) {
      const damage = headDamage(facts);
      if (damage.length > 0) damaged.set(facts.sessionId, damage);
    }
    return damaged;
  }

  /** Recomputes the checksum of every retained version of every file; returns what failed. */
  async verify(sessionId: string, pageSize = 500): Promise<{ checked: number; failures: VerifyFailure[] }> {
    await this.requireSession(sessionId);
    const marker = await this.markers.state(this.db, sessionId);
    const failures: VerifyFailure[] = [];
    if (marker.problem) failures.push({ name: '', generationFrom: null, reason: marker.problem, missingKey: marker.missingKey });
    let checked = 0;
    const rule = this.markers.readRule(marker);
    for await (const version of this.everyVersion(this.db, sessionId, pageSize)) {
      const opened = openRow(this.keys, sessionId, version, rule);
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

  /** Takes the session's lease (creating the session row if needed); null when another live holder has it. */
  async acquireLease(sessionId: string, owner: string, ttlMs: number): Promise<(Lease & { expiresAt: Date }) | null> {
    await ensureSession(this.db, sessionId);
    const taken = await acquireLease(this.db, sessionId, owner, ttlMs);
    return taken ? { owner, ...taken } : null;
  }

  async renewLease(sessionId: string, lease: Lease, ttlMs: number): Promise<Date | null> {
    return renewLease(this.db, sessionId, lease.owner, lease.token, ttlMs);
  }

  /**
   * Renews many of `owner`'s leases in one statement (a keeper of many sessions: docs/many-sessions.md).
   * Returns the session ids renewed; a lease missing from it was lost (expired and taken, or released).
   */
  async renewLeases(owner: string, leases: readonly { sessionId: string; token: number }[], ttlMs: number): Promise<Set<string>> {
    return renewLeases(this.db, owner, leases, ttlMs);
  }

  async releaseLease(sessionId: string, lease: Lease): Promise<boolean> {
    return releaseLease(this.db, sessionId, lease.owner, lease.token);
  }

  /**
   * Records the writer's measurement of the session's protection (`reasons` empty: protected), under
   * `lease`; false when the lease is no longer held (nothing written).
   */
  async recordProtection(sessionId: string, lease: Lease, protection: Protection): Promise<boolean> {
    const since = protection.since === null ? null : new Date(protection.since);
    return setProtection(this.db, sessionId, lease.owner, lease.token, protection.reasons, since);
  }

  /** Who holds the session's lease right now, or null. */
  async leaseHolder(sessionId: string): Promise<{ owner: string; expiresAt: Date } | null> {
    const session = await getSession(this.db, sessionId);
    return session?.leaseLive && session.leaseOwner && session.leaseExpiresAt
      ? { owner: session.leaseOwner, expiresAt: session.leaseExpiresAt }
      : null;
  }

  /** Every stored version of the session, a page at a time, in (name, generation_from) order. */
  private async *everyVersion(tx: Queryable, sessionId: string, pageSize = 500): AsyncGenerator<StoredFileVersion> {
    let after: { name: string; generationFrom: number } | null = null;
    for (;;) {
      const page = await fileVersionsPage(tx, sessionId, after, pageSize);
      yield* page;
      const last = page.at(-1);
      if (!last || page.length < pageSize) return;
      after = { name: last.name, generationFrom: last.generationFrom };
    }
  }

  /**
   * Whether `snapshot`, a whole directory read, is older than the session's head (docs/reliability.md
   * "Never backwards"), and what shows it; null when it is not, when it is another login, or when the
   * session has no head. Reads only; honours no --allow-rollback (the caller decides what to do).
   */
  async rollbackOf(sessionId: string, snapshot: Snapshot): Promise<{ finding: RollbackFinding; headGeneration: number } | null> {
    return this.db.transaction(async (tx) => {
      const session = await getSession(tx, sessionId);
      if (!session || session.headGeneration === 0) return null;
      const stored = await currentHashes(tx, sessionId);
      const { changed, deleted } = this.diff(sessionId, stored, snapshot, stored.keys());
      const marker = await this.markers.state(tx, sessionId);
      const finding = await this.rollbackIn(tx, sessionId, session.headGeneration, changed, deleted, true, marker);
      return finding ? { finding, headGeneration: session.headGeneration } : null;
    }, 'snapshot');
  }

  /** The snapshot's files that differ from `stored`, and the `considered` names it no longer holds. */
  private diff(
    sessionId: string,
    stored: ReadonlyMap<string, StoredDigest>,
    snapshot: Snapshot,
    considered: Iterable<string>,
  ): { changed: PlainFile[]; deleted: string[] } {
    const changed = [...snapshot.files.values()].filter((file) => !this.isStored(sessionId, file, stored.get(file.name)));
    const deleted = [...considered].filter((name) => stored.has(name) && !snapshot.files.has(name) && !snapshot.held.has(name));
    return { changed, deleted };
  }

  /** findRollback (src/rollback.ts) for `changed`/`deleted` over the head, reading stored rows by the session's rule. */
  private async rollbackIn(
    tx: Queryable,
    sessionId: string,
    headGeneration: number,
    changed: readonly PlainFile[],
    deleted: readonly string[],
    whole: boolean,
    marker: Awaited<ReturnType<EncryptionMarkers['state']>>,
  ): Promise<RollbackFinding | null> {
    const rule = this.markers.readRule(marker);
    return findRollback(tx, {
      sessionId,
      headGeneration,
      changed,
      deleted,
      whole,
      keys: this.keys,
      open: (version) => {
        const opened = openRow(this.keys, sessionId, version, rule);
        return 'reason' in opened ? null : opened.content;
      },
    });
  }

  /** False when `file` must be stored (new, changed, or plaintext while encryption is on). */
  private isStored(sessionId: string, file: PlainFile, stored: StoredDigest | undefined): boolean {
    if (!stored) return false;
    try {
      return storedMatches(this.keys, sessionId, file.name, file.content, stored);
    } catch (error) {
      if (error instanceof RowKeyMissing) throw missingKeyError(this.keys, `session ${sessionId}`, [error.keyId]);
      throw error;
    }
  }

  /** With encryption on, the database keeps only the masked phone number (all output masks it anyway). */
  private storedJid(jid: string | null): string | null {
    return jid !== null && this.keys ? maskJid(jid) : jid;
  }

  /**
   * Which older retained generation passes every check, for the message of a refused restore. One
   * pass over the stored versions: a generation verifies when none of the failing versions is visible
   * in it and as many versions are visible as it recorded files.
   */
  private async olderVerifying(tx: Queryable, sessionId: string, generation: number, rule: PlaintextRule): Promise<string> {
    const bad: StoredFileVersion[] = [];
    const spans: { generationFrom: number; generationTo: number | null }[] = [];
    for await (const version of this.everyVersion(tx, sessionId)) {
      spans.push({ generationFrom: version.generationFrom, generationTo: version.generationTo });
      if ('reason' in openRow(this.keys, sessionId, version, rule)) bad.push(version);
    }
    const visible = (version: { generationFrom: number; generationTo: number | null }, g: number) =>
      version.generationFrom <= g && (version.generationTo === null || version.generationTo > g);
    const older = (await listGenerations(tx, sessionId, null)).filter((row) => row.generation < generation);
    const good = older.find(
      (row) =>
        !bad.some((version) => visible(version, row.generation)) &&
        spans.filter((span) => visible(span, row.generation)).length === row.totalFiles,
    );
    return good
      ? `Generation ${good.generation} (${good.createdAt.toISOString()}) verifies: restore it with --generation ${good.generation}`
      : 'No older retained generation verifies: restore from an export, or pair again by QR';
  }

  /** The plaintext head files a backup does not already store again, checked, to re-store encrypted. */
  private async plaintextHead(
    tx: Queryable,
    sessionId: string,
    changed: PlainFile[],
    deleted: string[],
    rule: PlaintextRule,
  ): Promise<PlainFile[]> {
    const covered = new Set([...changed.map((file) => file.name), ...deleted]);
    const files: PlainFile[] = [];
    for (const row of await currentPlaintextVersions(tx, sessionId)) {
      if (covered.has(row.name)) continue;
      // The session's read rule: anywhere for a never-encrypted session, nowhere under the setting (the
      // backup refused a session with plaintext rows before this; a row that appeared since is refused too).
      const opened = openRow(this.keys, sessionId, row, rule);
      if ('reason' in opened) {
        throw new IntegrityError(
          `cannot start encrypting session ${sessionId}: its stored ${opened.reason}; nothing ` +
            `was written. Run 'baileys-keeper verify', then restore a good generation and back it up`,
        );
      }
      files.push({ name: row.name, content: opened.content });
    }
    return files;
  }

  private async requireSession(sessionId: string): Promise<void> {
    if (!(await getSession(this.db, sessionId))) {
      throw new NothingToRestoreError(`no session named ${sessionId}; 'baileys-keeper status' lists them`);
    }
  }
}

/**
 * What makes a session's head not add up, one phrase each; empty when it adds up. A backup moves the
 * head, writes its generation row and its file versions in one transaction, and thinning never deletes
 * the head's row, so a head without its row, a generation row past the head, or file versions written
 * or closed by a generation past the head only come from damage or a bad manual edit of the rows
 * (docs/reliability.md "A head that does not add up").
 */
export function headDamage(facts: HeadFacts): string[] {
  const head = facts.headGeneration;
  const damage: string[] = [];
  if (head > 0 && !facts.headRow) {
    if (facts.newestGeneration === null) damage.push(`its head generation ${head} has no row and no generation row is stored`);
    else if (facts.newestGeneration < head)
      damage.push(`its head generation ${head} has no row and is past the newest stored generation, ${facts.newestGeneration}`);
    else damage.push(`the row of its head generation ${head} is missing`);
  }
  if (facts.newestGeneration !== null && facts.newestGeneration > head)
    damage.push(`generation ${facts.newestGeneration} is stored past its head generation ${head}`);
  if (facts.newestWriting !== null && facts.newestWriting > head)
    damage.push(`file versions were written by generation ${facts.newestWriting}, past its head generation ${head}`);
  if (facts.newestClosing !== null && facts.newestClosing > head)
    damage.push(`file versions were replaced or deleted by generation ${facts.newestClosing}, past its head generation ${head}`);
  return damage;
}

async function retainedRange(tx: Queryable, sessionId: string): Promise<string> {
  const rows = await listGenerations(tx, sessionId, null);
  if (rows.length === 0) return 'it has no backup';
  const [oldest, newest] = [rows.at(-1)!, rows[0]!];
  const span = `(${oldest.createdAt.toISOString()} .. ${newest.createdAt.toISOString()})`;
  if (newest.generation - oldest.generation + 1 === rows.length)
    return `retained generations are ${oldest.generation}..${newest.generation} ${span}`;
  return (
    `${rows.length} generations between ${oldest.generation} and ${newest.generation} are ` +
    `retained ${span}, thinned by the retention schedule: 'baileys-keeper history' lists them`
  );
}

/** The public shape of a session's status (CLI --json and the API): phone masked, lease live only. */
export interface SessionStatusJson {
  session_id: string;
  generation: number;
  updated_at: string | null;
  files: number;
  bytes: number;
  registered: boolean;
  phone: string | null;
  lease_holder: string | null;
  /** SPEC "Protection": everything on disk is stored (as its writer measured it). */
  protected: boolean;
  /** Why not, when not protected (`not_watched` while no keeper holds the lease). */
  reasons: string[];
  /** Since when it has not been protected (ISO-8601), null when protected or unknown. */
  since: string | null;
  /** With --sessions-dir, the folder a mapped session id is kept from (absent when the id is the folder's name). */
  folder?: string;
}

/**
 * The public status of `s`. `live`: the protection this process measures itself (it is the session's
 * writer); otherwise what the writer recorded — and `not_watched` while no keeper holds the lease.
 */
export function sessionStatusJson(s: SessionSummary, live: Protection | null = null): SessionStatusJson {
  const protection = live
    ? { reasons: live.reasons as string[], since: live.since === null ? null : new Date(live.since).toISOString() }
    : !s.leaseLive || s.protectionReasons === null
      ? {
          reasons: ['not_watched'],
          // Unwatched since it was last unprotected, or since the last keeper's lease ran out (or was released).
          since: s.leaseLive ? null : (s.protectionSince ?? s.leaseExpiresAt ?? s.updatedAt).toISOString(),
        }
      : { reasons: s.protectionReasons, since: s.protectionSince?.toISOString() ?? null };
  return {
    session_id: s.sessionId,
    generation: s.headGeneration,
    updated_at: s.lastBackupAt?.toISOString() ?? null,
    files: s.files,
    bytes: s.bytes,
    registered: s.registeredJid !== null,
    phone: s.registeredJid === null ? null : maskJid(s.registeredJid),
    lease_holder: s.leaseLive ? s.leaseOwner : null,
    protected: protection.reasons.length === 0,
    reasons: protection.reasons,
    since: protection.since,
    ...(s.folder === null ? {} : { folder: s.folder }),
  };
}
