// The session store: backups as fenced generations, restore points, history, verification, leases.
import { CREDS_FILE, maskJid, parseCreds } from './creds.js';
import type { Database, Queryable } from './db/connection.js';
import * as q from './db/queries.js';
import type { FileVersion, GenerationRow, SessionSummary } from './db/queries.js';
import { IntegrityError, LeaseLostError, NothingToRestoreError, RefusedError } from './errors.js';
import { invalidNameReason, quoteName } from './names.js';
import { sha256, type Snapshot } from './snapshot.js';

export type { FileVersion, GenerationRow, SessionSummary };

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
}

export class SessionStore {
  constructor(private readonly db: Database) {}

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
      const changed = [...snapshot.files.values()].filter((file) => !stored.get(file.name)?.equals(file.sha256));
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
        changed.map((file) => ({ name: file.name, sha256: file.sha256, size: file.content.length, content: file.content, keyId: null })),
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
      await q.setHead(db, tx, sessionId, generation, registeredJid);
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
  async loadPoint(sessionId: string, point: { generation?: number | null; at?: Date | null }): Promise<{ generation: GenerationRow; files: FileVersion[] } | null> {
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
      const files = await q.filesAt(db, tx, sessionId, generation.generation);
      const failures = files.map(checkVersion).filter((failure): failure is string => failure !== null);
      if (failures.length > 0) {
        throw new IntegrityError(
          `generation ${generation.generation} of session ${sessionId} failed its integrity check: ${failures.slice(0, 5).join('; ')}` +
            `${failures.length > 5 ? ` (and ${failures.length - 5} more)` : ''}. Run 'baileys-keeper verify' and restore an older --generation`,
        );
      }
      if (files.length !== generation.totalFiles) {
        throw new IntegrityError(`generation ${generation.generation} of session ${sessionId} should have ${generation.totalFiles} files but ${files.length} are stored. Run 'baileys-keeper verify'`);
      }
      return { generation, files };
    }, 'snapshot');
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
        const reason = checkVersion(version);
        if (reason) failures.push({ name: version.name, generationFrom: version.generationFrom, reason });
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

/** Why a stored version fails its checks, or null when it is sound. */
function checkVersion(version: FileVersion): string | null {
  const bad = invalidNameReason(version.name);
  if (bad) return `${quoteName(version.name)}: unsafe file name (${bad})`;
  if (version.content.length !== version.size) return `${quoteName(version.name)}: size ${version.content.length} differs from the recorded ${version.size}`;
  if (!sha256(version.content).equals(version.sha256)) return `${quoteName(version.name)}: sha256 mismatch`;
  return null;
}
