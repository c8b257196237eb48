// Where and how to connect: a connection string (or none) plus the libpq environment variables →
// one validated, frozen ConnectionSettings, read the way libpq reads them. The only printable form
// of the result is describeTarget(), built from the parsed parts, never from the input text.
import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pgpassHelper from 'pgpass/lib/helper.js';
import { UsageError } from '../errors.js';
import { parseConnectionString, type Keywords } from './conninfo.js';

export const DEFAULT_PORT = 5432;
/** libpq would use its compiled-in socket directory; in a container a TCP host is what exists. */
export const DEFAULT_HOST = 'localhost';
export const DEFAULT_APPLICATION_NAME = 'baileys-keeper';
/** libpq treats a connect_timeout below 2 seconds as 2 seconds. */
const MIN_CONNECT_TIMEOUT_SECONDS = 2;

export const SSL_MODES = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full', 'no-verify'] as const;
export type SslMode = (typeof SSL_MODES)[number];
export const CHANNEL_BINDINGS = ['disable', 'prefer', 'require'] as const;
export type ChannelBinding = (typeof CHANNEL_BINDINGS)[number];

export interface ConnectionSettings {
  /** A host name, an IP address, or a Unix-socket directory (starts with /). */
  readonly host: string;
  readonly port: number;
  readonly database: string;
  readonly user: string;
  /** Non-enumerable, so no JSON.stringify or logged object carries it. null: none (trust or peer auth). */
  readonly password: string | null;
  readonly sslmode: SslMode;
  /** A CA file, 'system' (the system's CAs, as libpq 16+), or null. */
  readonly sslrootcert: string | null;
  readonly sslcert: string | null;
  readonly sslkey: string | null;
  /** The passphrase of sslkey; non-enumerable like the password. */
  readonly sslpassword: string | null;
  readonly sslnegotiation: 'postgres' | 'direct';
  readonly channelBinding: ChannelBinding;
  readonly applicationName: string;
  /** How long one connection attempt may take, ms; 0 = no limit; null = the keeper's default. */
  readonly connectTimeoutMs: number | null;
  /** Server options sent at connection start (e.g. `-c search_path=x`), or null. */
  readonly options: string | null;
}

type Env = Readonly<Record<string, string | undefined>>;

interface Parameter {
  /** The libpq environment variable that supplies it when the connection string does not. */
  env?: string;
  /** The accepted values, when they are a fixed set (anything else is refused). */
  values?: readonly string[];
  help: string;
}

/**
 * Every libpq parameter the keeper accepts, with its environment variable. Any other parameter in a
 * connection string is refused (exit 64) by name. The README's database table mirrors this.
 */
export const PARAMETERS: Record<string, Parameter> = {
  host: { env: 'PGHOST', help: 'host name, IP address, or Unix-socket directory (default localhost)' },
  port: { env: 'PGPORT', help: 'port (default 5432)' },
  dbname: { env: 'PGDATABASE', help: 'database (default: the user name)' },
  user: { env: 'PGUSER', help: 'user (default: the operating-system user)' },
  password: { env: 'PGPASSWORD', help: 'password (else looked up in the password file)' },
  passfile: { env: 'PGPASSFILE', help: 'password file in libpq .pgpass format (default ~/.pgpass); ignored unless mode 0600 or stricter' },
  sslmode: {
    env: 'PGSSLMODE',
    values: SSL_MODES,
    help: 'TLS: disable, allow, prefer (default), require, verify-ca, verify-full; no-verify = require without any verification',
  },
  sslrootcert: { env: 'PGSSLROOTCERT', help: "CA file to verify the server with, or 'system' (the system CAs, implies verify-full)" },
  sslcert: { env: 'PGSSLCERT', help: 'client certificate file' },
  sslkey: { env: 'PGSSLKEY', help: 'client key file' },
  sslpassword: { help: 'passphrase of the client key' },
  sslnegotiation: {
    env: 'PGSSLNEGOTIATION',
    values: ['postgres', 'direct'],
    help: 'postgres (default) or direct (TLS without SSLRequest, PostgreSQL 17+)',
  },
  channel_binding: {
    env: 'PGCHANNELBINDING',
    values: CHANNEL_BINDINGS,
    help: 'SCRAM-SHA-256-PLUS over TLS: prefer (default), require (refuse any other authentication), disable',
  },
  application_name: { env: 'PGAPPNAME', help: 'application name shown in pg_stat_activity (default baileys-keeper)' },
  fallback_application_name: { help: 'application name when none is set' },
  connect_timeout: { env: 'PGCONNECT_TIMEOUT', help: 'seconds one connection attempt may take (0 = no limit; default 10)' },
  options: { env: 'PGOPTIONS', help: 'server options at connection start, e.g. -c statement_timeout=0' },
  target_session_attrs: { env: 'PGTARGETSESSIONATTRS', values: ['any'], help: 'any (the only value for one host)' },
  gssencmode: {
    env: 'PGGSSENCMODE',
    values: ['disable', 'prefer'],
    help: 'disable or prefer (no GSSAPI here: both mean no GSS encryption)',
  },
  client_encoding: { env: 'PGCLIENTENCODING', values: ['UTF8', 'utf8', 'UTF-8', 'utf-8'], help: 'UTF8 only' },
};

