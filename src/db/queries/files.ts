// The files table: temporally versioned file contents (a version is visible at generation G when
// generation_from <= G < generation_to), plaintext or encrypted. Every statement is one named function.
import type { Queryable } from '../pool.js';

export interface FileVersion {
  name: string;
  sha256: Buffer;
  size: number;
  content: Buffer;
  keyId: string | null;
  /** How an encrypted row is sealed (crypto.cipherOf): null for plaintext rows and format 1. */
  cipherVersion: number | null;
}

export interface StoredFileVersion extends FileVersion {
  generationFrom: number;
  generationTo: number | null;
}

/** What change detection compares: the stored digest and, when the row is encrypted, its key id. */
export interface StoredDigest {
  /** sha256 of the content for plaintext rows; the keyed hash (crypto.keyedHash) when keyId is set. */
  digest: Buffer;
  keyId: string | null;
  /** The recorded stamp text of the version (files.stamp), null when not known. */
  stamp: string | null;
}

type Row = Record<string, unknown>;

function toDigests(rows: Row[]): Map<string, StoredDigest> {
  return new Map(
    rows.map((row) => [
      row['name'] as string,
      { digest: row['sha256'] as Buffer, keyId: (row['key_id'] as string | null) ?? null, stamp: (row['stamp'] as string | null) ?? null },
    ]),
  );
}

function toStoredVersion(row: Row): StoredFileVersion {
  return {
    ...toVersionDigest(row),
    content: row['content'] as Buffer,
    cipherVersion: row['cipher_version'] === null ? null : Number(row['cipher_version']),
  };
}

/** name → digest of every current (head) file of the session. */
export async function currentHashes(q: Queryable, sessionId: string): Promise<Map<string, StoredDigest>> {
  const { rows } = await q.query(
    `SELECT name, sha256, key_id, stamp FROM ${q.schema}.files WHERE session_id = $1 AND generation_to IS NULL`,
    [sessionId],
  );
  return toDigests(rows);
}

