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
