// The session store: what the loop, the session API and the commands call to keep sessions in PostgreSQL —
// backups as fenced generations, restore points, history, thinning, verification, rekey and leases. One
// concept per file beside this one; encryption is the row codec's (codec/), the SQL is src/db/'s.
import { isUnreachable } from '../db/errors.js';
import { legacyRows, type LegacyRow } from '../db/legacy.js';
import { migrate } from '../db/migrate.js';
import type { Database } from '../db/pool.js';
import type { FileVersion } from '../db/queries/files.js';
import type { GenerationRow } from '../db/queries/generations.js';
import type { SessionSummary } from '../db/queries/sessions.js';
import type { KeyRing } from '../crypto.js';
import type { Protection } from '../protection.js';
import type { RollbackFinding } from '../rollback.js';
import type { Snapshot } from '../snapshot.js';
import { backup, logout, tombstone } from './backup.js';
import { rollbackOf } from './changes.js';
import { RowCodec, type PlainFile } from './codec/index.js';
import { headProblems } from './head.js';
import { rekey, verify } from './integrity.js';
import { acquire, acquireMany, holder, recordProtection, release, renew, renewMany } from './leases.js';
import { findPoint, loadHeads, loadPoint, type HeadLoad } from './points.js';
import type { RetentionPolicy } from './retention.js';
import { deleteWhole, history, recordFolder, revive, status, storeNow, summary } from './sessions.js';
import { headStamps, type RecordedHead } from './stamps.js';
import { thin } from './thin.js';
import type { LeaseAttempt } from './leases.js';
import type { BackupOptions, BackupResult, Lease, StoreContext, ThinResult, VerifyFailure } from './types.js';

export type { LegacyRow };
export type {
  BackupOptions,
  BackupResult,
  FileVersion,
  GenerationRow,
  HeadLoad,
  RecordedHead,
  Lease,
  LeaseAttempt,
  PlainFile,
  SessionSummary,
  ThinResult,
  VerifyFailure,
};
export { LOGOUT_REASON, TOMBSTONE_REASON } from './types.js';
export type { LoginEvent, LoginSeen, Refusal } from './types.js';
export { headDamage } from './head.js';
export { hintsOf, RowCodec } from './codec/index.js';

export interface StoreOptions {
  /** KEEPER_REQUIRE_ENCRYPTION: reading a plaintext row is an integrity failure. */
  requireEncryption?: boolean;
  /** --allow-rollback: store a directory older than the head (docs/reliability.md "Never backwards"). */
  allowRollback?: boolean;
}

/** True when `error` means the database could not be reached or went away (worth retrying later). */
export function isDatabaseUnavailable(error: unknown): boolean {
  return isUnreachable(error);
}

/** The store over `db`, reading and writing rows through `codec`. */
export function openStore(db: Database, codec: RowCodec, options: { allowRollback?: boolean } = {}): SessionStore {
  return new SessionStore(db, codec, options);
}

/** The operations on stored sessions; each method's contract is on the function it calls. */
export class SessionStore {
  private readonly ctx: StoreContext;

  /**
   * `keys`: encryption at rest (the first key encrypts new rows; null stores plaintext), or a ready row
   * codec (then `options.requireEncryption` is the codec's own).
   */
  constructor(db: Database, keys: KeyRing | RowCodec | null = null, options: StoreOptions = {}) {
    const codec = keys instanceof RowCodec ? keys : RowCodec.of(keys, options);
    this.ctx = { db, codec, allowRollback: options.allowRollback ?? false };
  }

  /** Creates or upgrades the schema (src/db/migrate.ts); safe from many processes at once. */
  prepare(): Promise<{ version: number; applied: string[] }> {
    return migrate(this.ctx.db);
  }

  /**
   * Rows of the Flask session API's `table` (optionally schema-qualified) in this database, one session or all
   * (`sessionId` null), by session_id (src/db/legacy.ts). UsageError for a bad or missing table.
   */
  legacyRows(table: string, sessionId: string | null): Promise<LegacyRow[]> {
    return legacyRows(this.ctx.db, table, sessionId);
  }

  /** See stamps.ts: the head's files' recorded metadata and its login, or null when only a whole read will do. */
  headStamps(sessionId: string): Promise<RecordedHead | null> {
    return headStamps(this.ctx, sessionId);
  }

  /** See backup.ts: one generation, under the fence. */
  backup(sessionId: string, snapshot: Snapshot, options: BackupOptions): Promise<BackupResult> {
    return backup(this.ctx, sessionId, snapshot, options);
  }

  /** See backup.ts: the session's directory was removed for good. */
  tombstone(sessionId: string, lease: Lease): Promise<{ generation: number; deleted: number; written: boolean }> {
    return tombstone(this.ctx, sessionId, lease);
  }

