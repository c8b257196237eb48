// The sessions table: one row per session with its head generation, registered jid, single-writer
// lease (owner, fencing token, expiry) and encryption marker. Every statement is one named function.
import type { Queryable } from '../pool.js';

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
  /** While the session is logged out (sql/0008): its logout generation, when, and the fingerprint of that login. */
  loggedOut: { generation: number; at: Date; identity: string | null; by: 'seen' | 'hand' } | null;
  /** Identity key fingerprint of unpaired creds the guard refused over the paired login (sql/0008), or null. */
  pendingIdentityKey: string | null;
}

export interface SessionSummary extends SessionRow {
  /** Time of the head generation, null before the first backup. */
  lastBackupAt: Date | null;
  /** Why the head generation was written ("watch", "removed" for a tombstone…), null before the first backup. */
  headReason: string | null;
  files: number;
  bytes: number;
  /** What the writer last measured (sql/0007): null when never reported, [] when protected. */
  protectionReasons: string[] | null;
  /** Since when it has not been protected, by the writer; null when protected or never reported. */
  protectionSince: Date | null;
  /** The sessions-directory folder the session was kept from, when its id is a mapped one (sql/0005). */
  folder: string | null;
}

type Row = Record<string, unknown>;

/** The session columns, read through table alias `t`; lease_live is judged by the database's clock. */
function sessionColumns(t: string): string {
  return `${t}.session_id, ${t}.head_generation, ${t}.updated_at, ${t}.registered_jid, ${t}.lease_owner, ${t}.lease_token,
    ${t}.lease_expires_at, (${t}.lease_owner IS NOT NULL AND ${t}.lease_expires_at > now()) AS lease_live,
    ${t}.logged_out_generation, ${t}.logged_out_at, ${t}.logged_out_identity, ${t}.logged_out_by, ${t}.pending_identity_key`;
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
    loggedOut:
      row['logged_out_generation'] === null || row['logged_out_generation'] === undefined
        ? null
        : {
            generation: Number(row['logged_out_generation']),
            at: row['logged_out_at'] as Date,
            identity: (row['logged_out_identity'] as string | null) ?? null,
            by: row['logged_out_by'] === 'hand' ? 'hand' : 'seen',
          },
    pendingIdentityKey: (row['pending_identity_key'] as string | null) ?? null,
  };
}

/** Creates the session row if it does not exist yet. */
export async function ensureSession(q: Queryable, sessionId: string): Promise<void> {
  await q.query(`INSERT INTO ${q.schema}.sessions (session_id) VALUES ($1) ON CONFLICT (session_id) DO NOTHING`, [sessionId]);
}

/** The session row, or null when the session does not exist. */
export async function getSession(q: Queryable, sessionId: string): Promise<SessionRow | null> {
  const { rows } = await q.query(`SELECT ${sessionColumns('s')} FROM ${q.schema}.sessions s WHERE s.session_id = $1`, [sessionId]);
  return rows[0] ? toSession(rows[0]) : null;
}

/** Creates the session row if needed and records the folder it is kept from (a no-op when already recorded). */
export async function setFolder(q: Queryable, sessionId: string, folder: string): Promise<void> {
  await q.query(
    `INSERT INTO ${q.schema}.sessions AS s (session_id, folder) VALUES ($1, $2)
       ON CONFLICT (session_id) DO UPDATE SET folder = EXCLUDED.folder WHERE s.folder IS DISTINCT FROM EXCLUDED.folder`,
    [sessionId, folder],
  );
}

/** The session row with what its encryption marker rules need: the marker, and whether encrypted rows exist. */
export interface LockedSession extends SessionRow {
  /** The stored marker, or null when it has none (or only a part of one: that counts as none). */
  marker: EncryptionMarker | null;
  /** Whether any encrypted version is stored; only looked up (and only true) when the marker is null. */
  hasEncryptedRows: boolean;
}

