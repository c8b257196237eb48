// The session store: backups as fenced generations, restore points, history, verification, leases.
import { CREDS_FILE, maskJid, parseCreds } from './creds.js';
import type { KeyRing } from './crypto.js';
import type { Database, Queryable } from './db/connection.js';
import * as q from './db/queries.js';
import type { FileVersion, GenerationRow, SessionSummary, StoredFileVersion } from './db/queries.js';
import { IntegrityError, LeaseLostError, NothingToRestoreError, RefusedError } from './errors.js';
import { quoteName } from './names.js';
import { openRow, RowKeyMissing, sealRow, storedMatches, type PlainFile, type RowFailure } from './rows.js';
import type { Snapshot } from './snapshot.js';

export type { FileVersion, GenerationRow, PlainFile, SessionSummary };

/** The single-writer lease a backup must hold; its token fences off writers that lost it. */
export interface Lease {
  owner: string;
  token: number;
}

export interface BackupOptions {
  lease: Lease;
  /** Generations to keep, head included (>= 1). */
  keep: number;
  allowReplace: boolean;
  /** Recorded with the generation: "backup", "import", "watch", "rescan", "shutdown", "api"… */
  reason: string;
  /**
   * Names the snapshot speaks for. null: the whole directory, so stored files absent from it are
   * deletions. A set: only those names (the sidecar's dirty set); others are left as stored.
   */
  scope?: ReadonlySet<string> | null;
}

export type BackupResult =
  | { kind: 'success'; generation: number; changed: number; deleted: number; totalFiles: number; totalBytes: number; registered: boolean }
  | { kind: 'noop'; generation: number }
  | { kind: 'refused'; generation: number; reason: string };

export interface VerifyFailure {
  name: string;
  generationFrom: number;
  reason: string;
  /** The row is encrypted under a key id that is not configured. */
  missingKey: string | null;
}

/** Stored versions re-encrypted per rekey transaction. */
const REKEY_BATCH_ROWS = 200;

export class SessionStore {
  /** `keys`: encryption at rest (the first key encrypts new rows); null stores plaintext. */
  constructor(
    private readonly db: Database,
    private readonly keys: KeyRing | null = null,
  ) {}

  /**
   * Stores what changed in `snapshot` as generation head+1 in ONE transaction, or nothing when
   * nothing changed. Throws LeaseLostError, without writing, when `lease` is no longer held.
   */
  async backup(sessionId: string, snapshot: Snapshot, options: BackupOptions): Promise<BackupResult> {
    const db = this.db;
    return db.transaction(async (tx) => {
      const session = await q.lockSession(db, tx, sessionId);
      if (!session || session.leaseOwner !== options.lease.owner || session.leaseToken !== options.lease.token || !session.leaseLive) {
        throw new LeaseLostError(
          `the lease on session ${sessionId} is no longer held by ${options.lease.owner} (token ${options.lease.token}); nothing was written`,
        );
      }
      // With a scope (the sidecar's dirty names) only those hashes are read: cost follows the change.
      const stored = options.scope ? await q.currentHashesOf(db, tx, sessionId, [...options.scope]) : await q.currentHashes(db, tx, sessionId);
      const changed = [...snapshot.files.values()].filter((file) => !this.isStored(sessionId, file, stored.get(file.name)));
      const considered = options.scope ?? stored.keys();
      const deleted = [...considered].filter((name) => stored.has(name) && !snapshot.files.has(name) && !snapshot.held.has(name));
      if (changed.length === 0 && deleted.length === 0) return { kind: 'noop', generation: session.headGeneration };

      const credsChange = changed.find((file) => file.name === CREDS_FILE);
      const credsDeleted = deleted.includes(CREDS_FILE);
      const registeredJid = credsDeleted ? null : credsChange ? parseCreds(credsChange.content.toString('utf8'))?.registeredJid ?? null : session.registeredJid;
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
      const previous = session.headGeneration > 0 ? await q.getGeneration(db, tx, sessionId, session.headGeneration) : null;
      const closed = await q.closeFiles(db, tx, sessionId, [...changed.map((f) => f.name), ...deleted], generation);
      await q.insertFiles(
        db,
        tx,
        sessionId,
        generation,
        changed.map((file) => sealRow(this.keys, sessionId, generation, file)),
      );
      const totalFiles = (previous?.totalFiles ?? 0) - closed.files + changed.length;
      const totalBytes = (previous?.totalBytes ?? 0) - closed.bytes + changed.reduce((sum, file) => sum + file.content.length, 0);
      await q.insertGeneration(db, tx, sessionId, {
        generation,
        reason: options.reason,
        filesChanged: changed.length,
        filesDeleted: deleted.length,
        totalFiles,
        totalBytes,
      });
      await q.setHead(db, tx, sessionId, generation, this.storedJid(registeredJid));
      const oldestKept = generation - options.keep + 1;
      if (oldestKept > 1) await q.pruneBefore(db, tx, sessionId, oldestKept);
      return { kind: 'success', generation, changed: changed.length, deleted: deleted.length, totalFiles, totalBytes, registered: registeredJid !== null };
    });
  }