/** The variables that, without a connection string, say a database is configured (where and who). */
export const CONNECTION_VARIABLES: readonly string[] = ['PGHOST', 'PGPORT', 'PGDATABASE', 'PGUSER', 'PGPASSWORD', 'PGPASSFILE'];

/** libpq variables the keeper does not support: set, they are refused rather than silently ignored. */
export const UNSUPPORTED_VARIABLES: readonly string[] = [
  'PGHOSTADDR',
  'PGSERVICE',
  'PGSERVICEFILE',
  'PGREQUIRESSL',
  'PGREQUIREAUTH',
  'PGSSLCRL',
  'PGSSLCRLDIR',
  'PGSSLSNI',
  'PGSSLCOMPRESSION',
  'PGSSLCERTMODE',
  'PGSSLMINPROTOCOLVERSION',
  'PGSSLMAXPROTOCOLVERSION',
  'PGKRBSRVNAME',
  'PGGSSLIB',
  'PGGSSDELEGATION',
  'PGLOADBALANCEHOSTS',
  'PGMINPROTOCOLVERSION',
  'PGMAXPROTOCOLVERSION',
  'PGTZ',
  'PGDATESTYLE',
  'PGGEQO',
];

/** Hints for parameters that come from other tools' connection strings. */
const FOREIGN_HINTS: Record<string, string> = {
  ssl: "ssl is a node-postgres parameter, not libpq's: use sslmode=require (encrypt) or sslmode=verify-full (encrypt and verify)",
  uselibpqcompat: 'uselibpqcompat is not needed: sslmode always has its libpq meaning here; remove it',
  pgbouncer: "pgbouncer is Prisma's parameter: remove it (the keeper works through PgBouncer without it)",
  connection_limit: "connection_limit is Prisma's parameter: remove it (the keeper opens at most a few connections)",
  schema: 'schema is not a libpq parameter: remove it and use --schema / KEEPER_SCHEMA',
};

/**
 * The connection settings from `text` (the connection string, from `source`) and env, as libpq reads
 * them: the string wins over a variable. Without a string, the PG* variables alone, if any of
 * CONNECTION_VARIABLES is set; else null (the embedded default). Throws UsageError naming anything
 * unsupported; messages never contain the password.
 */
