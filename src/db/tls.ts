// sslmode with its libpq meaning → the TLS options node-postgres uses, per connection attempt, the
// prefer/allow fallback between them, and how the server's TLS refusals and failures are recognised.
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import type { ConnectionSettings } from './settings.js';

/** pg's `ssl` option: false for plaintext, else Node's TLS options. */
export type Tls = false | ConnectionOptions;

/**
 * How to connect: `first`, and when the server turns that down the way libpq falls back from
 * (prefer: the server has no TLS; allow: the server accepts only TLS), `fallback`.
 */
export interface TlsPlan {
  readonly first: Tls;
  readonly fallback: Tls | null;
}

/**
 * libpq's sslmode: disable = plaintext; allow = plaintext, TLS if the server insists; prefer (the
 * default) = TLS, plaintext if the server has none; require = TLS, not verified unless sslrootcert is
 * given (then the CA is checked, as libpq does); verify-ca = CA checked; verify-full = CA and host name
 * checked (without sslrootcert: the system CAs). no-verify (node-postgres' value for Heroku-style
 * self-signed servers) = TLS, never verified.
 */
export function tlsPlan(settings: ConnectionSettings): TlsPlan {
  const encrypted = (): ConnectionOptions => {
    const options: ConnectionOptions = {};
    if (settings.sslcert) options.cert = readFileSync(settings.sslcert, 'utf8');
    if (settings.sslkey) options.key = readFileSync(settings.sslkey, 'utf8');
    if (settings.sslpassword) options.passphrase = settings.sslpassword;
    const rootcert = settings.sslrootcert;
    if (rootcert && rootcert !== 'system') options.ca = readFileSync(rootcert, 'utf8');
    const mode = settings.sslmode;
    if (mode === 'verify-full') return options; // Node checks the CA and the host name by default
    if (mode === 'no-verify' || !options.ca) return { ...options, rejectUnauthorized: false };
    // verify-ca, or require/prefer/allow with a CA file: the chain is checked, the host name is not.
    return { ...options, checkServerIdentity: () => undefined };
  };
  switch (settings.sslmode) {
    case 'disable':
      return { first: false, fallback: null };
    case 'allow':
      return { first: false, fallback: encrypted() };
    case 'prefer':
      return { first: encrypted(), fallback: false };
    default:
      return { first: encrypted(), fallback: null };
  }
}

/** True when `error` is the server turning down the first attempt in the way `plan`'s fallback answers. */
export function callsForFallback(plan: TlsPlan, error: unknown): boolean {
  if (plan.fallback === null || !(error instanceof Error)) return false;
  // allow: pg_hba.conf has only hostssl lines for us ("no pg_hba.conf entry … no encryption").
  if (plan.first === false) return needsTls(error);
  return lacksTls(error);
}

/** True when the server turned a plaintext connection down: pg_hba.conf accepts us only over TLS ("no encryption"). */
export function needsTls(error: unknown): boolean {
  return (error as { code?: unknown })?.code === '28000' && /no encryption/i.test(String((error as Error)?.message));
}

/** True when the server turned a TLS request down: it has no TLS. */
export function lacksTls(error: unknown): boolean {
  return error instanceof Error && /server does not support SSL/i.test(error.message);
}

// Node's certificate verification failures: a configuration (or interception) problem that waiting
// does not fix, so it is reported at once (exit 2), never retried.
const TLS_CODES = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'ERR_SSL_WRONG_VERSION_NUMBER',
]);

/** What went wrong when the error is a TLS failure, else null. */
export function tlsFailure(error: unknown): string | null {
  if (!(error instanceof Error)) return null;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && TLS_CODES.has(code)) return `${code}: ${error.message}`;
  if (lacksTls(error)) return 'the server does not support TLS (sslmode asks for it)';
  return null;
}

/**
 * A connection pool that follows a TlsPlan: opened with `plan.first`; when the server turns that down
 * the way libpq's sslmode=prefer (no TLS there) or allow (TLS only) falls back from, it is replaced,
 * once and for good, by a pool opened with `plan.fallback`.
 */
export class TlsFallback<P extends { end(): Promise<void> }> {
  private pool: P;
  private fellBack = false;
  constructor(
    private readonly plan: TlsPlan,
    private readonly open: (tls: Tls) => P,
  ) {
    this.pool = open(plan.first);
  }

  /** The pool in use now (the fallback's, once it has been switched to). */
  get current(): P {
    return this.pool;
  }

  /**
   * Runs fn on the current pool; when it fails in the way that calls for the fallback, switches the
   * pool to the fallback for good and runs fn again. Any other error, or a second such failure, is thrown.
   */
  async run<T>(fn: (pool: P) => Promise<T>): Promise<T> {
    const pool = this.pool;
    try {
      return await fn(pool);
    } catch (error) {
      if (!callsForFallback(this.plan, error)) throw error;
      if (this.pool === pool) {
        if (this.fellBack) throw error;
        this.fellBack = true;
        this.pool = this.open(this.plan.fallback!);
        void pool.end().catch(() => undefined);
      }
      return await fn(this.pool);
    }
  }
}
