// Forward-only numbered migrations (sql/NNNN_name.sql, embedded at build time), each in its own transaction.
import { DatabaseUnreachableError } from '../errors.js';
import type { Database } from './pool.js';
import { schemaExists, schemaVersion } from './queries/probes.js';
import { MIGRATIONS } from '../generated/migrations.js';

// Key for pg_advisory_xact_lock: a transaction-level lock, so it also works behind PgBouncer in
// transaction mode. It serialises migrators of the same schema; different schemas do not wait.
const LOCK_NAMESPACE = 0x6b656570; // "keep"

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/**
 * Brings the schema to the newest version. Safe to call from many processes at once: every
 * transaction takes the same advisory lock first, then re-reads what has been applied.
 * Returns the schema version after the call.
 */
export async function migrate(db: Database, all: readonly Migration[] = MIGRATIONS): Promise<{ version: number; applied: string[] }> {
  const applied: string[] = [];
  for (;;) {
    const next = await db.transaction(async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [LOCK_NAMESPACE, db.schemaName]);
      // Look before creating: CREATE SCHEMA checks the database-level CREATE right even with
      // IF NOT EXISTS, and a least-privilege role that owns only its schema does not have it.
      const exists = await tx.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [db.schemaName]);
      if (exists.rowCount === 0)
        await tx.query(`CREATE SCHEMA ${db.schema}`).catch((error: unknown) => Promise.reject(schemaError(db, error)));
      await tx.query(
        `CREATE TABLE IF NOT EXISTS ${db.schema}.migrations (
           version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`,
      );
      const { rows } = await tx.query<{ version: number }>(`SELECT coalesce(max(version), 0)::int AS version FROM ${db.schema}.migrations`);
      const current = rows[0]?.version ?? 0;
      const migration = all.find((m) => m.version > current);
      if (!migration) return { done: true as const, version: current };
      await tx.query(`SET LOCAL search_path TO ${db.schema}`);
      await tx.query(migration.sql);
      await tx.query(`INSERT INTO ${db.schema}.migrations (version, name) VALUES ($1, $2)`, [migration.version, migration.name]);
      return { done: false as const, version: migration.version, name: migration.name };
    });
    if (next.done) return { version: next.version, applied };
    applied.push(next.name);
  }
}

/**
 * Where the schema stands for this keeper, read without changing anything (doctor, and the commands that
 * only read): whether it exists, the version its migrations table records (0 when it has none or cannot be
 * read) and the newest version `all` make.
 */
export async function schemaStanding(
  db: Database,
  all: readonly Migration[] = MIGRATIONS,
): Promise<{ exists: boolean; version: number; latest: number }> {
  const latest = Math.max(...all.map((migration) => migration.version));
  if (!(await schemaExists(db))) return { exists: false, version: 0, latest };
  return { exists: true, version: await schemaVersion(db), latest };
}

/** A role without the CREATE right on the database (least privilege) needs its schema made by an admin. */
function schemaError(db: Database, error: unknown): unknown {
  if ((error as { code?: unknown })?.code !== '42501') return error;
  return new DatabaseUnreachableError(
    `schema ${db.schemaName} does not exist and this database role may not create it: as an administrator run ` +
      `CREATE SCHEMA ${db.schema} AUTHORIZATION <the keeper's role>; (see docs/security.md, "Least-privilege database role")`,
    { cause: error },
  );
}