  /**
   * The files of the point a restore or export should read — `generation`, the newest at or before
   * `at`, or the head — each checked (safe name, size, sha256) before anyone writes them to disk.
   * One snapshot transaction: a backup pruning concurrently cannot leave a partial set. null when the
   * session has no backup; NothingToRestoreError when an asked-for point is not retained.
   */
  async loadPoint(sessionId: string, point: { generation?: number | null; at?: Date | null }): Promise<{ generation: GenerationRow; files: PlainFile[] } | null> {
    const db = this.db;
    return db.transaction(async (tx) => {
      let generation: GenerationRow | null;
      if (point.generation != null) {
        generation = await q.getGeneration(db, tx, sessionId, point.generation);
        if (!generation) throw new NothingToRestoreError(`generation ${point.generation} of session ${sessionId} is not retained; ${await retainedRange(db, tx, sessionId)}`);
      } else if (point.at != null) {
        generation = await q.generationAtTime(db, tx, sessionId, point.at);
        if (!generation) throw new NothingToRestoreError(`session ${sessionId} has no retained generation at or before ${point.at.toISOString()}; ${await retainedRange(db, tx, sessionId)}`);
      } else {
        const session = await q.getSession(db, tx, sessionId);
        if (!session || session.headGeneration === 0) return null;
        generation = await q.getGeneration(db, tx, sessionId, session.headGeneration);
        if (!generation) return null;
      }
      const rows = await q.filesAt(db, tx, sessionId, generation.generation);
      const files: PlainFile[] = [];
      const failures: RowFailure[] = [];
      for (const row of rows) {
        const opened = openRow(this.keys, sessionId, row);
        if ('reason' in opened) failures.push(opened);
        else files.push({ name: row.name, content: opened.content });
      }
      const missing = [...new Set(failures.map((f) => f.missingKey).filter((id): id is string => id !== null))];
      if (missing.length > 0) throw this.missingKeyError(`generation ${generation.generation} of session ${sessionId}`, missing);
      if (failures.length > 0) {
        const reasons = failures.map((f) => f.reason);
        throw new IntegrityError(
          `generation ${generation.generation} of session ${sessionId} failed its integrity check: ${reasons.slice(0, 5).join('; ')}` +
            `${reasons.length > 5 ? ` (and ${reasons.length - 5} more)` : ''}. Nothing was written. ${await this.olderVerifying(tx, sessionId, generation.generation)}`,
        );
      }
      if (files.length !== generation.totalFiles) {
        throw new IntegrityError(`generation ${generation.generation} of session ${sessionId} should have ${generation.totalFiles} files but ${files.length} are stored. Run 'baileys-keeper verify'`);
      }
      return { generation, files };
    }, 'snapshot');
  }

