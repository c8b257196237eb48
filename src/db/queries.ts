// Every SQL statement the keeper runs, one named function each. `q.schema` / `tx.schema` is the quoted schema.
import type { Queryable } from './pool.js';

export interface SessionRow {
  sessionId: string;
  headGeneration: number;
  updatedAt: Date;
  registeredJid: string | null;
  leaseOwner: string | null;
  leaseToken: number;
  leaseExpiresAt: Date | null;
  /** The lease is held and not expired, by the database's clock. */
  leaseLive: boolean;
}

export interface SessionSummary extends SessionRow {
  /** Time of the head generation, null before the first backup. */
  lastBackupAt: Date | null;
  files: number;
  bytes: number;
}

export interface FileVersion {
  name: string;
  sha256: Buffer;
  size: number;
  content: Buffer;
  keyId: string | null;
}

export interface StoredFileVersion extends FileVersion {
  generationFrom: number;
  generationTo: number | null;
}

export interface GenerationRow {
  generation: number;
  createdAt: Date;
  reason: string;
  filesChanged: number;
  filesDeleted: number;
  totalFiles: number;
  totalBytes: number;
}

type Row = Record<string, unknown>;
/** The session columns, read through table alias `t`; lease_live is judged by the database's clock. */
function sessionColumns(t: string): string {
  return `${t}.session_id, ${t}.head_generation, ${t}.updated_at, ${t}.registered_jid, ${t}.lease_owner, ${t}.lease_token,
    ${t}.lease_expires_at, (${t}.lease_owner IS NOT NULL AND ${t}.lease_expires_at > now()) AS lease_live`;
}

function toSession(row: Row): SessionRow {
  return {
    sessionId: row['session_id'] as string,
    headGeneration: Number(row['head_generation']),
    updatedAt: row['updated_at'] as Date,
    registeredJid: (row['registered_jid'] as string | null) ?? null,
    leaseOwner: (row['lease_owner'] as string | null) ?? null,
    leaseToken: Number(row['lease_token']),
    leaseExpiresAt: (row['lease_expires_at'] as Date | null) ?? null,
    leaseLive: row['lease_live'] === true,
  };
}

function toGeneration(row: Row): GenerationRow {
  return {
    generation: Number(row['generation']),
    createdAt: row['created_at'] as Date,
    reason: row['reason'] as string,
    filesChanged: Number(row['files_changed']),
    filesDeleted: Number(row['files_deleted']),
    totalFiles: Number(row['total_files']),
    totalBytes: Number(row['total_bytes']),
  };
}

/** Creates the session row if it does not exist yet. */
export async function ensureSession(q: Queryable, sessionId: string): Promise<void> {
  await q.query(`INSERT INTO ${q.schema}.sessions (session_id) VALUES ($1) ON CONFLICT (session_id) DO NOTHING`, [sessionId]);
}

export async function getSession(q: Queryable, sessionId: string): Promise<SessionRow | null> {
  const { rows } = await q.query(`SELECT ${sessionColumns('s')} FROM ${q.schema}.sessions s WHERE s.session_id = $1`, [sessionId]);
  return rows[0] ? toSession(rows[0]) : null;
}

/** Reads the session row and locks it until the transaction ends: writers of one session queue here. */
export async function lockSession(tx: Queryable, sessionId: string): Promise<SessionRow | null> {
  const { rows } = await tx.query(`SELECT ${sessionColumns('s')} FROM ${tx.schema}.sessions s WHERE s.session_id = $1 FOR UPDATE`, [sessionId]);
  return rows[0] ? toSession(rows[0]) : null;
}

/** Sessions with their head generation's totals; one session when sessionId is given. */
export async function listSessions(q: Queryable, sessionId: string | null): Promise<SessionSummary[]> {
  const { rows } = await q.query(
    `SELECT ${sessionColumns('s')},
            g.created_at AS last_backup_at, coalesce(g.total_files, 0) AS files, coalesce(g.total_bytes, 0) AS bytes
       FROM ${q.schema}.sessions s
       LEFT JOIN ${q.schema}.generations g ON g.session_id = s.session_id AND g.generation = s.head_generation
      WHERE $1::text IS NULL OR s.session_id = $1
      ORDER BY s.session_id`,
    [sessionId],
  );
  return rows.map((row) => ({
    ...toSession(row),
    lastBackupAt: (row['last_backup_at'] as Date | null) ?? null,
    files: Number(row['files']),
    bytes: Number(row['bytes']),
  }));
}

