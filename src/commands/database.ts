// How a command reaches the store: the database (configured, or the embedded one started here),
// connected and migrated (or, for a command that only reads, checked), retried while unreachable; and
// the session's lease for one-shot writers.
import { systemClock } from '../clock.js';
import { type Config, DEFAULT_LEASE_TTL_MS, type DatabaseSettings } from '../config.js';
import { isUnreachable } from '../db/errors.js';
import { openDatabaseWithRetry, RETRY_INITIAL_MS, RETRY_MAX_MS, type Database } from '../db/pool.js';
import { startEmbedded } from '../embedded-postgres.js';
import { connectionSettings, settingsForUrl, type ConnectionSettings } from '../db/settings.js';
import { migrate, schemaStanding } from '../db/migrate.js';
import { DatabaseUnreachableError, describeError, KeeperError, NothingStoredError, RefusedError } from '../errors.js';
import type { Logger } from '../log.js';
import { leaseOwner } from '../lease.js';
import { retry } from '../retry.js';
import { SessionStore, type Lease } from '../store/index.js';
import type { Context } from './command.js';

/**
 * How a command meets the schema: `migrate` creates or upgrades it first (every command that writes);
 * `read` takes it as it is and changes nothing (status, history, verify, export): see readableSchema.
 */
export type SchemaAccess = 'migrate' | 'read';

/**
 * Connects, migrates (or, with `access` 'read', checks that the schema can be read: readableSchema), runs
 * fn with the store, and always closes what it opened, including an embedded server it started. While the
 * database is unreachable — at connect or later, as in a failover mid-restore — the whole attempt is
 * retried for up to waitMs, then it fails with exit 2.
 */
export async function withStore<T>(
  ctx: Context,
  fn: (store: SessionStore, db: Database, schema: { version: number; applied: string[] }) => Promise<T>,
  waitMs = 0,
  access: SchemaAccess = 'migrate',
): Promise<T> {
  const log = ctx.log.child({ component: 'db' });
  const target = await databaseTarget(ctx);
  try {
    return await usingDatabase(target.url, ctx.config.schema, log, waitMs, fn, ctx.config, access);
  } finally {
    await target.stop();
  }
}

/**
 * For a command that only reads: the schema as it is, never created or upgraded. NothingStoredError (exit 3)
 * when it does not exist or holds no migrations yet; RefusedError (exit 1) when it is older than this keeper,
 * whose queries may need what a newer version adds, saying to run `migrate`. A newer schema is read as the
 * writers use it (migrate leaves it as it is).
 */
async function readableSchema(db: Database): Promise<{ version: number; applied: string[] }> {
  const { exists, version, latest } = await schemaStanding(db);
  if (!exists || version === 0)
    throw new NothingStoredError(
      `nothing is stored yet: schema ${db.schemaName} ${exists ? 'holds no keeper tables' : 'does not exist'} in this database ` +
        "(the first backup, sidecar or 'baileys-keeper migrate' creates it); check --database-url and --schema if you expected sessions here",
    );
  if (version < latest)
    throw new RefusedError(
      `schema ${db.schemaName} is at version ${version}, this keeper needs ${latest}: run 'baileys-keeper migrate' ` +
        '(as a role that may change the schema), then retry; commands that only read never change the database',
    );
  return { version, applied: [] };
}

/** withStore's core for a known database (run uses it with the server it keeps for its sidecar). */
export async function usingDatabase<T>(
  url: ConnectionSettings,
  schemaName: string,
  log: Logger,
  waitMs: number,
  fn: (store: SessionStore, db: Database, schema: { version: number; applied: string[] }) => Promise<T>,
  settings: Pick<Config, 'encryption' | 'requireEncryption'> & Partial<Pick<Config, 'allowRollback'>> = {
    encryption: null,
    requireEncryption: false,
  },
  access: SchemaAccess = 'migrate',
): Promise<T> {
  const clock = systemClock;
  const deadline = clock.now() + waitMs;
  return retry(
    async () => {
      const db = await openDatabaseWithRetry({ url, schema: schemaName, log, waitMs: Math.max(0, deadline - clock.now()), clock });
      try {
        const schema = access === 'read' ? await readableSchema(db) : await migrate(db);
        if (schema.applied.length > 0) log.info({ version: schema.version, applied: schema.applied }, 'schema migrated');
        return await fn(
          new SessionStore(db, settings.encryption, {
            requireEncryption: settings.requireEncryption,
            allowRollback: settings.allowRollback ?? false,
          }),
          db,
          schema,
        );
      } finally {
        await db.close().catch(() => undefined);
      }
    },
    {
      clock,
      initialMs: RETRY_INITIAL_MS,
      factor: 2,
      maxMs: RETRY_MAX_MS,
      deadline,
      retryable: (error) => !(error instanceof KeeperError) && isUnreachable(error),
      exhausted: (error) =>
        new DatabaseUnreachableError(`lost the connection to PostgreSQL (${describeError(error)}): check that it is running, then retry`, {
          cause: error,
        }),
      onRetry: ({ error, delayMs }) => log.warn({ err: describeError(error), retryInMs: delayMs }, 'database connection lost, retrying'),
    },
  );
}

/** Where the database is: the configured one, or the embedded server (started here) when none is. */
export interface DatabaseTarget {
  /** The connection settings (named url for the callers that predate them); print with describeTarget only. */
  url: ConnectionSettings;
  /** Stops the embedded server if this process started it. */
  stop(): Promise<void>;
}

/**
 * The connection settings for the database settings as given (src/db/settings.ts: libpq's meanings), or
 * null for none (the embedded default). Throws UsageError (exit 64) for a setting that cannot work.
 */
export function resolveDatabase(given: DatabaseSettings | null): ConnectionSettings | null {
  return given === null ? null : connectionSettings(given.url, given.pgVariables, given.source);
}

export async function databaseTarget(ctx: Context): Promise<DatabaseTarget> {
  const configured = resolveDatabase(ctx.config.database);
  if (configured !== null) return { url: configured, stop: async () => undefined };
  const server = await startEmbedded(ctx.config.dataDir, ctx.log.child({ component: 'db' }), { env: ctx.config.childEnv });
  // A loopback server the keeper started without TLS: no TLS attempt first.
  return { url: settingsForUrl(`${server.url}?sslmode=disable`), stop: () => server.stop() };
}

/** Runs fn holding the session's single-writer lease; refuses while another writer (a sidecar) holds it. */
export async function withLease<T>(store: SessionStore, sessionId: string, fn: (lease: Lease) => Promise<T>): Promise<T> {
  const lease = await store.acquireLease(sessionId, leaseOwner(), DEFAULT_LEASE_TTL_MS);
  if (!lease) {
    const holder = await store.leaseHolder(sessionId);
    throw new RefusedError(
      `session ${sessionId} is being written by ${holder?.owner ?? 'another process'} ` +
        `(lease until ${holder?.expiresAt.toISOString() ?? 'soon'}): ` +
        'its sidecar backs the directory up already; use its HTTP API, or stop it first',
    );
  }
  try {
    return await fn(lease);
  } finally {
    await store.releaseLease(sessionId, lease);
  }
}