  /**
   * Re-encrypts every retained version of the session that is not under the newest (writing) key,
   * plaintext ones included, a batch per transaction. Each row is checked before it is re-encrypted
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
        const session = await q.lockSession(db, tx, sessionId);
        if (!session) throw new NothingToRestoreError(`no session named ${sessionId}; 'baileys-keeper status' lists them`);
        if (after === null && session.registeredJid !== null) await q.setRegisteredJid(db, tx, sessionId, this.storedJid(session.registeredJid));
        const rows = await q.versionsNotUnderKey(db, tx, sessionId, keys.writer.id, after, batchRows);
        const updates = rows.map((row) => {
          const opened = openRow(keys, sessionId, row);
          if ('reason' in opened) {
            if (opened.missingKey) throw this.missingKeyError(`session ${sessionId}`, [opened.missingKey]);
            throw new IntegrityError(
              `cannot rekey session ${sessionId}: the version of generation ${row.generationFrom} failed its check: ${opened.reason}. ` +
                `${rewritten} versions were re-encrypted before it and stay valid; run 'baileys-keeper verify', then restore or delete the damaged history`,
            );
          }
          const sealed = sealRow(keys, sessionId, row.generationFrom, { name: row.name, content: opened.content });
          return { name: row.name, generationFrom: row.generationFrom, content: sealed.content, digest: sealed.sha256, keyId: sealed.keyId! };
        });
        await q.reencryptVersions(db, tx, sessionId, updates);
        return rows;
      });
      rewritten += page.length;
      const last = page.at(-1);
      if (!last || page.length < batchRows) return { rewritten, keyId: keys.writer.id };
      after = { name: last.name, generationFrom: last.generationFrom };
    }
  }

  /** Retained generations, newest first. */
  async history(sessionId: string, limit: number | null = null): Promise<GenerationRow[]> {
    await this.requireSession(sessionId);
    return q.listGenerations(this.db, this.db, sessionId, limit);
  }

  /** One session with its head's totals, or null when it does not exist. */
  async summary(sessionId: string): Promise<SessionSummary | null> {
    return (await q.listSessions(this.db, this.db, sessionId))[0] ?? null;
  }

  /** Every session (or one) with its head's totals. */
  async status(sessionId: string | null): Promise<SessionSummary[]> {
    const sessions = await q.listSessions(this.db, this.db, sessionId);
    if (sessionId !== null && sessions.length === 0) throw new NothingToRestoreError(`no session named ${sessionId}; 'baileys-keeper status' lists them`);
    return sessions;
  }

  /** Deletes the session and its whole history; refused while a writer holds its lease. */
  async delete(sessionId: string): Promise<void> {
    const db = this.db;
    await db.transaction(async (tx) => {
      const session = await q.lockSession(db, tx, sessionId);
      if (!session) throw new NothingToRestoreError(`no session named ${sessionId}; 'baileys-keeper status' lists them`);
      if (session.leaseLive) {
        throw new RefusedError(`session ${sessionId} is in use by ${session.leaseOwner} (lease until ${session.leaseExpiresAt?.toISOString()}): stop that sidecar first`);
      }
      await q.deleteSession(db, tx, sessionId);
    });
  }

  /** Recomputes the checksum of every retained version of every file; returns what failed. */
  async verify(sessionId: string, pageSize = 500): Promise<{ checked: number; failures: VerifyFailure[] }> {
    await this.requireSession(sessionId);
    const failures: VerifyFailure[] = [];
    let checked = 0;
    let after: { name: string; generationFrom: number } | null = null;
    for (;;) {
      const page = await q.fileVersionsPage(this.db, this.db, sessionId, after, pageSize);
      for (const version of page) {
        const opened = openRow(this.keys, sessionId, version);
        if ('reason' in opened) failures.push({ name: version.name, generationFrom: version.generationFrom, reason: opened.reason, missingKey: opened.missingKey });
      }
      checked += page.length;
      const last = page.at(-1);
      if (!last || page.length < pageSize) break;
      after = { name: last.name, generationFrom: last.generationFrom };
    }
    return { checked, failures };
  }

  /** Takes the session's lease (creating the session row if needed); null when another live holder has it. */
  async acquireLease(sessionId: string, owner: string, ttlMs: number): Promise<(Lease & { expiresAt: Date }) | null> {
    await q.ensureSession(this.db, this.db, sessionId);
    const taken = await q.acquireLease(this.db, this.db, sessionId, owner, ttlMs);
    return taken ? { owner, ...taken } : null;
  }

  async renewLease(sessionId: string, lease: Lease, ttlMs: number): Promise<Date | null> {
    return q.renewLease(this.db, this.db, sessionId, lease.owner, lease.token, ttlMs);
  }