/** What change detection compares: the stored digest and, when the row is encrypted, its key id. */
export interface StoredDigest {
  /** sha256 of the content for plaintext rows; the keyed hash (crypto.keyedHash) when keyId is set. */
  digest: Buffer;
  keyId: string | null;
}

function toDigests(rows: Row[]): Map<string, StoredDigest> {
  return new Map(rows.map((row) => [row['name'] as string, { digest: row['sha256'] as Buffer, keyId: (row['key_id'] as string | null) ?? null }]));
}

/** name → digest of every current (head) file of the session. */
export async function currentHashes(q: Queryable, sessionId: string): Promise<Map<string, StoredDigest>> {
  const { rows } = await q.query(`SELECT name, sha256, key_id FROM ${q.schema}.files WHERE session_id = $1 AND generation_to IS NULL`, [sessionId]);
  return toDigests(rows);
}

/** name → digest of the named current files (names not stored are absent). */
export async function currentHashesOf(q: Queryable, sessionId: string, names: string[]): Promise<Map<string, StoredDigest>> {
  const { rows } = await q.query(
    `SELECT name, sha256, key_id FROM ${q.schema}.files WHERE session_id = $1 AND name = ANY($2::text[]) AND generation_to IS NULL`,
    [sessionId, names],
  );
  return toDigests(rows);
}

/** Ends the current version of each named file at `generation` (changed or deleted in it); returns what was closed. */
export async function closeFiles(
  tx: Queryable,
  sessionId: string,
  names: string[],
  generation: number,
): Promise<{ files: number; bytes: number }> {
  if (names.length === 0) return { files: 0, bytes: 0 };
  const { rows } = await tx.query(
    `WITH closed AS (
       UPDATE ${tx.schema}.files SET generation_to = $3
        WHERE session_id = $1 AND name = ANY($2::text[]) AND generation_to IS NULL
        RETURNING size)
     SELECT count(*) AS files, coalesce(sum(size), 0) AS bytes FROM closed`,
    [sessionId, names, generation],
  );
  return { files: Number(rows[0]!['files']), bytes: Number(rows[0]!['bytes']) };
}

/** Rows per INSERT: bounds the memory of one statement (bytea travels hex-encoded, twice its size). */
const INSERT_CHUNK_ROWS = 500;

/** Inserts new current versions, a few hundred rows per statement. */
export async function insertFiles(tx: Queryable, sessionId: string, generation: number, all: FileVersion[]): Promise<void> {
  for (let start = 0; start < all.length; start += INSERT_CHUNK_ROWS) {
    await insertChunk(tx, sessionId, generation, all.slice(start, start + INSERT_CHUNK_ROWS));
  }
}

async function insertChunk(tx: Queryable, sessionId: string, generation: number, files: FileVersion[]): Promise<void> {
  await tx.query(
    `INSERT INTO ${tx.schema}.files (session_id, name, generation_from, sha256, size, content, key_id)
     SELECT $1, f.name, $2, f.sha256, f.size, f.content, f.key_id
       FROM unnest($3::text[], $4::bytea[], $5::int[], $6::bytea[], $7::text[]) AS f(name, sha256, size, content, key_id)`,
    [
      sessionId,
      generation,
      files.map((f) => f.name),
      files.map((f) => f.sha256),
      files.map((f) => f.size),
      files.map((f) => f.content),
      files.map((f) => f.keyId),
    ],
  );
}

export async function insertGeneration(
  tx: Queryable,
  sessionId: string,
  row: Omit<GenerationRow, 'createdAt'>,
): Promise<Date> {
  const { rows } = await tx.query(
    `INSERT INTO ${tx.schema}.generations (session_id, generation, reason, files_changed, files_deleted, total_files, total_bytes)
     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING created_at`,
    [sessionId, row.generation, row.reason, row.filesChanged, row.filesDeleted, row.totalFiles, row.totalBytes],
  );
  return rows[0]!['created_at'] as Date;
}

