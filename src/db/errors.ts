// What a database error means: worth retrying (unreachable) or not, the DatabaseUnreachableError that tells
// the user what to fix, and a one-line description for logs.
import { DatabaseUnreachableError, describeError } from '../errors.js';
import { CHANNEL_BINDING_REFUSED } from './auth.js';
import { describeTarget, type ConnectionSettings } from './settings.js';
import { needsTls, tlsFailure } from './tls.js';

/** The code of the error when the server wants a password and none is configured. */
export const NO_PASSWORD = 'KEEPER_NO_PASSWORD';

const UNREACHABLE_ERRNO = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
  'ECONNABORTED',
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

/**
 * The DatabaseUnreachableError (exit 2) for a failure to connect to or use the database at `settings`:
 * its message says what went wrong and where to fix it; the original error is its cause.
 */
export function toKeeperError(error: unknown, settings: ConnectionSettings): Error {
  const target = describeTarget(settings);
  const code = (error as { code?: unknown })?.code;
  if (code === CHANNEL_BINDING_REFUSED) {
    return new DatabaseUnreachableError(`refused to authenticate to ${target}: ${(error as Error).message}`, { cause: error });
  }
  if (code === NO_PASSWORD) {
    return new DatabaseUnreachableError(
      `PostgreSQL at ${target} asks for a password, but none is configured: put it in ${FIX_IN}, PGPASSWORD or a password file`,
      { cause: error },
    );
  }
  if (needsTls(error)) {
    return new DatabaseUnreachableError(
      `PostgreSQL at ${target} accepts only TLS connections: ` +
        'add sslmode=verify-full&sslrootcert=/path/to/ca.crt (or sslmode=require) to DATABASE_URL, or set PGSSLMODE',
      { cause: error },
    );
  }
  const tls = tlsFailure(error);
  if (tls) {
    return new DatabaseUnreachableError(
      `TLS to PostgreSQL at ${target} failed: ${tls}. Check sslmode and sslrootcert in ${FIX_IN} ` +
        "(sslrootcert must be the CA that signed the server's certificate, and verify-full needs the host name in it)",
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
    return new DatabaseUnreachableError(
      `cannot reach PostgreSQL at ${target} (${describeError(error)}): check that it is running and that ${FIX_IN} is right`,
      { cause: error },
    );
  }
  return new DatabaseUnreachableError(`cannot use PostgreSQL at ${target}: ${describeError(error)}`, { cause: error });
}