  async releaseLease(sessionId: string, lease: Lease): Promise<boolean> {
    return q.releaseLease(this.db, this.db, sessionId, lease.owner, lease.token);
  }

  /** Who holds the session's lease right now, or null. */
  async leaseHolder(sessionId: string): Promise<{ owner: string; expiresAt: Date } | null> {
    const session = await q.getSession(this.db, this.db, sessionId);
    return session?.leaseLive && session.leaseOwner && session.leaseExpiresAt ? { owner: session.leaseOwner, expiresAt: session.leaseExpiresAt } : null;
  }

  /** False when `file` must be stored (new, changed, or plaintext while encryption is on). */
  private isStored(sessionId: string, file: PlainFile, stored: q.StoredDigest | undefined): boolean {
    if (!stored) return false;
    try {
      return storedMatches(this.keys, sessionId, file.name, file.content, stored);
    } catch (error) {
      if (error instanceof RowKeyMissing) throw this.missingKeyError(`session ${sessionId}`, [error.keyId]);
      throw error;
    }
  }

  /** With encryption on, the database keeps only the masked phone number (all output masks it anyway). */
  private storedJid(jid: string | null): string | null {
    return jid !== null && this.keys ? maskJid(jid) : jid;
  }

  private missingKeyError(what: string, keyIds: string[]): IntegrityError {
    const configured = this.keys ? `configured: ${this.keys.describe()}` : 'no key is configured';
    return new IntegrityError(
      `${what} is encrypted with key id ${keyIds.join(', ')}, which is not configured (${configured}): ` +
        'set KEEPER_ENCRYPTION_KEY / KEEPER_ENCRYPTION_KEY_FILE to that key, or add it to KEEPER_ENCRYPTION_KEYS; nothing was written',
    );
  }

  /**
   * Which older retained generation passes every check, for the message of a refused restore. One
   * pass over the stored versions: a generation verifies when none of the failing versions is visible in it.
   */
  private async olderVerifying(tx: Queryable, sessionId: string, generation: number): Promise<string> {
    const bad: StoredFileVersion[] = [];
    let after: { name: string; generationFrom: number } | null = null;
    for (;;) {
      const page = await q.fileVersionsPage(this.db, tx, sessionId, after, 500);
      for (const version of page) if ('reason' in openRow(this.keys, sessionId, version)) bad.push(version);
      const last = page.at(-1);
      if (!last || page.length < 500) break;
      after = { name: last.name, generationFrom: last.generationFrom };
    }
    const visible = (version: StoredFileVersion, g: number) => version.generationFrom <= g && (version.generationTo === null || version.generationTo > g);
    const older = (await q.listGenerations(this.db, tx, sessionId, null)).filter((row) => row.generation < generation);
    const good = older.find((row) => !bad.some((version) => visible(version, row.generation)));
    return good
      ? `Generation ${good.generation} (${good.createdAt.toISOString()}) verifies: restore it with --generation ${good.generation}`
      : "No older retained generation verifies: restore from an export, or pair again by QR";
  }

  private async requireSession(sessionId: string): Promise<void> {
    if (!(await q.getSession(this.db, this.db, sessionId))) {
      throw new NothingToRestoreError(`no session named ${sessionId}; 'baileys-keeper status' lists them`);
    }
  }

}

async function retainedRange(db: Database, q2: Queryable, sessionId: string): Promise<string> {
  const rows = await q.listGenerations(db, q2, sessionId, null);
  if (rows.length === 0) return 'it has no backup';
  return `retained generations are ${rows.at(-1)!.generation}..${rows[0]!.generation} (${rows.at(-1)!.createdAt.toISOString()} .. ${rows[0]!.createdAt.toISOString()})`;
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
}

export function sessionStatusJson(s: SessionSummary): SessionStatusJson {
  return {
    session_id: s.sessionId,
    generation: s.headGeneration,
    updated_at: s.lastBackupAt?.toISOString() ?? null,
    files: s.files,
    bytes: s.bytes,
    registered: s.registeredJid !== null,
    phone: s.registeredJid === null ? null : maskJid(s.registeredJid),
    lease_holder: s.leaseLive ? s.leaseOwner : null,
  };
}
