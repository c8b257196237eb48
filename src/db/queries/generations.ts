// The generations table: one row per retained generation of a session (time, reason, what changed, totals).
// Every statement is one named function.
import type { Queryable } from '../pool.js';

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

/** Records generation `row.generation` of the session; returns the time the database stamped on it. */
export async function insertGeneration(tx: Queryable, sessionId: string, row: Omit<GenerationRow, 'createdAt'>): Promise<Date> {
  const { rows } = await tx.query(
    `INSERT INTO ${tx.schema}.generations (session_id, generation, reason, files_changed, files_deleted, total_files, total_bytes)
     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING created_at`,
    [sessionId, row.generation, row.reason, row.filesChanged, row.filesDeleted, row.totalFiles, row.totalBytes],
  );
  return rows[0]!['created_at'] as Date;
}

/** The generation's row, or null when it is not retained. */
export async function getGeneration(q: Queryable, sessionId: string, generation: number): Promise<GenerationRow | null> {
  const { rows } = await q.query(`SELECT * FROM ${q.schema}.generations WHERE session_id = $1 AND generation = $2`, [
    sessionId,
    generation,
  ]);
  return rows[0] ? toGeneration(rows[0]) : null;
}

/** The head generation's row of each listed session that has one, by session id, in one statement. */
export async function headGenerations(q: Queryable, sessionIds: readonly string[]): Promise<Map<string, GenerationRow>> {
  const { rows } = await q.query(
    `SELECT g.* FROM ${q.schema}.sessions s
       JOIN ${q.schema}.generations g ON g.session_id = s.session_id AND g.generation = s.head_generation
      WHERE s.session_id = ANY($1::text[])`,
    [sessionIds],
  );
  return new Map(rows.map((row) => [row['session_id'] as string, toGeneration(row)]));
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
  const { rows } = await q.query(`SELECT * FROM ${q.schema}.generations WHERE session_id = $1 ORDER BY generation DESC LIMIT $2`, [
    sessionId,
    limit,
  ]);
  return rows.map(toGeneration);
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

/** Deletes these generations' rows (not their file versions: see deleteInvisibleFiles in files.ts). */
export async function deleteGenerations(tx: Queryable, sessionId: string, generations: number[]): Promise<number> {
  const result = await tx.query(`DELETE FROM ${tx.schema}.generations WHERE session_id = $1 AND generation = ANY($2::bigint[])`, [
    sessionId,
    generations,
  ]);
  return result.rowCount ?? 0;
}

/** What a session's head is checked against (SessionStore.headDamage): one row per session. */
export interface HeadFacts {
  sessionId: string;
  headGeneration: number;
  /** The head generation has its row in the generations table. */
  headRow: boolean;
  /** The newest stored generation row, null when there is none. */
  newestGeneration: number | null;
  /** The newest generation that closed a file version (replaced or deleted it), null when none. */
  newestClosing: number | null;
  /** The newest generation that wrote a file version; null when none, or when `withWrites` was false. */
  newestWriting: number | null;
}

/**
 * The head facts of one session (`sessionId`) or of every session with `prefix`, read in one statement
 * (one snapshot). Cheap without `withWrites` (primary key and the files_closed index); with it, every
 * stored version of each session is scanned, for checks of one session (restore, verify).
 */
export async function headFacts(q: Queryable, sessionId: string | null, prefix: string, withWrites: boolean): Promise<HeadFacts[]> {
  return headFactsWhere(
    q,
    `($1::text IS NULL OR s.session_id = $1) AND left(s.session_id, length($2::text)) = $2::text`,
    [sessionId, prefix],
    withWrites,
  );
}

/** headFacts of the listed sessions (those stored), in one statement: a restore of a fleet, a batch at a time. */
export async function headFactsOf(q: Queryable, sessionIds: readonly string[], withWrites: boolean): Promise<HeadFacts[]> {
  return headFactsWhere(q, 's.session_id = ANY($1::text[])', [sessionIds], withWrites);
}

/** The head facts of the sessions matching `where` (over alias s; `values` are its $1..$n, withWrites comes last). */
async function headFactsWhere(q: Queryable, where: string, values: unknown[], withWrites: boolean): Promise<HeadFacts[]> {
  const writes = `$${values.length + 1}`;
  const { rows } = await q.query(
    `SELECT s.session_id, s.head_generation,
            EXISTS (SELECT 1 FROM ${q.schema}.generations g WHERE g.session_id = s.session_id AND g.generation = s.head_generation) AS head_row,
            (SELECT max(g.generation) FROM ${q.schema}.generations g WHERE g.session_id = s.session_id) AS newest_generation,
            (SELECT max(f.generation_to) FROM ${q.schema}.files f
              WHERE f.session_id = s.session_id AND f.generation_to IS NOT NULL) AS newest_closing,
            CASE WHEN ${writes}::boolean THEN (SELECT max(f.generation_from) FROM ${q.schema}.files f WHERE f.session_id = s.session_id) END AS newest_writing
       FROM ${q.schema}.sessions s
      WHERE ${where}
      ORDER BY s.session_id`,
    [...values, withWrites],
  );
  const orNull = (value: unknown) => (value === null || value === undefined ? null : Number(value));
  return rows.map((row) => ({
    sessionId: row['session_id'] as string,
    headGeneration: Number(row['head_generation']),
    headRow: row['head_row'] === true,
    newestGeneration: orNull(row['newest_generation']),
    newestClosing: orNull(row['newest_closing']),
    newestWriting: orNull(row['newest_writing']),
  }));
}