export function connectionSettings(text: string | null, env: Env, source = 'DATABASE_URL'): ConnectionSettings | null {
  const given = (name: string) => env[name] !== undefined && env[name] !== '';
  if (text === null && !CONNECTION_VARIABLES.some(given)) return null;
  const unsupported = UNSUPPORTED_VARIABLES.filter(given);
  if (unsupported.length > 0) {
    throw new UsageError(
      `${unsupported.join(', ')} ${unsupported.length === 1 ? 'is' : 'are'} set, but the keeper does ` +
        `not support ${unsupported.length === 1 ? 'it' : 'them'}: unset ${unsupported.length === 1 ? 'it' : 'them'}`,
    );
  }
  const keywords: Keywords = text === null ? {} : parseConnectionString(text, source);
  const where = text === null ? 'the PG* variables' : source;
  for (const name of Object.keys(keywords)) {
    if (PARAMETERS[name]) continue;
    throw new UsageError(
      `${where}: ` +
        `${FOREIGN_HINTS[name] ?? `the parameter ${name} is not supported; remove it (supported: ${Object.keys(PARAMETERS).join(', ')})`}`,
    );
  }
  const value = (name: string): string | null => {
    const fromString = keywords[name];
    if (fromString !== undefined && fromString !== '') return fromString;
    const variable = PARAMETERS[name]?.env;
    const fromEnv = variable ? env[variable] : undefined;
    return fromEnv === undefined || fromEnv === '' ? null : fromEnv;
  };
  const label = (name: string) => (keywords[name] ? `${name} in ${source}` : (PARAMETERS[name]?.env ?? name));
  const choice = <T extends string>(name: string, fallback: T): T => {
    const raw = value(name);
    if (raw === null) return fallback;
    const allowed = PARAMETERS[name]!.values!;
    if (!allowed.includes(raw))
      throw new UsageError(`${label(name)}: the value ${JSON.stringify(raw)} is not supported; use one of ${allowed.join(', ')}`);
    return raw as T;
  };

  const host = value('host') ?? DEFAULT_HOST;
  if (host.includes(','))
    throw new UsageError(
      `${label('host')} names several hosts: the keeper connects to one host only; give your provider's single endpoint`,
    );
  const port = parsePort(label('port'), value('port'));
  const user = value('user') ?? systemUser();
  const database = value('dbname') ?? user;
  choice('target_session_attrs', 'any');
  choice('gssencmode', 'prefer');
  choice('client_encoding', 'UTF8');
  const sslmode = choice<SslMode>('sslmode', 'prefer');
  const sslrootcert = value('sslrootcert');
  const sslnegotiation = choice<'postgres' | 'direct'>('sslnegotiation', 'postgres');
  const channelBinding = choice<ChannelBinding>('channel_binding', 'prefer');
  checkTlsCombination(sslmode, sslrootcert, sslnegotiation, channelBinding, keywords['sslmode'] !== undefined ? label('sslmode') : null);
  for (const name of ['sslrootcert', 'sslcert', 'sslkey'] as const) {
    const file = value(name);
    if (file === null || (name === 'sslrootcert' && file === 'system')) continue;
    try {
      accessSync(file, constants.R_OK);
    } catch (error) {
      throw new UsageError(
        `cannot read ${name}=${file} (${label(name)}, ` +
          `${(error as NodeJS.ErrnoException).code ?? 'unreadable'}): mount the file or fix the path`,
        { cause: error },
      );
    }
  }
  const password = value('password') ?? passwordFromFile(value('passfile'), { host, port, database, user });
  const settings = {
    host,
    port,
    database,
    user,
    sslmode: sslrootcert === 'system' ? 'verify-full' : sslmode,
    sslrootcert,
    sslcert: value('sslcert'),
    sslkey: value('sslkey'),
    sslnegotiation,
    channelBinding,
    applicationName: value('application_name') ?? value('fallback_application_name') ?? DEFAULT_APPLICATION_NAME,
    connectTimeoutMs: parseConnectTimeout(label('connect_timeout'), value('connect_timeout')),
    options: value('options'),
  };
  Object.defineProperty(settings, 'password', { value: password, enumerable: false });
  Object.defineProperty(settings, 'sslpassword', { value: value('sslpassword'), enumerable: false });
  return Object.freeze(settings as ConnectionSettings);
}

/** Settings for a URL the keeper made itself (the embedded server); the environment plays no part. */
export function settingsForUrl(url: string): ConnectionSettings {
  return connectionSettings(url, {}, 'the embedded server URL')!;
}

/** postgres://user@host:port/dbname: where the settings point, for logs and messages (never a secret). */
export function describeTarget(settings: ConnectionSettings): string {
  const host = settings.host.startsWith('/')
    ? encodeURIComponent(settings.host)
    : settings.host.includes(':')
      ? `[${settings.host}]`
      : settings.host;
  return `postgres://${encodeURIComponent(settings.user)}@${host}:${settings.port}/${encodeURIComponent(settings.database)}`;
}