export async function setHead(tx: Queryable, sessionId: string, generation: number, registeredJid: string | null): Promise<void> {
  await tx.query(
    `UPDATE ${tx.schema}.sessions SET head_generation = $2, registered_jid = $3, updated_at = now() WHERE session_id = $1`,
    [sessionId, generation, registeredJid],
  );
}

/** Every retained generation's number and time, for the retention schedule. */
export async function generationTimes(q: Queryable, sessionId: string): Promise<{ generation: number; createdAt: Date }[]> {
  const { rows } = await q.query(`SELECT generation, created_at FROM ${q.schema}.generations WHERE session_id = $1`, [sessionId]);
  return rows.map((row) => ({ generation: Number(row['generation']), createdAt: row['created_at'] as Date }));
}

/** The database's clock: retention ages are measured on the clock that stamped the generations. */
export async function databaseNow(q: Queryable): Promise<Date> {
  const { rows } = await q.query('SELECT now() AS now');
  return rows[0]!['now'] as Date;
}

/** Deletes these generations' rows (not their file versions: see deleteInvisibleFiles). */
export async function deleteGenerations(tx: Queryable, sessionId: string, generations: number[]): Promise<number> {
  const result = await tx.query(`DELETE FROM ${tx.schema}.generations WHERE session_id = $1 AND generation = ANY($2::bigint[])`, [sessionId, generations]);
  return result.rowCount ?? 0;
}

/**
 * Deletes up to `limit` closed file versions that no retained generation can see (no generation G
 * with generation_from <= G < generation_to), among those overlapping generations `low`..`high`
 * (where generations were just deleted). Returns how many it deleted.
 */
export async function deleteInvisibleFiles(tx: Queryable, sessionId: string, low: number, high: number, limit: number): Promise<number> {
  const result = await tx.query(
    `DELETE FROM ${tx.schema}.files WHERE ctid = ANY(ARRAY(
       SELECT f.ctid FROM ${tx.schema}.files f
        WHERE f.session_id = $1 AND f.generation_to IS NOT NULL AND f.generation_to > $2 AND f.generation_from <= $3
          AND NOT EXISTS (SELECT 1 FROM ${tx.schema}.generations g
                           WHERE g.session_id = f.session_id AND g.generation >= f.generation_from AND g.generation < f.generation_to)
        LIMIT $4))`,
    [sessionId, low, high, limit],
  );
  return result.rowCount ?? 0;
}

export async function getGeneration(q: Queryable, sessionId: string, generation: number): Promise<GenerationRow | null> {
  const { rows } = await q.query(`SELECT * FROM ${q.schema}.generations WHERE session_id = $1 AND generation = $2`, [sessionId, generation]);
  return rows[0] ? toGeneration(rows[0]) : null;
}

/** The newest retained generation created at or before `at`. */
export async function generationAtTime(q: Queryable, sessionId: string, at: Date): Promise<GenerationRow | null> {
  const { rows } = await q.query(
    // Compare at the millisecond precision we print, so a time copied from `history` finds its generation.
    `SELECT * FROM ${q.schema}.generations WHERE session_id = $1 AND date_trunc('milliseconds', created_at) <= $2
      ORDER BY generation DESC LIMIT 1`,
    [sessionId, at],
  );
  return rows[0] ? toGeneration(rows[0]) : null;
}

/** Retained generations, newest first. */
export async function listGenerations(q: Queryable, sessionId: string, limit: number | null): Promise<GenerationRow[]> {
  const { rows } = await q.query(
    `SELECT * FROM ${q.schema}.generations WHERE session_id = $1 ORDER BY generation DESC LIMIT $2`,
    [sessionId, limit],
  );
  return rows.map(toGeneration);
}

