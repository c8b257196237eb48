// The only module that opens a pg.Pool. Everything else sees the small Database interface.
import { accessSync, constants } from 'node:fs';
import pg from 'pg';
import { systemClock } from '../clock.js';
import { DatabaseUnreachableError, UsageError } from '../errors.js';
import { redactUrl, type Logger } from '../log.js';

/** At most this many connections per process: the sidecar needs one for backups and one for the lease. */
export const POOL_MAX_CONNECTIONS = 2;
/** How long one connection attempt may take before it counts as unreachable, ms. */
export const CONNECT_TIMEOUT_MS = 10_000;
/** Longest a query may take before it is abandoned (a half-open connection must not freeze the loop), ms. */
export const QUERY_TIMEOUT_MS = 60_000;
/** First and largest pause between connection attempts, ms. */
export const RETRY_INITIAL_MS = 250;
export const RETRY_MAX_MS = 5_000;

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
  url: string;
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
    throw toKeeperError(error, options.url);
  }
  return database;
}

/**
 * A pool that connects on first use and reconnects after outages; nothing is checked up front.
 * For the long-running roles, which must start and keep running while the database is down.
 */
export function createDatabase(options: OpenOptions): Database {
  const pool = new pg.Pool({
    connectionString: withLibpqSslModes(options.url),
    max: POOL_MAX_CONNECTIONS,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    query_timeout: QUERY_TIMEOUT_MS,
    idleTimeoutMillis: 30_000,
    keepAlive: true,
    application_name: 'baileys-keeper',
  });
  pool.on('error', (error) => {
    options.log.warn({ err: describeError(error) }, 'database connection lost');
    options.onError?.(error);
  });
  return new PoolDatabase(pool, options.schema);
}

/**
 * Opens the database, retrying while it is unreachable for up to waitMs; a wrong password or a
 * missing database fails at once, since waiting cannot fix them.
 */
export async function openDatabaseWithRetry(options: OpenOptions & { waitMs: number; sleep?: (ms: number) => Promise<void> }): Promise<Database> {
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const deadline = systemClock.now() + options.waitMs;
  let pause = RETRY_INITIAL_MS;
  for (let attempt = 1; ; attempt++) {
    try {
      return await openDatabase(options);
    } catch (error) {
      const retryable = error instanceof DatabaseUnreachableError && isUnreachable(error.cause);
      const left = deadline - systemClock.now();
      if (!retryable || left <= 0) throw error;
      options.log.warn({ attempt, retryInMs: Math.min(pause, left), err: describeError(error) }, 'database unreachable, retrying');
      await sleep(Math.min(pause, left));
      pause = Math.min(pause * 2, RETRY_MAX_MS);
    }
  }
}

class PoolDatabase implements Database {
  readonly schema: string;
  constructor(
    private readonly pool: pg.Pool,
    readonly schemaName: string,
  ) {
    this.schema = quoteIdentifier(schemaName);
  }

  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>> {
    return this.pool.query<R>(text, values);
  }

  async transaction<T>(fn: (tx: Queryable) => Promise<T>, mode?: 'snapshot'): Promise<T> {
    const client = await this.pool.connect();
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

/** Connection-string parameters that name files the client reads. */
const SSL_FILE_PARAMS = ['sslrootcert', 'sslcert', 'sslkey'] as const;

/**
 * Gives `sslmode` its libpq meaning, as users of psql and every other driver expect: node-postgres 8
 * otherwise treats require and verify-ca as verify-full (a self-signed server then fails with
 * `require`). So: require = encrypted, not verified (with sslrootcert: verified against it, like
 * verify-ca); verify-ca = signed by sslrootcert; verify-full = signed and the host name matches.
 * `sslrootcert=system` means the system's CAs with sslmode verify-full, as in libpq 16+. A file named by sslrootcert, sslcert
 * or sslkey that cannot be read is a usage error (exit 64) before any connection is tried.
 */
export function withLibpqSslModes(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return url; // reported as an invalid URL when the pool first connects
  }
  const params = parsed.searchParams;
  for (const name of SSL_FILE_PARAMS) {
    const file = params.get(name);
    if (file === null || (name === 'sslrootcert' && file === 'system')) continue;
    try {
      accessSync(file, constants.R_OK);
    } catch (error) {
      throw new UsageError(`cannot read ${name}=${file} from the database URL (${(error as NodeJS.ErrnoException).code ?? 'unreadable'}): mount the file or fix the path`, { cause: error });
    }
  }
  if (params.get('sslrootcert') === 'system') {
    // libpq 16+: the system's CAs authenticate only with the host name checked, so sslrootcert=system
    // defaults to verify-full and a weaker sslmode is an error (require would not even verify the CA).
    const mode = params.get('sslmode');
    if (mode !== null && mode !== 'verify-full') {
      throw new UsageError(
        `sslrootcert=system needs sslmode=verify-full, but the database URL has sslmode=${mode}: ` +
          'remove sslmode (it then defaults to verify-full) or set sslmode=verify-full, as libpq 16+ requires',
      );
    }
    params.set('sslmode', 'verify-full');
    params.delete('sslrootcert'); // Node's bundled and system CAs are the default
  }
  if (params.has('sslmode') && !params.has('uselibpqcompat')) params.set('uselibpqcompat', 'true');
  return parsed.toString();
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

function toKeeperError(error: unknown, url: string): Error {
  const target = redactUrl(url);
  const code = (error as { code?: unknown })?.code;
  if (code === '28000' && /no encryption/i.test(String((error as Error)?.message))) {
    return new DatabaseUnreachableError(
      `PostgreSQL at ${target} accepts only TLS connections: add sslmode=verify-full&sslrootcert=/path/to/ca.crt (or sslmode=require) to DATABASE_URL`,
      { cause: error },
    );
  }
  const tls = tlsFailure(error);
  if (tls) {
    return new DatabaseUnreachableError(
      `TLS to PostgreSQL at ${target} failed: ${tls}. Check sslmode and sslrootcert in DATABASE_URL (sslrootcert must be the CA that signed the server's certificate, and verify-full needs the host name in it)`,
      { cause: error },
    );
  }
  if (code === '28P01' || code === '28000') {
    return new DatabaseUnreachableError(`authentication to ${target} failed: check the user and password in DATABASE_URL`, { cause: error });
  }
  if (code === '3D000') {
    return new DatabaseUnreachableError(`database in ${target} does not exist: create it or fix DATABASE_URL`, { cause: error });
  }
  if (isUnreachable(error)) {
    return new DatabaseUnreachableError(`cannot reach PostgreSQL at ${target} (${describeError(error)}): check that it is running and that DATABASE_URL is right`, {
      cause: error,
    });
  }
  if (error instanceof TypeError || /invalid url|Invalid URL/i.test(String((error as Error)?.message))) {
    return new DatabaseUnreachableError(`the database URL is not valid (${describeError(error)}): expected postgres://user:password@host:5432/db`, { cause: error });
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
