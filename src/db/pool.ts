// The only module that opens a pg.Pool. Everything else sees the small Database interface: queries,
// transactions on one connection, close.
import pg from 'pg';
import { systemClock, type Clock } from '../clock.js';
import { DatabaseUnreachableError, describeError, UsageError } from '../errors.js';
import type { Logger } from '../log.js';
import { retry } from '../retry.js';
import { hasClientHooks, keeperClient } from './auth.js';
import { isUnreachable, NO_PASSWORD, toKeeperError } from './errors.js';
import { settingsForUrl, type ConnectionSettings } from './settings.js';
import { TlsFallback, tlsPlan, type Tls, type TlsPlan } from './tls.js';

/** At most this many connections per process: the sidecar needs one for backups and one for the lease. */
export const POOL_MAX_CONNECTIONS = 2;
/** A keeper of many sessions: backups of different sessions overlap (docs/many-sessions.md: at most 4). */
export const FLEET_POOL_MAX_CONNECTIONS = 4;
/** How long one connection attempt may take before it counts as unreachable, ms (connect_timeout overrides it). */
export const CONNECT_TIMEOUT_MS = 10_000;
/** Longest a query may take before it is abandoned (a half-open connection must not freeze the loop), ms. */
export const QUERY_TIMEOUT_MS = 60_000;
/** First and largest pause between connection attempts, ms. */
export const RETRY_INITIAL_MS = 250;
export const RETRY_MAX_MS = 5_000;
/** An idle pooled connection is closed after this long, ms. */
const IDLE_TIMEOUT_MS = 30_000;

/**
 * Anything that runs a query in the keeper's schema: the database (each query on any pooled connection)
 * or one transaction (every query on its connection). Query functions take only this.
 */
export interface Queryable {
  /** The keeper's schema, already quoted for use in SQL text. */
  readonly schema: string;
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>>;
}

export interface Database extends Queryable {
  /** The keeper's schema as configured (unquoted), e.g. for advisory lock keys and messages. */
  readonly schemaName: string;
  /**
   * Runs fn inside BEGIN … COMMIT on one connection; rolls back if it throws. `snapshot`: a read-only
   * REPEATABLE READ transaction, so every query in it sees the same committed state.
   */
  transaction<T>(fn: (tx: Queryable) => Promise<T>, mode?: 'snapshot'): Promise<T>;
  close(): Promise<void>;
}

export interface OpenOptions {
  /** Where to connect: parsed settings (config.database), or a URL the keeper or a test made (read without the environment). */
  url: ConnectionSettings | string;
  schema: string;
  log: Logger;
  /** Called for every error the pool reports on idle connections (the process must not crash). */
  onError?: (error: Error) => void;
  /** Connections the pool may open; default POOL_MAX_CONNECTIONS. */
  maxConnections?: number;
}

/** Opens a pool and proves it works with one round trip; throws DatabaseUnreachableError if it cannot. */
export async function openDatabase(options: OpenOptions): Promise<Database> {
  const database = createDatabase(options);
  try {
    await database.query('SELECT 1');
  } catch (error) {
    await database.close().catch(() => undefined);
    throw toKeeperError(error, settingsOf(options.url));
  }
  return database;
}

/**
 * A pool that connects on first use and reconnects after outages; nothing is checked up front.
 * For the long-running roles, which must start and keep running while the database is down.
 */
export function createDatabase(options: OpenOptions): Database {
  const settings = settingsOf(options.url);
  if (settings.channelBinding === 'require' && !hasClientHooks()) {
    throw new UsageError(
      'channel_binding=require cannot be enforced with this version of node-postgres: remove it or set channel_binding=prefer',
    );
  }
  const plan = tlsPlan(settings);
  const newPool = (ssl: Tls): pg.Pool => {
    const pool = new pg.Pool(poolConfig(settings, ssl, options.maxConnections ?? POOL_MAX_CONNECTIONS));
    pool.on('error', (error) => {
      options.log.warn({ err: describeError(error) }, 'database connection lost');
      options.onError?.(error);
    });
    return pool;
  };
  return new PoolDatabase(newPool, plan, options.schema);
}

