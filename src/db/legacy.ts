// Reading the table of the Flask/PostgreSQL session API the HTTP API is compatible with (docs/http-api.md):
// whatsapp_sessions(session_id, session_data JSONB {file name: file text}).
import { UsageError } from '../errors.js';
import { quoteIdentifier, type Database } from './pool.js';

export interface LegacyRow {
  sessionId: string;
  /** As stored: should be an object of file name → file text, but it is not trusted. */
  sessionData: unknown;
}

const TABLE_PATTERN = /^(?:[A-Za-z_][A-Za-z0-9_]{0,62}\.)?[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/** Rows of the legacy `table` (optionally schema-qualified), one session or all, by session_id. */
export async function legacyRows(db: Database, table: string, sessionId: string | null): Promise<LegacyRow[]> {
  if (!TABLE_PATTERN.test(table))
    throw new UsageError(
      `invalid --table ${JSON.stringify(table)}: expected a table name such as whatsapp_sessions or public.whatsapp_sessions`,
    );
  const qualified = table.split('.').map(quoteIdentifier).join('.');
  const { rows: found } = await db.query<{ oid: string | null }>('SELECT to_regclass($1)::text AS oid', [qualified]);
  if (!found[0]?.oid)
    throw new UsageError(
      `table ${table} does not exist in this database: check --table (the Flask session API's table is whatsapp_sessions) and DATABASE_URL`,
    );
  const { rows } = await db.query<{ session_id: string; session_data: unknown }>(
    `SELECT session_id, session_data FROM ${qualified} WHERE $1::text IS NULL OR session_id = $1 ORDER BY session_id`,
    [sessionId],
  );
  return rows.map((row) => ({ sessionId: row.session_id, sessionData: row.session_data }));
}