  /** See backup.ts: the `logout` command's generation. */
  logout(sessionId: string, lease: Lease): Promise<{ generation: number; deleted: number; written: boolean }> {
    return logout(this.ctx, sessionId, lease);
  }

  /** See sessions.ts: a restore brought a login back to a logged-out session. */
  revive(sessionId: string): Promise<boolean> {
    return revive(this.ctx, sessionId);
  }

  /** See thin.ts. */
  thin(sessionId: string, policy: RetentionPolicy, options: { now?: Date; sweepAll?: boolean } = {}): Promise<ThinResult> {
    return thin(this.ctx, sessionId, policy, options);
  }

  /** See points.ts: the checked files of a stored point, null without a backup. */
  loadPoint(
    sessionId: string,
    point: { generation?: number | null; at?: Date | null },
  ): Promise<{ generation: GenerationRow; files: PlainFile[] } | null> {
    return loadPoint(this.ctx, sessionId, point);
  }

  /** See points.ts: the generation an asked-for point names, or NothingToRestoreError listing what is retained. */
  findPoint(sessionId: string, point: { generation?: number | null; at?: Date | null }): Promise<GenerationRow> {
    return findPoint(this.ctx, sessionId, point);
  }

  /** See points.ts: the checked head files of many sessions at once, or why one must be restored by itself. */
  loadHeads(sessionIds: readonly string[]): Promise<Map<string, HeadLoad>> {
    return loadHeads(this.ctx, sessionIds);
  }

  /** See integrity.ts. */
  rekey(sessionId: string, batchRows?: number): Promise<{ rewritten: number; keyId: string }> {
    return rekey(this.ctx, sessionId, batchRows);
  }

  /** See integrity.ts. */
  verify(sessionId: string, pageSize = 500): Promise<{ checked: number; failures: VerifyFailure[] }> {
    return verify(this.ctx, sessionId, pageSize);
  }

  /** See sessions.ts. */
  history(sessionId: string, limit: number | null = null): Promise<GenerationRow[]> {
    return history(this.ctx, sessionId, limit);
  }

  /** The database's clock, which stamps generations: retention ages are measured on it. */
  databaseNow(): Promise<Date> {
    return storeNow(this.ctx);
  }

  /** See sessions.ts. */
  summary(sessionId: string): Promise<SessionSummary | null> {
    return summary(this.ctx, sessionId);
  }

  /** See sessions.ts. */
  status(sessionId: string | null, prefix = ''): Promise<SessionSummary[]> {
    return status(this.ctx, sessionId, prefix);
  }

  /** See sessions.ts. */
  recordFolder(sessionId: string, folder: string): Promise<void> {
    return recordFolder(this.ctx, sessionId, folder);
  }

  /** See sessions.ts: refused while a writer holds the lease. */
  delete(sessionId: string): Promise<void> {
    return deleteWhole(this.ctx, sessionId);
  }

  /** See head.ts. */
  headProblems(sessionId: string | null, prefix = '', thorough = false): Promise<Map<string, string[]>> {
    return headProblems(this.ctx.db, sessionId, prefix, thorough);
  }

  /** See changes.ts: whether a whole directory read is older than the head. */
  rollbackOf(sessionId: string, snapshot: Snapshot): Promise<{ finding: RollbackFinding; headGeneration: number } | null> {
    return rollbackOf(this.ctx, sessionId, snapshot);
  }

  /** See leases.ts. */
  acquireLease(sessionId: string, owner: string, ttlMs: number): Promise<(Lease & { expiresAt: Date }) | null> {
    return acquire(this.ctx, sessionId, owner, ttlMs);
  }

  /** See leases.ts. */
  acquireLeases(sessionIds: readonly string[], owner: string, ttlMs: number): Promise<LeaseAttempt[]> {
    return acquireMany(this.ctx, sessionIds, owner, ttlMs);
  }

  /** See leases.ts. */
  renewLease(sessionId: string, lease: Lease, ttlMs: number): Promise<Date | null> {
    return renew(this.ctx, sessionId, lease, ttlMs);
  }

  /** See leases.ts. */
  renewLeases(owner: string, leases: readonly { sessionId: string; token: number }[], ttlMs: number): Promise<Set<string>> {
    return renewMany(this.ctx, owner, leases, ttlMs);
  }

  /** See leases.ts. */
  releaseLease(sessionId: string, lease: Lease): Promise<boolean> {
    return release(this.ctx, sessionId, lease);
  }

  /** See leases.ts. */
  recordProtection(sessionId: string, lease: Lease, protection: Protection): Promise<boolean> {
    return recordProtection(this.ctx, sessionId, lease, protection);
  }

  /** See leases.ts. */
  leaseHolder(sessionId: string): Promise<{ owner: string; expiresAt: Date } | null> {
    return holder(this.ctx, sessionId);
  }
}