/** The marker columns and, without a marker, whether encrypted rows exist (files_encrypted index). */
function markerColumns(t: string, schema: string): string {
  return `${t}.encrypted_since, ${t}.encrypted_since_key_id, ${t}.encrypted_since_mac,
    CASE WHEN ${t}.encrypted_since IS NULL OR ${t}.encrypted_since_key_id IS NULL OR ${t}.encrypted_since_mac IS NULL
         THEN EXISTS (SELECT 1 FROM ${schema}.files f WHERE f.session_id = ${t}.session_id AND f.key_id IS NOT NULL)
         ELSE false END AS has_encrypted_rows`;
}

function toLocked(row: Row): LockedSession {
  return { ...toSession(row), marker: toMarker(row), hasEncryptedRows: row['has_encrypted_rows'] === true };
}

/**
 * Reads the session row, its encryption marker included, and locks it until the transaction ends:
 * writers of one session queue here. One read serves the fence and the marker rules of a backup.
 */
export async function lockSession(tx: Queryable, sessionId: string): Promise<LockedSession | null> {
  const { rows } = await tx.query(
    `SELECT ${sessionColumns('s')}, ${markerColumns('s', tx.schema)}
       FROM ${tx.schema}.sessions s WHERE s.session_id = $1 FOR UPDATE OF s`,
    [sessionId],
  );
  return rows[0] ? toLocked(rows[0]) : null;
}

/** The session row with its marker facts, without locking it (verify, a restore's read); null when none. */
export async function getSessionWithMarker(q: Queryable, sessionId: string): Promise<LockedSession | null> {
  const { rows } = await q.query(
    `SELECT ${sessionColumns('s')}, ${markerColumns('s', q.schema)}
       FROM ${q.schema}.sessions s WHERE s.session_id = $1`,
    [sessionId],
  );
  return rows[0] ? toLocked(rows[0]) : null;
}

/** getSessionWithMarker for many sessions in one statement (a restore of a fleet); sessions not stored are absent. */
export async function sessionsWithMarker(q: Queryable, sessionIds: readonly string[]): Promise<LockedSession[]> {
  const { rows } = await q.query(
    `SELECT ${sessionColumns('s')}, ${markerColumns('s', q.schema)}
       FROM ${q.schema}.sessions s WHERE s.session_id = ANY($1::text[]) ORDER BY s.session_id`,
    [sessionIds],
  );
  return rows.map(toLocked);
}

/**
 * Sessions with their head generation's totals: one session when `sessionId` is given, else every
 * session whose id starts with `prefix` (every session for '').
 */
export async function listSessions(q: Queryable, sessionId: string | null, prefix = ''): Promise<SessionSummary[]> {
  const { rows } = await q.query(
    `SELECT ${sessionColumns('s')}, g.reason AS head_reason, s.protection_reasons, s.protection_since,
            s.folder, g.created_at AS last_backup_at, coalesce(g.total_files, 0) AS files, coalesce(g.total_bytes, 0) AS bytes
       FROM ${q.schema}.sessions s
       LEFT JOIN ${q.schema}.generations g ON g.session_id = s.session_id AND g.generation = s.head_generation
      WHERE ($1::text IS NULL OR s.session_id = $1) AND left(s.session_id, length($2::text)) = $2::text
      ORDER BY s.session_id`,
    [sessionId, prefix],
  );
  return rows.map((row) => ({
    ...toSession(row),
    lastBackupAt: (row['last_backup_at'] as Date | null) ?? null,
    headReason: (row['head_reason'] as string | null) ?? null,
    files: Number(row['files']),
    bytes: Number(row['bytes']),
    protectionReasons: (row['protection_reasons'] as string[] | null) ?? null,
    protectionSince: (row['protection_since'] as Date | null) ?? null,
    folder: (row['folder'] as string | null) ?? null,
  }));
}

/**
 * Records what the writer measured about the session's protection (`reasons` empty: protected), only
 * while `owner` holds the lease with `token`. False when it no longer does (nothing written).
 */
export async function setProtection(
  q: Queryable,
  sessionId: string,
  owner: string,
  token: number,
  reasons: readonly string[],
  since: Date | null,
): Promise<boolean> {
  const result = await q.query(
    `UPDATE ${q.schema}.sessions SET protection_reasons = $4::text[], protection_since = $5
      WHERE session_id = $1 AND lease_owner = $2 AND lease_token = $3`,
    [sessionId, owner, token, reasons, since],
  );
  return (result.rowCount ?? 0) > 0;
}