function checkTlsCombination(
  sslmode: SslMode,
  sslrootcert: string | null,
  negotiation: string,
  channelBinding: ChannelBinding,
  modeLabel: string | null,
): void {
  if (sslrootcert === 'system' && modeLabel !== null && sslmode !== 'verify-full') {
    // libpq 16+: the system's CAs authenticate only with the host name checked, so sslrootcert=system
    // defaults to verify-full and a weaker sslmode is an error (require would not even verify the CA).
    throw new UsageError(
      `sslrootcert=system needs sslmode=verify-full, but ${modeLabel} is sslmode=${sslmode}: remove ` +
        `sslmode (it then defaults to verify-full) or set sslmode=verify-full, as libpq 16+ requires`,
    );
  }
  if (sslmode === 'no-verify' && sslrootcert !== null) {
    throw new UsageError(
      'sslmode=no-verify never verifies the server, so sslrootcert would do nothing: ' +
        'use sslmode=verify-ca or verify-full with sslrootcert, or drop sslrootcert',
    );
  }
  if (sslmode === 'verify-ca' && sslrootcert === null) {
    throw new UsageError(
      'sslmode=verify-ca needs sslrootcert (the CA that signed the server certificate); with a public CA use sslmode=verify-full',
    );
  }
  if (negotiation === 'direct' && ['disable', 'allow', 'prefer'].includes(sslmode)) {
    throw new UsageError(`sslnegotiation=direct needs TLS: use sslmode=require or stronger (it is ${sslmode})`);
  }
  if (channelBinding === 'require' && sslmode === 'disable') {
    throw new UsageError('channel_binding=require needs TLS, but sslmode=disable: use sslmode=require or stronger');
  }
}

/** libpq's default user: the operating-system user's name (a container's uid may have none). */
function systemUser(): string {
  try {
    return os.userInfo().username;
  } catch (error) {
    throw new UsageError("no database user is given and this process's user has no name: set the user in DATABASE_URL or PGUSER", {
      cause: error,
    });
  }
}

function parsePort(label: string, raw: string | null): number {
  if (raw === null) return DEFAULT_PORT;
  const port = Number(raw);
  if (!/^\d{1,5}$/.test(raw) || port < 1 || port > 65535)
    throw new UsageError(`${label}: invalid port ${JSON.stringify(raw)}; expected 1-65535`);
  return port;
}

function parseConnectTimeout(label: string, raw: string | null): number | null {
  if (raw === null) return null;
  if (!/^\d+$/.test(raw.trim()))
    throw new UsageError(`${label}: invalid connect_timeout ${JSON.stringify(raw)}; expected whole seconds (0 = no limit)`);
  const seconds = Number(raw.trim());
  return seconds === 0 ? 0 : Math.max(seconds, MIN_CONNECT_TIMEOUT_SECONDS) * 1000;
}

/**
 * The password for this connection from a libpq password file (libpq's rules: host:port:dbname:user:password
 * lines, `*` matches anything, `\` escapes `:` and `\`, lines starting with # are comments, and a file
 * that group or others can read is ignored with a warning). null when there is none.
 */
function passwordFromFile(file: string | null, target: { host: string; port: number; database: string; user: string }): string | null {
  const name = file ?? path.join(os.homedir(), '.pgpass');
  let text: string;
  try {
    if (!pgpassHelper.usePgPass(statSync(name), name)) return null;
    text = readFileSync(name, 'utf8');
  } catch {
    return null; // libpq: a missing or unreadable password file is the same as none
  }
  // libpq matches a Unix-socket connection against the host name localhost.
  const host = target.host.startsWith('/') ? 'localhost' : target.host;
  for (const line of text.split(/\r?\n/)) {
    if (line.startsWith('#')) continue;
    const entry = pgpassHelper.parseLine(line);
    if (
      entry &&
      pgpassHelper.isValidEntry(entry) &&
      pgpassHelper.match({ host, port: target.port, database: target.database, user: target.user }, entry)
    ) {
      return entry.password;
    }
  }
  return null;
}