/** The files as they were at `generation`: one query over the temporal ranges. */
export async function filesAt(q: Queryable, sessionId: string, generation: number): Promise<StoredFileVersion[]> {
  const { rows } = await q.query(
    `SELECT name, generation_from, generation_to, sha256, size, content, key_id FROM ${q.schema}.files
      WHERE session_id = $1 AND generation_from <= $2 AND (generation_to IS NULL OR generation_to > $2)
      ORDER BY name`,
    [sessionId, generation],
  );
  return rows.map(toStoredVersion);
}

/** One page of every stored version of the session, in (name, generation_from) order after `after`. */
export async function fileVersionsPage(
  q: Queryable,
  sessionId: string,
  after: { name: string; generationFrom: number } | null,
  limit: number,
): Promise<StoredFileVersion[]> {
  const { rows } = await q.query(
    `SELECT name, generation_from, generation_to, sha256, size, content, key_id FROM ${q.schema}.files
      WHERE session_id = $1 AND ($2::text IS NULL OR (name, generation_from) > ($2, $3))
      ORDER BY name, generation_from LIMIT $4`,
    [sessionId, after?.name ?? null, after?.generationFrom ?? 0, limit],
  );
  return rows.map(toStoredVersion);
}

function toStoredVersion(row: Row): StoredFileVersion {
  return {
    name: row['name'] as string,
    generationFrom: Number(row['generation_from']),
    generationTo: row['generation_to'] === null ? null : Number(row['generation_to']),
    sha256: row['sha256'] as Buffer,
    size: Number(row['size']),
    content: row['content'] as Buffer,
    keyId: (row['key_id'] as string | null) ?? null,
  };
}

/**
 * One page, in primary-key order after `after`, of the session's stored versions that are not under
 * key `keyId` (plaintext ones included), locked until the transaction ends.
 */
export async function versionsNotUnderKey(
  tx: Queryable,
  sessionId: string,
  keyId: string,
  after: { name: string; generationFrom: number } | null,
  limit: number,
): Promise<StoredFileVersion[]> {
  const { rows } = await tx.query(
    `SELECT name, generation_from, generation_to, sha256, size, content, key_id FROM ${tx.schema}.files
      WHERE session_id = $1 AND key_id IS DISTINCT FROM $2 AND ($3::text IS NULL OR (name, generation_from) > ($3, $4))
      ORDER BY name, generation_from LIMIT $5 FOR UPDATE`,
    [sessionId, keyId, after?.name ?? null, after?.generationFrom ?? 0, limit],
  );
  return rows.map(toStoredVersion);
}

/** Replaces a stored version's content, digest and key id (rekey); the row keeps its identity. */
export async function reencryptVersions(
  tx: Queryable,
  sessionId: string,
  rows: { name: string; generationFrom: number; content: Buffer; digest: Buffer; keyId: string }[],
): Promise<void> {
  if (rows.length === 0) return;
  await tx.query(
    `UPDATE ${tx.schema}.files f SET content = r.content, sha256 = r.digest, key_id = r.key_id
       FROM unnest($2::text[], $3::bigint[], $4::bytea[], $5::bytea[], $6::text[]) AS r(name, generation_from, content, digest, key_id)
      WHERE f.session_id = $1 AND f.name = r.name AND f.generation_from = r.generation_from`,
    [sessionId, rows.map((r) => r.name), rows.map((r) => r.generationFrom), rows.map((r) => r.content), rows.map((r) => r.digest), rows.map((r) => r.keyId)],
  );
}

/** A session's encryption marker (sql/0003): the first generation written encrypted, authenticated. */
export interface EncryptionMarker {
  generation: number;
  keyId: string;
  mac: Buffer;
}

export async function getEncryptionMarker(q: Queryable, sessionId: string): Promise<EncryptionMarker | null> {
  const { rows } = await q.query(
    `SELECT encrypted_since, encrypted_since_key_id, encrypted_since_mac FROM ${q.schema}.sessions WHERE session_id = $1`,
    [sessionId],
  );
  const row = rows[0];
  // A marker with a part missing is no marker: verify then reports it like a deleted one.
  if (!row || row['encrypted_since'] === null || row['encrypted_since_key_id'] === null || row['encrypted_since_mac'] === null) return null;
  return { generation: Number(row['encrypted_since']), keyId: row['encrypted_since_key_id'] as string, mac: row['encrypted_since_mac'] as Buffer };
}

