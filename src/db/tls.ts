// sslmode with its libpq meaning → the TLS options node-postgres uses, per connection attempt.
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
  if (plan.first === false) {
    // allow: pg_hba.conf has only hostssl lines for us ("no pg_hba.conf entry … no encryption").
    return (error as { code?: unknown }).code === '28000' && /no encryption/i.test(error.message);
  }
  return /server does not support SSL/i.test(error.message);
}
