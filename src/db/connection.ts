// The only module that opens a pg.Pool. Everything else sees the small Database interface.
import pg from 'pg';
import { systemClock, type Clock } from '../clock.js';
import { DatabaseUnreachableError, UsageError } from '../errors.js';
import type { Logger } from '../log.js';
import { retry } from '../retry.js';
import { CHANNEL_BINDING_REFUSED, hasClientHooks, keeperClient } from './auth.js';
import { describeTarget, settingsForUrl, type ConnectionSettings } from './settings.js';
import { callsForFallback, tlsPlan, type Tls, type TlsPlan } from './tls.js';

/** At most this many connections per process: the sidecar needs one for backups and one for the lease. */
export const POOL_MAX_CONNECTIONS = 2;
/** How long one connection attempt may take before it counts as unreachable, ms (connect_timeout overrides it). */
export const CONNECT_TIMEOUT_MS = 10_000;
/** Longest a query may take before it is abandoned (a half-open connection must not freeze the loop), ms. */
export const QUERY_TIMEOUT_MS = 60_000;
/** First and largest pause between connection attempts, ms. */
export const RETRY_INITIAL_MS = 250;
export const RETRY_MAX_MS = 5_000;
/** An idle pooled connection is closed after this long, ms. */
const IDLE_TIMEOUT_MS = 30_000;
/** The code of the error when the server wants a password and none is configured. */
const NO_PASSWORD = 'KEEPER_NO_PASSWORD';

/** Anything that runs a query: the pool or a client inside a transaction. */
export interface Queryable {
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>>;
}