export async function setEncryptionMarker(tx: Queryable, sessionId: string, marker: EncryptionMarker): Promise<void> {
  await tx.query(
    `UPDATE ${tx.schema}.sessions SET encrypted_since = $2, encrypted_since_key_id = $3, encrypted_since_mac = $4 WHERE session_id = $1`,
    [sessionId, marker.generation, marker.keyId, marker.mac],
  );
}

/** Whether the session stores any encrypted (or, with `encrypted` false, any plaintext) version. */
export async function hasVersions(q: Queryable, sessionId: string, encrypted: boolean): Promise<boolean> {
  const { rows } = await q.query(
    `SELECT EXISTS (SELECT 1 FROM ${q.schema}.files WHERE session_id = $1 AND (key_id IS NOT NULL) = $2) AS found`,
    [sessionId, encrypted],
  );
  return rows[0]!['found'] === true;
}

/** The current (head) versions of the session that are stored in plaintext, contents included. */
export async function currentPlaintextVersions(q: Queryable, sessionId: string): Promise<StoredFileVersion[]> {
  const { rows } = await q.query(
    `SELECT name, generation_from, generation_to, sha256, size, content, key_id FROM ${q.schema}.files
      WHERE session_id = $1 AND generation_to IS NULL AND key_id IS NULL ORDER BY name`,
    [sessionId],
  );
  return rows.map(toStoredVersion);
}

/** Sets the stored registered jid (rekey replaces a full number with its masked form). */
export async function setRegisteredJid(tx: Queryable, sessionId: string, registeredJid: string | null): Promise<void> {
  await tx.query(`UPDATE ${tx.schema}.sessions SET registered_jid = $2 WHERE session_id = $1`, [sessionId, registeredJid]);
}

export async function deleteSession(q: Queryable, sessionId: string): Promise<boolean> {
  const result = await q.query(`DELETE FROM ${q.schema}.sessions WHERE session_id = $1`, [sessionId]);
  return (result.rowCount ?? 0) > 0;
}

/**
 * Takes the lease if it is free, expired or already ours; every acquisition increases the fencing
 * token. Returns the new token, or null with the current holder when someone else holds it.
 */
export async function acquireLease(
  q: Queryable,
  sessionId: string,
  owner: string,
  ttlMs: number,
): Promise<{ token: number; expiresAt: Date } | null> {
  const { rows } = await q.query(
    `UPDATE ${q.schema}.sessions
        SET lease_owner = $2, lease_token = lease_token + 1, lease_expires_at = now() + $3 * interval '1 millisecond'
      WHERE session_id = $1 AND (lease_owner IS NULL OR lease_expires_at <= now() OR lease_owner = $2)
      RETURNING lease_token, lease_expires_at`,
    [sessionId, owner, ttlMs],
  );
  return rows[0] ? { token: Number(rows[0]['lease_token']), expiresAt: rows[0]['lease_expires_at'] as Date } : null;
}

/** Extends a lease we still hold; false when it was lost (expired and taken, or released). */
export async function renewLease(q: Queryable, sessionId: string, owner: string, token: number, ttlMs: number): Promise<Date | null> {
  const { rows } = await q.query(
    `UPDATE ${q.schema}.sessions SET lease_expires_at = now() + $4 * interval '1 millisecond'
      WHERE session_id = $1 AND lease_owner = $2 AND lease_token = $3 AND lease_expires_at > now()
      RETURNING lease_expires_at`,
    [sessionId, owner, token, ttlMs],
  );
  return rows[0] ? (rows[0]['lease_expires_at'] as Date) : null;
}

/** Gives the lease up if it is still ours; the token is kept so the next holder's is larger. */
export async function releaseLease(q: Queryable, sessionId: string, owner: string, token: number): Promise<boolean> {
  const result = await q.query(
    `UPDATE ${q.schema}.sessions SET lease_owner = NULL, lease_expires_at = NULL
      WHERE session_id = $1 AND lease_owner = $2 AND lease_token = $3`,
    [sessionId, owner, token],
  );
  return (result.rowCount ?? 0) > 0;
}