/** name → digest of the named current files (names not stored are absent). */
export async function currentHashesOf(q: Queryable, sessionId: string, names: string[]): Promise<Map<string, StoredDigest>> {
  const { rows } = await q.query(
    `SELECT name, sha256, key_id, stamp FROM ${q.schema}.files WHERE session_id = $1 AND name = ANY($2::text[]) AND generation_to IS NULL`,
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

/** The files and plaintext bytes of the session's current versions (what the head holds, counted from the rows). */
export async function currentTotals(q: Queryable, sessionId: string): Promise<{ files: number; bytes: number }> {
  const { rows } = await q.query(
    `SELECT count(*) AS files, coalesce(sum(size), 0) AS bytes FROM ${q.schema}.files WHERE session_id = $1 AND generation_to IS NULL`,
    [sessionId],
  );
  return { files: Number(rows[0]!['files']), bytes: Number(rows[0]!['bytes']) };
}

/** Rows per INSERT: bounds the memory of one statement (bytea travels hex-encoded, twice its size). */
const INSERT_CHUNK_ROWS = 500;

/**
 * Content bytes per multi-row INSERT. An array of bytea travels as hex text, built in several copies of
 * twice its size on the JavaScript heap; a file over this goes alone, as a binary parameter (no copy on
 * the heap), so that a 16 MiB file stays within the heap a 384 MiB container gives Node.
 */
const INSERT_CHUNK_BYTES = 1024 * 1024;

/** Inserts new current versions: up to a few hundred small rows per statement, a large one alone. */
export async function insertFiles(tx: Queryable, sessionId: string, generation: number, all: FileVersion[]): Promise<void> {
  let chunk: FileVersion[] = [];
  let bytes = 0;
  for (const file of all) {
    if (file.content.length > INSERT_CHUNK_BYTES) {
      await insertOne(tx, sessionId, generation, file);
      continue;
    }
    if (chunk.length === INSERT_CHUNK_ROWS || bytes + file.content.length > INSERT_CHUNK_BYTES) {
      await insertChunk(tx, sessionId, generation, chunk);
      chunk = [];
      bytes = 0;
    }
    chunk.push(file);
    bytes += file.content.length;
  }
  if (chunk.length > 0) await insertChunk(tx, sessionId, generation, chunk);
}

async function insertOne(tx: Queryable, sessionId: string, generation: number, file: FileVersion): Promise<void> {
  await tx.query(
    `INSERT INTO ${tx.schema}.files (session_id, name, generation_from, sha256, size, content, key_id, cipher_version)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
    [sessionId, file.name, generation, file.sha256, file.size, file.content, file.keyId, file.cipherVersion],
  );
}

async function insertChunk(tx: Queryable, sessionId: string, generation: number, files: FileVersion[]): Promise<void> {
  await tx.query(
    `INSERT INTO ${tx.schema}.files (session_id, name, generation_from, sha256, size, content, key_id, cipher_version)
     SELECT $1, f.name, $2, f.sha256, f.size, f.content, f.key_id, f.cipher_version
       FROM unnest($3::text[], $4::bytea[], $5::int[], $6::bytea[], $7::text[], $8::smallint[])
            AS f(name, sha256, size, content, key_id, cipher_version)`,
    [
      sessionId,
      generation,
      files.map((f) => f.name),
      files.map((f) => f.sha256),
      files.map((f) => f.size),
      files.map((f) => f.content),
      files.map((f) => f.keyId),
      files.map((f) => f.cipherVersion),
    ],
  );
}

/** The files as they were at `generation`: one query over the temporal ranges. */
export async function filesAt(q: Queryable, sessionId: string, generation: number): Promise<StoredFileVersion[]> {
  const { rows } = await q.query(
    `SELECT name, generation_from, generation_to, sha256, size, content, key_id, cipher_version FROM ${q.schema}.files
      WHERE session_id = $1 AND generation_from <= $2 AND (generation_to IS NULL OR generation_to > $2)
      ORDER BY name`,
    [sessionId, generation],
  );
  return rows.map(toStoredVersion);
}

/**
 * The files visible at the head of each listed session (filesAt of its head generation), in one
 * statement ordered by session, then name: a restore of a fleet reads a batch of sessions at a time.
 */
export async function filesAtHeads(q: Queryable, sessionIds: readonly string[]): Promise<Map<string, StoredFileVersion[]>> {
  const { rows } = await q.query(
    `SELECT f.session_id, f.name, f.generation_from, f.generation_to, f.sha256, f.size, f.content, f.key_id, f.cipher_version
       FROM ${q.schema}.sessions s
       JOIN ${q.schema}.files f ON f.session_id = s.session_id
        AND f.generation_from <= s.head_generation AND (f.generation_to IS NULL OR f.generation_to > s.head_generation)
      WHERE s.session_id = ANY($1::text[])
      ORDER BY f.session_id, f.name`,
    [sessionIds],
  );
  const bySession = new Map<string, StoredFileVersion[]>();
  for (const row of rows) {
    const id = row['session_id'] as string;
    const list = bySession.get(id) ?? [];
    if (list.length === 0) bySession.set(id, list);
    list.push(toStoredVersion(row));
  }
  return bySession;
}

/** One page of every stored version of the session, in (name, generation_from) order after `after`. */
export async function fileVersionsPage(
  q: Queryable,
  sessionId: string,
  after: { name: string; generationFrom: number } | null,
  limit: number,
): Promise<StoredFileVersion[]> {
  const { rows } = await q.query(
    `SELECT name, generation_from, generation_to, sha256, size, content, key_id, cipher_version FROM ${q.schema}.files
      WHERE session_id = $1 AND ($2::text IS NULL OR (name, generation_from) > ($2, $3))
      ORDER BY name, generation_from LIMIT $4`,
    [sessionId, after?.name ?? null, after?.generationFrom ?? 0, limit],
  );
  return rows.map(toStoredVersion);
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
    `SELECT name, generation_from, generation_to, sha256, size, content, key_id, cipher_version FROM ${q.schema}.files
      WHERE session_id = $1 AND generation_to IS NULL AND key_id IS NULL ORDER BY name`,
    [sessionId],
  );
  return rows.map(toStoredVersion);
}

/**
 * One page, in primary-key order after `after`, of the session's stored versions that are not sealed
 * under key `keyId` in cipher version `cipherVersion` (plaintext ones included), locked until the
 * transaction ends.
 */
export async function versionsNotSealedWith(
  tx: Queryable,
  sessionId: string,
  sealed: { keyId: string; cipherVersion: number | null },
  after: { name: string; generationFrom: number } | null,
  limit: number,
): Promise<StoredFileVersion[]> {
  const { rows } = await tx.query(
    `SELECT name, generation_from, generation_to, sha256, size, content, key_id, cipher_version FROM ${tx.schema}.files
      WHERE session_id = $1 AND (key_id IS DISTINCT FROM $2 OR cipher_version IS DISTINCT FROM $3::smallint)
        AND ($4::text IS NULL OR (name, generation_from) > ($4, $5))
      ORDER BY name, generation_from LIMIT $6 FOR UPDATE`,
    [sessionId, sealed.keyId, sealed.cipherVersion, after?.name ?? null, after?.generationFrom ?? 0, limit],
  );
  return rows.map(toStoredVersion);
}

/** Replaces a stored version's content, digest, key id and cipher version (rekey); the row keeps its identity. */
export async function reencryptVersions(
  tx: Queryable,
  sessionId: string,
  rows: { name: string; generationFrom: number; content: Buffer; digest: Buffer; keyId: string; cipherVersion: number | null }[],
): Promise<void> {
  if (rows.length === 0) return;
  await tx.query(
    `UPDATE ${tx.schema}.files f SET content = r.content, sha256 = r.digest, key_id = r.key_id, cipher_version = r.cipher_version
       FROM unnest($2::text[], $3::bigint[], $4::bytea[], $5::bytea[], $6::text[], $7::smallint[])
            AS r(name, generation_from, content, digest, key_id, cipher_version)
      WHERE f.session_id = $1 AND f.name = r.name AND f.generation_from = r.generation_from`,
    [
      sessionId,
      rows.map((r) => r.name),
      rows.map((r) => r.generationFrom),
      rows.map((r) => r.content),
      rows.map((r) => r.digest),
      rows.map((r) => r.keyId),
      rows.map((r) => r.cipherVersion),
    ],
  );
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

/** A stored version without its content: enough to compare digests and validity ranges. */
export type VersionDigest = Omit<StoredFileVersion, 'content' | 'cipherVersion'>;

function toVersionDigest(row: Row): VersionDigest {
  return {
    name: row['name'] as string,
    generationFrom: Number(row['generation_from']),
    generationTo: row['generation_to'] === null ? null : Number(row['generation_to']),
    sha256: row['sha256'] as Buffer,
    size: Number(row['size']),
    keyId: (row['key_id'] as string | null) ?? null,
  };
}

/**
 * The versions that tell generations after `generation` apart from it, without contents: those closed
 * after it, and the current versions of `names`.
 */
export async function versionDigestsChangedSince(
  q: Queryable,
  sessionId: string,
  generation: number,
  names: string[],
): Promise<VersionDigest[]> {
  const { rows } = await q.query(
    `SELECT name, generation_from, generation_to, sha256, size, key_id FROM ${q.schema}.files
      WHERE session_id = $1 AND (generation_to > $2 OR (generation_to IS NULL AND name = ANY($3::text[])))`,
    [sessionId, generation, names],
  );
  return rows.map(toVersionDigest);
}

/** The newest generation that wrote a current version of a file not among `names` (0: none). */
export async function newestCurrentWriteOutside(q: Queryable, sessionId: string, names: string[]): Promise<number> {
  const { rows } = await q.query(
    `SELECT coalesce(max(generation_from), 0) AS generation FROM ${q.schema}.files
      WHERE session_id = $1 AND generation_to IS NULL AND NOT (name = ANY($2::text[]))`,
    [sessionId, names],
  );
  return Number(rows[0]!['generation']);
}

/** The current versions of the named files, contents included. */
export async function currentVersionsOf(q: Queryable, sessionId: string, names: string[]): Promise<StoredFileVersion[]> {
  const { rows } = await q.query(
    `SELECT name, generation_from, generation_to, sha256, size, content, key_id, cipher_version FROM ${q.schema}.files
      WHERE session_id = $1 AND name = ANY($2::text[]) AND generation_to IS NULL`,
    [sessionId, names],
  );
  return rows.map(toStoredVersion);
}

/**
 * The closed (replaced or deleted) versions whose name and digest are among `pairs`: a file that
 * comes back byte for byte as it was before. Reads only the versions of the named files.
 */
export async function closedVersionsMatching(
  q: Queryable,
  sessionId: string,
  pairs: readonly { name: string; digest: Buffer }[],
): Promise<{ name: string; generationFrom: number; generationTo: number }[]> {
  if (pairs.length === 0) return [];
  const { rows } = await q.query(
    `SELECT f.name, f.generation_from, f.generation_to FROM ${q.schema}.files f
       JOIN unnest($2::text[], $3::bytea[]) AS d(name, digest) ON f.name = d.name AND f.sha256 = d.digest
      WHERE f.session_id = $1 AND f.generation_to IS NOT NULL
      ORDER BY f.name, f.generation_to`,
    [sessionId, pairs.map((p) => p.name), pairs.map((p) => p.digest)],
  );
  return rows.map((row) => ({
    name: row['name'] as string,
    generationFrom: Number(row['generation_from']),
    generationTo: Number(row['generation_to']),
  }));
}

/** Every current file of the session: its name, recorded stamp text (files.stamp, null when not known) and key id. */
export async function currentStamps(
  q: Queryable,
  sessionId: string,
): Promise<{ name: string; stamp: string | null; keyId: string | null }[]> {
  const { rows } = await q.query(`SELECT name, stamp, key_id FROM ${q.schema}.files WHERE session_id = $1 AND generation_to IS NULL`, [
    sessionId,
  ]);
  return rows.map((row) => ({
    name: row['name'] as string,
    stamp: (row['stamp'] as string | null) ?? null,
    keyId: (row['key_id'] as string | null) ?? null,
  }));
}

/** Records `stamp` on the current version of each named file (names without one are left alone). */
export async function setStamps(tx: Queryable, sessionId: string, stamps: ReadonlyMap<string, string>): Promise<void> {
  if (stamps.size === 0) return;
  await tx.query(
    `UPDATE ${tx.schema}.files AS f SET stamp = s.stamp
       FROM unnest($2::text[], $3::text[]) AS s(name, stamp)
      WHERE f.session_id = $1 AND f.name = s.name AND f.generation_to IS NULL`,
    [sessionId, [...stamps.keys()], [...stamps.values()]],
  );
}