export interface Database extends Queryable {
  /** The keeper's schema, already quoted for use in SQL text. */
  readonly schema: string;
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
    throw new UsageError('channel_binding=require cannot be enforced with this version of node-postgres: remove it or set channel_binding=prefer');
  }
  const plan = tlsPlan(settings);
  const newPool = (ssl: Tls): pg.Pool => {
    const pool = new pg.Pool(poolConfig(settings, ssl));
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
function poolConfig(settings: ConnectionSettings, ssl: Tls): pg.PoolConfig {
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
    max: POOL_MAX_CONNECTIONS,
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
  private pool: pg.Pool;
  private fellBack = false;
  constructor(
    private readonly newPool: (ssl: Tls) => pg.Pool,
    private readonly plan: TlsPlan,
    readonly schemaName: string,
  ) {
    this.schema = quoteIdentifier(schemaName);
    this.pool = newPool(plan.first);
  }

  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>> {
    return this.withFallback((pool) => pool.query<R>(text, values));
  }

  /**
   * Runs fn on the pool; when the server turns down the first TLS choice the way libpq's sslmode=prefer
   * (no TLS there) or allow (TLS only) falls back from, switches the pool to the fallback for good and
   * runs fn again.
   */
  private async withFallback<T>(fn: (pool: pg.Pool) => Promise<T>): Promise<T> {
    const pool = this.pool;
    try {
      return await fn(pool);
    } catch (error) {
      if (!callsForFallback(this.plan, error)) throw error;
      if (this.pool === pool) {
        if (this.fellBack) throw error;
        this.fellBack = true;
        this.pool = this.newPool(this.plan.fallback!);
        void pool.end().catch(() => undefined);
      }
      return await fn(this.pool);
    }
  }

  async transaction<T>(fn: (tx: Queryable) => Promise<T>, mode?: 'snapshot'): Promise<T> {
    const client = await this.withFallback((pool) => pool.connect());
    let broken: Error | undefined;
    // The pool listens for errors only on idle clients. A connection lost while checked out fails the
    // query in flight AND emits 'error' on the client, which would crash the process unheard.
    const onError = (error: Error) => (broken = error);
    client.on('error', onError);
    try {
      await client.query(mode === 'snapshot' ? 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY' : 'BEGIN');
      const result = await fn(client);
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
    await this.pool.end();
  }
}

export function quoteIdentifier(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

const UNREACHABLE_ERRNO = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE', 'ECONNABORTED',
]);
// SQLSTATEs that mean "the server is not (yet) able to serve us": shutdown, starting up, too many clients.
const UNREACHABLE_SQLSTATE = new Set(['57P01', '57P02', '57P03', '53300', '08000', '08001', '08003', '08004', '08006']);

/** True when the error means the server could not be reached or went away (worth retrying). */
export function isUnreachable(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && (UNREACHABLE_ERRNO.has(code) || UNREACHABLE_SQLSTATE.has(code))) return true;
  if (error instanceof AggregateError) return error.errors.some(isUnreachable);
  return /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|connection timeout/i.test(
    error.message,
  );
}

/** Where to fix a setting, for messages: the connection string, or the PG* variables. */
const FIX_IN = 'DATABASE_URL (or the PG* variables)';

function toKeeperError(error: unknown, settings: ConnectionSettings): Error {
  const target = describeTarget(settings);
  const code = (error as { code?: unknown })?.code;
  if (code === CHANNEL_BINDING_REFUSED) {
    return new DatabaseUnreachableError(`refused to authenticate to ${target}: ${(error as Error).message}`, { cause: error });
  }
  if (code === NO_PASSWORD) {
    return new DatabaseUnreachableError(`PostgreSQL at ${target} asks for a password, but none is configured: put it in ${FIX_IN}, PGPASSWORD or a password file`, {
      cause: error,
    });
  }
  if (code === '28000' && /no encryption/i.test(String((error as Error)?.message))) {
    return new DatabaseUnreachableError(
      `PostgreSQL at ${target} accepts only TLS connections: add sslmode=verify-full&sslrootcert=/path/to/ca.crt (or sslmode=require) to DATABASE_URL, or set PGSSLMODE`,
      { cause: error },
    );
  }
  const tls = tlsFailure(error);
  if (tls) {
    return new DatabaseUnreachableError(
      `TLS to PostgreSQL at ${target} failed: ${tls}. Check sslmode and sslrootcert in ${FIX_IN} (sslrootcert must be the CA that signed the server's certificate, and verify-full needs the host name in it)`,
      { cause: error },
    );
  }
  if (code === '28P01' || code === '28000') {
    return new DatabaseUnreachableError(`authentication to ${target} failed: check the user and password in ${FIX_IN}`, { cause: error });
  }
  if (code === '3D000') {
    return new DatabaseUnreachableError(`database in ${target} does not exist: create it or fix ${FIX_IN}`, { cause: error });
  }
  if (isUnreachable(error)) {
    return new DatabaseUnreachableError(`cannot reach PostgreSQL at ${target} (${describeError(error)}): check that it is running and that ${FIX_IN} is right`, {
      cause: error,
    });
  }
  return new DatabaseUnreachableError(`cannot use PostgreSQL at ${target}: ${describeError(error)}`, { cause: error });
}

// Node's certificate verification failures: a configuration (or interception) problem that waiting
// does not fix, so it is reported at once (exit 2), never retried.
const TLS_CODES = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID', 'ERR_TLS_CERT_ALTNAME_INVALID', 'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED', 'CERT_REJECTED', 'ERR_SSL_WRONG_VERSION_NUMBER',
]);

/** What went wrong when the error is a TLS failure, else null. */
function tlsFailure(error: unknown): string | null {
  if (!(error instanceof Error)) return null;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && TLS_CODES.has(code)) return `${code}: ${error.message}`;
  if (/server does not support SSL/i.test(error.message)) return 'the server does not support TLS (sslmode asks for it)';
  return null;
}

/** A one-line description of an error without stack or secrets. */
export function describeError(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length > 0) return describeError(error.errors[0]);
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return typeof code === 'string' && !error.message.includes(code) ? `${code}: ${error.message}` : error.message;
  }
  return String(error);
}