function settingsOf(url: ConnectionSettings | string): ConnectionSettings {
  return typeof url === 'string' ? settingsForUrl(url) : url;
}

/** The pg.Pool configuration for the settings: every value given, so pg takes nothing from process.env. */
function poolConfig(settings: ConnectionSettings, ssl: Tls, max: number): pg.PoolConfig {
  return {
    host: settings.host,
    port: settings.port,
    database: settings.database,
    user: settings.user,
    // Asked for only when the server wants a password; never from pg's own PGPASSWORD/.pgpass lookup.
    password: () => {
      if (settings.password === null) {
        throw Object.assign(new Error('the server asks for a password, but none is configured'), { code: NO_PASSWORD });
      }
      return settings.password;
    },
    ssl,
    ...({ sslnegotiation: settings.sslnegotiation } as object),
    enableChannelBinding: settings.channelBinding !== 'disable',
    ...(hasClientHooks() ? { Client: keeperClient(settings.channelBinding === 'require') } : {}),
    ...(settings.options === null ? {} : { options: settings.options }),
    application_name: settings.applicationName,
    max,
    connectionTimeoutMillis: settings.connectTimeoutMs ?? CONNECT_TIMEOUT_MS,
    query_timeout: QUERY_TIMEOUT_MS,
    idleTimeoutMillis: IDLE_TIMEOUT_MS,
    keepAlive: true,
  };
}

/**
 * Opens the database, retrying while it is unreachable for up to waitMs (pauses on `clock`, by default
 * the system clock); a wrong password or a missing database fails at once, since waiting cannot fix them.
 */
export async function openDatabaseWithRetry(options: OpenOptions & { waitMs: number; clock?: Clock }): Promise<Database> {
  const clock = options.clock ?? systemClock;
  return retry(() => openDatabase(options), {
    clock,
    initialMs: RETRY_INITIAL_MS,
    factor: 2,
    maxMs: RETRY_MAX_MS,
    deadline: clock.now() + options.waitMs,
    retryable: (error) => error instanceof DatabaseUnreachableError && isUnreachable(error.cause),
    onRetry: ({ attempt, error, delayMs }) =>
      options.log.warn({ attempt, retryInMs: delayMs, err: describeError(error) }, 'database unreachable, retrying'),
  });
}

class PoolDatabase implements Database {
  readonly schema: string;
  private readonly pools: TlsFallback<pg.Pool>;
  constructor(
    newPool: (ssl: Tls) => pg.Pool,
    plan: TlsPlan,
    readonly schemaName: string,
  ) {
    this.schema = quoteIdentifier(schemaName);
    this.pools = new TlsFallback(plan, newPool);
  }

  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>> {
    return this.pools.run((pool) => pool.query<R>(text, values));
  }

  async transaction<T>(fn: (tx: Queryable) => Promise<T>, mode?: 'snapshot'): Promise<T> {
    const client = await this.pools.run((pool) => pool.connect());
    let broken: Error | undefined;
    // The pool listens for errors only on idle clients. A connection lost while checked out fails the
    // query in flight AND emits 'error' on the client, which would crash the process unheard.
    const onError = (error: Error) => (broken = error);
    client.on('error', onError);
    try {
      await client.query(mode === 'snapshot' ? 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY' : 'BEGIN');
      const tx: Queryable = {
        schema: this.schema,
        query: <R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]) => client.query<R>(text, values),
      };
      const result = await fn(tx);
      await client.query('COMMIT');
      return result;
    } catch (error) {
      broken = await client.query('ROLLBACK').then(
        () => undefined,
        (rollbackError: Error) => rollbackError,
      );
      throw error;
    } finally {
      // A connection whose rollback failed is in an unknown state: destroy it rather than reuse it.
      client.off('error', onError);
      client.release(broken);
    }
  }

  async close(): Promise<void> {
    await this.pools.current.end();
  }
}

/** `name` as a quoted SQL identifier, safe to put in SQL text. */
export function quoteIdentifier(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