/** Moves the session's head to `generation` and records the head creds.json's registered jid. */
export async function setHead(tx: Queryable, sessionId: string, generation: number, registeredJid: string | null): Promise<void> {
  await tx.query(`UPDATE ${tx.schema}.sessions SET head_generation = $2, registered_jid = $3, updated_at = now() WHERE session_id = $1`, [
    sessionId,
    generation,
    registeredJid,
  ]);
}

/**
 * Records that the session is logged out as of `generation` (now, by the database's clock), naming the login
 * that was logged out by its fingerprint (creds.ts `identity`; null when unknown), and `by` whom: 'seen' (the
 * keeper saw the bot drop it) or 'hand' (the logout command or API).
 */
export async function setLoggedOut(
  tx: Queryable,
  sessionId: string,
  generation: number,
  identity: string | null,
  by: 'seen' | 'hand',
): Promise<void> {
  await tx.query(
    `UPDATE ${tx.schema}.sessions SET logged_out_generation = $2, logged_out_at = now(), logged_out_identity = $3, logged_out_by = $4
      WHERE session_id = $1`,
    [sessionId, generation, identity, by],
  );
}

/** Records (or, with null, forgets) the identity key of unpaired creds the guard refused over the session's paired login. */
export async function setPendingPairing(tx: Queryable, sessionId: string, identityKey: string | null): Promise<void> {
  await tx.query(`UPDATE ${tx.schema}.sessions SET pending_identity_key = $2 WHERE session_id = $1`, [sessionId, identityKey]);
}

/** Ends the session's logged-out state (a new pairing was stored, or the operator brought a login back); true when it was logged out. */
export async function clearLoggedOut(q: Queryable, sessionId: string): Promise<boolean> {
  const result = await q.query(
    `UPDATE ${q.schema}.sessions SET logged_out_generation = NULL, logged_out_at = NULL, logged_out_identity = NULL, logged_out_by = NULL
      WHERE session_id = $1 AND logged_out_generation IS NOT NULL`,
    [sessionId],
  );
  return (result.rowCount ?? 0) > 0;
}

/** Sets the stored registered jid (rekey replaces a full number with its masked form). */
export async function setRegisteredJid(tx: Queryable, sessionId: string, registeredJid: string | null): Promise<void> {
  await tx.query(`UPDATE ${tx.schema}.sessions SET registered_jid = $2 WHERE session_id = $1`, [sessionId, registeredJid]);
}

/** Deletes the session row; its generations and files go with it (ON DELETE CASCADE). False when there was none. */
export async function deleteSession(q: Queryable, sessionId: string): Promise<boolean> {
  const result = await q.query(`DELETE FROM ${q.schema}.sessions WHERE session_id = $1`, [sessionId]);
  return (result.rowCount ?? 0) > 0;
}

/** A session's encryption marker (sql/0003): the first generation written encrypted, authenticated. */
export interface EncryptionMarker {
  generation: number;
  keyId: string;
  mac: Buffer;
}

/** The marker in a row read with markerColumns, or null when a part of it is missing (verify reports that like a deleted one). */
function toMarker(row: Row): EncryptionMarker | null {
  if (row['encrypted_since'] === null || row['encrypted_since_key_id'] === null || row['encrypted_since_mac'] === null) return null;
  return {
    generation: Number(row['encrypted_since']),
    keyId: row['encrypted_since_key_id'] as string,
    mac: row['encrypted_since_mac'] as Buffer,
  };
}

