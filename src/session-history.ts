// A session's history as `history --json` and the session API (`GET /api/session/history`) show it.
import type { RetentionPolicy } from './store/retention.js';
import type { GenerationRow } from './store/index.js';

/** One retained generation, as shown. */
export interface GenerationJson {
  generation: number;
  /** ISO-8601, the database's clock. */
  created_at: string;
  files_changed: number;
  files_deleted: number;
  total_files: number;
  total_bytes: number;
  /** What made it: `watch`, `interval`, `api`, `import`, `logout`, `tombstone`, … */
  reason: string;
}

/** The public shape of a history: the session, the retention schedule that keeps it, its generations. */
export interface SessionHistoryJson {
  session_id: string;
  retention: { schedule: string; keep: number };
  generations: GenerationJson[];
}

/** The public history of `sessionId`: `generations` as given (newest first from the store), under `retention`. */
export function sessionHistoryJson(
  sessionId: string,
  retention: RetentionPolicy,
  generations: readonly GenerationRow[],
): SessionHistoryJson {
  return {
    session_id: sessionId,
    retention: { schedule: retention.text, keep: retention.keep },
    generations: generations.map((g) => ({
      generation: g.generation,
      created_at: g.createdAt.toISOString(),
      files_changed: g.filesChanged,
      files_deleted: g.filesDeleted,
      total_files: g.totalFiles,
      total_bytes: g.totalBytes,
      reason: g.reason,
    })),
  };
}
