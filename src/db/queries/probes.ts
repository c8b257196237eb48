// What `doctor` asks the server about this connection and role: TLS as negotiated, whether the schema
// exists and what the role may do in it, the schema version, and the privileges on the keeper's tables.
import type { Database } from '../pool.js';

/** The privileges the keeper needs on each of its tables. */
export const TABLE_PRIVILEGES = 'SELECT, INSERT, UPDATE, DELETE';

/** TLS as negotiated for this connection (pg_stat_ssl): whether it is on, and its protocol version. */
export async function connectionTls(db: Database): Promise<{ ssl: boolean; version: string | null }> {
  const { rows } = await db.query<{ ssl: boolean; version: string | null }>(
    'SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()',
  );
  return { ssl: rows[0]?.ssl === true, version: rows[0]?.version ?? null };
}

/** Whether the keeper's schema exists. */
export async function schemaExists(db: Database): Promise<boolean> {
  const exists = await db.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [db.schemaName]);
  return (exists.rowCount ?? 0) > 0;
}

/** Whether the role may create a schema in this database (needed when the keeper's does not exist yet). */
export async function mayCreateSchema(db: Database): Promise<boolean> {
  const { rows } = await db.query<{ create: boolean }>(
    "SELECT has_database_privilege(current_user, current_database(), 'CREATE') AS create",
  );
  return rows[0]?.create === true;
}

/** The role's USAGE and CREATE rights on the keeper's schema. */
export async function schemaRights(db: Database): Promise<{ usage: boolean; create: boolean }> {
  const { rows } = await db.query<{ usage: boolean; create: boolean }>(
    "SELECT has_schema_privilege(current_user, $1, 'USAGE') AS usage, has_schema_privilege(current_user, $1, 'CREATE') AS create",
    [db.schemaName],
  );
  return { usage: rows[0]?.usage === true, create: rows[0]?.create === true };
}

/** The schema's migration version; 0 when it has none or the migrations table cannot be read. */
export async function schemaVersion(db: Database): Promise<number> {
  return db
    .query<{ version: number }>(`SELECT coalesce(max(version), 0)::int AS version FROM ${db.schema}.migrations`)
    .then((result) => result.rows[0]?.version ?? 0)
    .catch(() => 0);
}

/** Whether the role holds TABLE_PRIVILEGES on the keeper's `table`; null when the table does not exist. */
export async function tablePrivileges(db: Database, table: string): Promise<boolean | null> {
  const { rows } = await db.query<{ granted: boolean | null }>(
    `SELECT CASE WHEN to_regclass($1) IS NULL THEN NULL ELSE has_table_privilege(current_user, $1, '${TABLE_PRIVILEGES}') END AS granted`,
    [`${db.schema}.${table}`],
  );
  return rows[0]?.granted ?? null;
}