/** Stores the session's marker, replacing the one it had. */
export async function setEncryptionMarker(tx: Queryable, sessionId: string, marker: EncryptionMarker): Promise<void> {
  await tx.query(
    `UPDATE ${tx.schema}.sessions SET encrypted_since = $2, encrypted_since_key_id = $3, encrypted_since_mac = $4 WHERE session_id = $1`,
    [sessionId, marker.generation, marker.keyId, marker.mac],
  );
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

/** What a batch acquisition says of one session: taken (with its new token), or held by another live owner. */
export type LeaseAttemptRow = { sessionId: string; token: number; expiresAt: Date } | { sessionId: string; holder: string | null };

/**
 * acquireLease for many sessions in one statement (a keeper of many sessions standing by): takes, for
 * `owner`, every listed lease that is free, expired or already ours, each with a new token; creates the
 * rows of sessions not stored yet with the lease taken. Rows locked by another transaction right now (a
 * backup of the live holder) are skipped, not waited for — they are tried again with the next batch — so
 * two keepers' batches never wait on each other nor deadlock. One row per listed session: taken, or the
 * holder the statement saw (null when it cannot tell: a skipped row, a row created concurrently).
 */
export async function acquireLeases(q: Queryable, sessionIds: readonly string[], owner: string, ttlMs: number): Promise<LeaseAttemptRow[]> {
  if (sessionIds.length === 0) return [];
  const { rows } = await q.query(
    `WITH wanted AS (SELECT DISTINCT unnest($1::text[]) AS session_id),
     free AS (
       SELECT s.session_id FROM ${q.schema}.sessions s JOIN wanted w ON w.session_id = s.session_id
        WHERE s.lease_owner IS NULL OR s.lease_expires_at <= now() OR s.lease_owner = $2
        ORDER BY s.session_id FOR UPDATE OF s SKIP LOCKED),
     taken AS (
       UPDATE ${q.schema}.sessions s
          SET lease_owner = $2, lease_token = s.lease_token + 1, lease_expires_at = now() + $3 * interval '1 millisecond'
         FROM free f
        WHERE s.session_id = f.session_id
        RETURNING s.session_id, s.lease_token, s.lease_expires_at),
     created AS (
       INSERT INTO ${q.schema}.sessions (session_id, lease_owner, lease_token, lease_expires_at)
       SELECT w.session_id, $2, 1, now() + $3 * interval '1 millisecond' FROM wanted w
        WHERE NOT EXISTS (SELECT 1 FROM ${q.schema}.sessions s WHERE s.session_id = w.session_id)
       ON CONFLICT (session_id) DO NOTHING
       RETURNING session_id, lease_token, lease_expires_at)
     SELECT w.session_id, coalesce(t.lease_token, c.lease_token) AS lease_token,
            coalesce(t.lease_expires_at, c.lease_expires_at) AS lease_expires_at,
            CASE WHEN s.lease_expires_at > now() THEN s.lease_owner END AS holder
       FROM wanted w
       LEFT JOIN taken t ON t.session_id = w.session_id
       LEFT JOIN created c ON c.session_id = w.session_id
       LEFT JOIN ${q.schema}.sessions s ON s.session_id = w.session_id`,
    [sessionIds, owner, ttlMs],
  );
  return rows.map((row) => {
    const sessionId = row['session_id'] as string;
    return row['lease_token'] === null
      ? { sessionId, holder: (row['holder'] as string | null) ?? null }
      : { sessionId, token: Number(row['lease_token']), expiresAt: row['lease_expires_at'] as Date };
  });
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

/**
 * Extends, in one statement, every lease of `owner` whose session and token are listed and that has
 * not expired. Returns the sessions renewed; a listed session missing from it lost its lease.
 */
export async function renewLeases(
  q: Queryable,
  owner: string,
  leases: readonly { sessionId: string; token: number }[],
  ttlMs: number,
): Promise<Set<string>> {
  if (leases.length === 0) return new Set();
  const { rows } = await q.query(
    `UPDATE ${q.schema}.sessions s SET lease_expires_at = now() + $4 * interval '1 millisecond'
       FROM unnest($1::text[], $2::bigint[]) AS held (session_id, token)
      WHERE s.session_id = held.session_id AND s.lease_owner = $3 AND s.lease_token = held.token AND s.lease_expires_at > now()
      RETURNING s.session_id`,
    [leases.map((lease) => lease.sessionId), leases.map((lease) => lease.token), owner, ttlMs],
  );
  return new Set(rows.map((row) => row['session_id'] as string));
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
