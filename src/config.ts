// Defaults, environment and flags → one frozen, validated Config. The only module that reads argv/env.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import path from 'node:path';
import { decodeKey, KEY_ID_PATTERN, KeyRing, makeKey, type EncryptionKey } from './crypto.js';
import { connectionSettings, type ConnectionSettings } from './db/settings.js';
import { UsageError } from './errors.js';
import { isValidSessionId, SESSION_ID_RULE } from './names.js';
import { didYouMean } from './suggest.js';
import { CONTENT_COMMANDS, MANY_SESSIONS, RETAINERS, SETTINGS, settingsFor, type Command, type Setting } from './options.js';

import { DEFAULT_RETENTION, parseRetention, type RetentionPolicy } from './store/retention.js';
import { WATCH_MODES, type WatchMode } from './watcher.js';

// Defaults, with their units in the name (the settings table in options.ts shows them to people).
export const DEFAULT_DATA_DIR = './.baileys-keeper';
export const DEFAULT_SESSION_ID = 'default';
export const DEFAULT_DIR = './auth_info';
export const DEFAULT_SCHEMA = 'baileys_keeper';
export const DEFAULT_LOG_LEVEL = 'info';
export const DEFAULT_WAIT_SECONDS = 60;
export const DEFAULT_LEASE_WAIT_SECONDS = 30;
export const DEFAULT_LEASE_TTL_MS = 30_000;
export const DEFAULT_DEBOUNCE_MS = 1_000;
export const DEFAULT_MAX_DELAY_MS = 1_000;
export const DEFAULT_INTERVAL_MS = 120_000;
export const DEFAULT_LISTEN = '0.0.0.0:9464';
export const DEFAULT_SHUTDOWN_QUIET_MS = 2_000;
export const DEFAULT_SHUTDOWN_TIMEOUT_MS = 20_000;
export const DEFAULT_WATCH_MODE: WatchMode = 'auto';
export const DEFAULT_POLL_INTERVAL_MS = 1_000;
/** run: how long the bot's process group may take to exit after the stop signal (or after its command exited), ms. */
export const DEFAULT_STOP_TIMEOUT_MS = 10_000;
export const DEFAULT_KEEP_GENERATIONS = 100;
export { DEFAULT_RETENTION };
export const DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024;
export const DEFAULT_LEGACY_TABLE = 'whatsapp_sessions';

const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];
export const LOG_FORMATS = ['json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];
const SCHEMA_PATTERN = /^[a-z_][a-z0-9_]{0,62}$/;

export interface Config {
  readonly command: Command;
  /** Where the database is (--database-url / DATABASE_URL and the PG* variables); null: the embedded default. */
  readonly database: ConnectionSettings | null;
  readonly dataDir: string;
  readonly sessionId: string;
  /** --session or KEEPER_SESSION_ID was given (status then shows only that session). */
  readonly sessionExplicit: boolean;
  /** The Baileys auth directory, absolute. */
  readonly dir: string;
  /**
   * --sessions-dir, absolute: every sub-directory is the auth directory of one session (docs/many-sessions.md);
   * null: one session, `sessionId` in `dir`.
   */
  readonly sessionsDir: string | null;
  /** --session-prefix: with sessionsDir, session id = prefix + sub-directory name. */
  readonly sessionPrefix: string;
  readonly schema: string;
  readonly logLevel: string;
  /** --log-format / KEEPER_LOG_FORMAT; null: pretty when the log stream is a terminal, else json. */
  readonly logFormat: LogFormat | null;
  readonly json: boolean;
  /** How long to retry an unreachable database, ms. */
  readonly waitMs: number;
  /** How long restore waits for another lease holder's release, ms. */
  readonly leaseWaitMs: number;
  /** Which generations are kept: the thinning schedule over the newest --keep. */
  readonly retention: RetentionPolicy;
  readonly allowReplace: boolean;
  /** --allow-rollback: store (and keep at restore) a directory older than the head. */
  readonly allowRollback: boolean;
  readonly force: boolean;
  readonly requireBackup: boolean;
  readonly dryRun: boolean;
  readonly yes: boolean;
  readonly generation: number | null;
  readonly at: Date | null;
  readonly input: string | null;
  readonly output: string | null;
  readonly leaseTtlMs: number;
  readonly debounceMs: number;
  readonly maxDelayMs: number;
  readonly intervalMs: number;
  readonly listen: { host: string; port: number };
  readonly shutdownQuietMs: number;
  readonly shutdownTimeoutMs: number;
  readonly watchMode: WatchMode;
  /** Polling period when polling, ms. */
  readonly pollIntervalMs: number;
  /** run: how long the bot's process group may take to exit after a stop signal, ms. */
  readonly stopTimeoutMs: number;
  /** `run -- CMD ARGS…`: the bot's command line. */
  readonly childCommand: readonly string[];
  /** import-legacy: the old system's table, and whether to import all of its rows. */
  readonly table: string;
  readonly all: boolean;
  /** Bearer token of the session API; null disables it (403). */
  readonly apiToken: string | null;
  /** Largest request body the API reads, bytes. */
  readonly maxBodyBytes: number;
  /** Encryption at rest: the configured keys (the first encrypts), or null for plaintext storage. */
  readonly encryption: KeyRing | null;
  /** KEEPER_REQUIRE_ENCRYPTION: a plaintext stored row is an integrity failure wherever it is. */
  readonly requireEncryption: boolean;
  /** The environment for processes the keeper starts (the bot, the embedded PostgreSQL): its own, without the keeper's secrets. */
  readonly childEnv: Readonly<Record<string, string>>;
}

type Env = Readonly<Record<string, string | undefined>>;

/** Parses `argv` (after the command word) and `env` for `command`; throws UsageError on anything off. */
export function loadConfig(command: Command, argv: readonly string[], env: Env, cwd = process.cwd()): Config {
  const separator = argv.indexOf('--');
  const childCommand = separator === -1 ? [] : argv.slice(separator + 1);
  if (command === 'run' && childCommand.length === 0) {
    throw new UsageError("run needs the bot's command after --, e.g. baileys-keeper run -- node bot.js");
  }
  if (command !== 'run' && separator !== -1) throw new UsageError(`'${command}' takes no command after --; only 'run' does`);
  const values = parseFlags(command, separator === -1 ? argv : argv.slice(0, separator));
  const read = (name: string): string | undefined => {
    const flag = values[name];
    if (typeof flag === 'string') return flag;
    const envName = settingOf(name)?.env;
    const fromEnv = envName ? env[envName] : undefined;
    return fromEnv === undefined || fromEnv === '' ? undefined : fromEnv;
  };
  const bool = (name: string): boolean => {
    if (values[name] === true) return true;
    const envName = settingOf(name)?.env;
    const raw = envName ? env[envName] : undefined;
    return raw === undefined || raw === '' ? false : parseBoolean(envName!, raw);
  };
  const int = (name: string, fallback: number, min: number): number => {
    const raw = read(name);
    return raw === undefined ? fallback : parseInteger(describe(name), raw, min);
  };

  const sessionId = read('session') ?? DEFAULT_SESSION_ID;
  if (!isValidSessionId(sessionId)) {
    throw new UsageError(`invalid session id ${JSON.stringify(sessionId)}: use ${SESSION_ID_RULE}`);
  }
  // Only the commands that take it read it: a KEEPER_SESSIONS_DIR in the environment must not break `status`.
  const { sessionsDir, sessionPrefix } = MANY_SESSIONS.includes(command)
    ? manySessions(read, values, env, cwd)
    : { sessionsDir: null, sessionPrefix: '' };
  const schema = read('schema') ?? DEFAULT_SCHEMA;
  if (!SCHEMA_PATTERN.test(schema)) {
    throw new UsageError(`invalid schema ${JSON.stringify(schema)}: use a lowercase identifier (a-z, 0-9, _), at most 63 characters`);
  }
  const logLevel = read('log-level') ?? DEFAULT_LOG_LEVEL;
  if (!LOG_LEVELS.includes(logLevel)) {
    throw new UsageError(`invalid log level ${JSON.stringify(logLevel)}: use one of ${LOG_LEVELS.join(', ')}`);
  }
  const logFormatRaw = read('log-format');
  if (logFormatRaw !== undefined && !(LOG_FORMATS as readonly string[]).includes(logFormatRaw)) {
    throw new UsageError(`invalid --log-format / KEEPER_LOG_FORMAT ${JSON.stringify(logFormatRaw)}: use json or pretty`);
  }
  const encryption = readEncryptionKeys(env);
  if (command === 'rekey' && encryption === null) {
    throw new UsageError(
      'rekey re-encrypts under the newest key, but no key is configured: ' +
        'set KEEPER_ENCRYPTION_KEYS=new:BASE64,old:BASE64 (the first one writes)',
    );
  }
  const requireRaw = env['KEEPER_REQUIRE_ENCRYPTION'];
  // Set but empty is an error, as for the keys: a setting that failed to expand must not turn it off.
  if (requireRaw !== undefined && requireRaw.trim() === '')
    throw new UsageError('KEEPER_REQUIRE_ENCRYPTION is set but empty: set it to true or false, or unset it');
  const requireEncryption = requireRaw === undefined ? false : parseBoolean('KEEPER_REQUIRE_ENCRYPTION', requireRaw);
  if (requireEncryption && encryption === null && CONTENT_COMMANDS.includes(command)) {
    throw new UsageError(
      'KEEPER_REQUIRE_ENCRYPTION is on but no encryption key is configured: set KEEPER_ENCRYPTION_KEY ' +
        '(or KEEPER_ENCRYPTION_KEY_FILE / KEEPER_ENCRYPTION_KEYS), or unset KEEPER_REQUIRE_ENCRYPTION',
    );
  }
  const debounceMs = int('debounce', DEFAULT_DEBOUNCE_MS, 0);
  // Unset, max-delay follows a longer --debounce up (it used to default to 5 s, above most debounces).
  const maxDelayMs = int('max-delay', Math.max(DEFAULT_MAX_DELAY_MS, debounceMs), 0);
  if (maxDelayMs < debounceMs) {
    throw new UsageError(
      `--max-delay (${maxDelayMs} ms) is shorter than --debounce (${debounceMs} ` +
        `ms): max-delay caps the wait, so make it at least the debounce`,
    );
  }
  if (values['all'] === true && typeof values['session'] === 'string') {
    throw new UsageError('--all imports every row; give either --session or --all');
  }
  const generationRaw = read('generation');
  const atRaw = read('at');
  if (generationRaw !== undefined && atRaw !== undefined) {
    throw new UsageError('--generation and --at both name a point to restore: give only one');
  }

  return Object.freeze({
    command,
    database: connectionSettings(
      read('database-url') ?? null,
      env,
      typeof values['database-url'] === 'string' ? '--database-url' : 'DATABASE_URL',
    ),
    dataDir: path.resolve(cwd, read('data-dir') ?? DEFAULT_DATA_DIR),
    sessionId,
    sessionExplicit: read('session') !== undefined,
    dir: path.resolve(cwd, read('dir') ?? DEFAULT_DIR),
    sessionsDir,
    sessionPrefix,
    schema,
    logLevel,
    logFormat: (logFormatRaw as LogFormat | undefined) ?? null,
    json: bool('json'),
    waitMs: int('wait', DEFAULT_WAIT_SECONDS, 0) * 1000,
    leaseWaitMs: int('lease-wait', DEFAULT_LEASE_WAIT_SECONDS, 0) * 1000,
    // Only the commands that apply or show it read it: a bad KEEPER_RETENTION must not break `status`.
    retention: RETAINERS.includes(command)
      ? parseRetention(read('retention') ?? DEFAULT_RETENTION, int('keep', DEFAULT_KEEP_GENERATIONS, 1))
      : parseRetention(DEFAULT_RETENTION, DEFAULT_KEEP_GENERATIONS),
    allowReplace: bool('allow-replace'),
    allowRollback: bool('allow-rollback'),
    force: bool('force'),
    requireBackup: bool('require-backup'),
    dryRun: bool('dry-run'),
    yes: bool('yes'),
    generation: generationRaw === undefined ? null : parseInteger('--generation', generationRaw, 1),
    at: atRaw === undefined ? null : parseTime(atRaw),
    input: read('input') ?? null,
    output: read('output') ?? null,
    leaseTtlMs: int('lease-ttl', DEFAULT_LEASE_TTL_MS, 300),
    debounceMs,
    maxDelayMs,
    intervalMs: int('interval', DEFAULT_INTERVAL_MS, 100),
    listen: parseListen(read('listen') ?? DEFAULT_LISTEN),
    shutdownQuietMs: int('shutdown-quiet', DEFAULT_SHUTDOWN_QUIET_MS, 0),
    shutdownTimeoutMs: int('shutdown-timeout', DEFAULT_SHUTDOWN_TIMEOUT_MS, 0),
    watchMode: parseWatchMode(read('watch') ?? DEFAULT_WATCH_MODE),
    pollIntervalMs: int('poll-interval', DEFAULT_POLL_INTERVAL_MS, 10),
    stopTimeoutMs: int('stop-timeout', DEFAULT_STOP_TIMEOUT_MS, 0),
    childCommand,
    table: read('table') ?? DEFAULT_LEGACY_TABLE,
    all: bool('all'),
    apiToken: command === 'sidecar' || command === 'run' ? readApiToken(env) : null,
    maxBodyBytes: env['KEEPER_MAX_BODY_BYTES']
      ? parseInteger('KEEPER_MAX_BODY_BYTES', env['KEEPER_MAX_BODY_BYTES'], 1024)
      : DEFAULT_MAX_BODY_BYTES,
    encryption,
    requireEncryption,
    childEnv: Object.freeze(withoutKeeperSecrets(env)),
  });
}

/**
 * --sessions-dir and --session-prefix. A sessions directory excludes the one-session settings: --dir or
 * --session given as a flag, or KEEPER_SESSION_ID, is a usage error. KEEPER_DIR alone is not, because
 * the images set it (KEEPER_DIR=/auth_info) for the one-session case; with --sessions-dir it is unused.
 */
function manySessions(
  read: (name: string) => string | undefined,
  flags: Readonly<Record<string, unknown>>,
  env: Env,
  cwd: string,
): { sessionsDir: string | null; sessionPrefix: string } {
  const dir = read('sessions-dir');
  const prefix = read('session-prefix') ?? '';
  if (dir === undefined) {
    if (prefix !== '') throw new UsageError('--session-prefix only applies with --sessions-dir (KEEPER_SESSIONS_DIR)');
    return { sessionsDir: null, sessionPrefix: '' };
  }
  const clash =
    typeof flags['dir'] === 'string'
      ? '--dir'
      : typeof flags['session'] === 'string'
        ? '--session'
        : env['KEEPER_SESSION_ID']
          ? 'KEEPER_SESSION_ID'
          : null;
  if (clash)
    throw new UsageError(
      `--sessions-dir keeps every sub-directory as its own session, so ${clash} does not apply: give either --sessions-dir or --dir/--session`,
    );
  // The prefix joins a directory name into a session id, so it must be made of what ids are made of.
  if (prefix !== '' && !isValidSessionId(`${prefix}x`))
    throw new UsageError(`invalid --session-prefix ${JSON.stringify(prefix)}: use at most 99 characters of A-Z a-z 0-9 . _ -`);
  return { sessionsDir: path.resolve(cwd, dir), sessionPrefix: prefix };
}

/**
 * The keeper's own secrets, never handed to the processes it starts. DATABASE_URL stays: on Railway and
 * similar it is usually the bot's own setting too. The *_FILE variables hold paths, not secrets.
 */
export const KEEPER_SECRET_VARIABLES: readonly string[] = ['KEEPER_ENCRYPTION_KEY', 'KEEPER_ENCRYPTION_KEYS', 'KEEPER_API_TOKEN'];

export function withoutKeeperSecrets(env: Env): Record<string, string> {
  return Object.fromEntries(
    Object.entries(env).filter((entry): entry is [string, string] => entry[1] !== undefined && !KEEPER_SECRET_VARIABLES.includes(entry[0])),
  );
}

/** KEEPER_API_TOKEN, or the first line of the file KEEPER_API_TOKEN_FILE names (a mounted secret). */
function readApiToken(env: Env): string | null {
  const direct = env['KEEPER_API_TOKEN'];
  const file = env['KEEPER_API_TOKEN_FILE'];
  if (direct && file) throw new UsageError('both KEEPER_API_TOKEN and KEEPER_API_TOKEN_FILE are set: set only one');
  let token = direct ?? null;
  if (file) {
    try {
      token = readFileSync(file, 'utf8').split(/\r?\n/)[0] ?? '';
    } catch (error) {
      throw new UsageError(
        `cannot read KEEPER_API_TOKEN_FILE ${file} (${(error as NodeJS.ErrnoException).code ?? String(error)}): check the secret mount`,
        { cause: error },
      );
    }
  }
  if (token !== null && token.trim() === '')
    throw new UsageError('the API token is empty: set a long random KEEPER_API_TOKEN or leave it unset to disable the API');
  if (token !== null && !BEARER_TOKEN.test(token.trim()))
    // The token itself is never shown: only what is wrong with it.
    throw new UsageError(
      `the API token (${file ? 'KEEPER_API_TOKEN_FILE' : 'KEEPER_API_TOKEN'}) has characters a bearer token cannot carry ` +
        '(spaces or others outside A-Z a-z 0-9 - . _ ~ + / and trailing =, RFC 6750), so no request could ever match it: ' +
        'use a long random token, e.g. the output of `openssl rand -hex 32`',
    );
  return token === null ? null : token.trim();
}

/** What an Authorization: Bearer header can carry (RFC 6750 b64token). */
const BEARER_TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;

const KEY_HINT = 'use 32 random bytes in base64, e.g. the output of `openssl rand -base64 32`';

/**
 * The encryption keys from KEEPER_ENCRYPTION_KEY (base64), KEEPER_ENCRYPTION_KEY_FILE (a mounted
 * secret holding the base64) or KEEPER_ENCRYPTION_KEYS (id:base64,…; the first one writes). A key given
 * alone is identified by its fingerprint (fp-…, derived from the key), so the same key always has
 * the same id. Messages never include key bytes.
 */
export function readEncryptionKeys(env: Env): KeyRing | null {
  // Set but empty is an error, not "no encryption": a secret that failed to mount or expand must not
  // quietly turn encryption off.
  const given = ['KEEPER_ENCRYPTION_KEY', 'KEEPER_ENCRYPTION_KEY_FILE', 'KEEPER_ENCRYPTION_KEYS'].filter((name) => env[name] !== undefined);
  if (given.length === 0) return null;
  if (given.length > 1)
    throw new UsageError(`${given.join(' and ')} are all set: set only one (KEEPER_ENCRYPTION_KEYS holds several keys)`);
  const empty = given.find((name) => env[name]!.trim() === '');
  if (empty) {
    throw new UsageError(`${empty} is set but empty: give it a key (${KEY_HINT}), or unset it to store contents in plaintext`);
  }
  const single = (label: string, text: string): EncryptionKey => {
    const key = decodeKey(text);
    if (typeof key === 'string') {
      const fix = key === 'it is empty' ? `${KEY_HINT}, or unset the variable to store contents in plaintext` : KEY_HINT;
      throw new UsageError(`${label} is not a valid encryption key (${key}): ${fix}`);
    }
    return makeKey(key);
  };
  const direct = env['KEEPER_ENCRYPTION_KEY'];
  if (direct) return new KeyRing([single('KEEPER_ENCRYPTION_KEY', direct)]);
  const file = env['KEEPER_ENCRYPTION_KEY_FILE'];
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (error) {
      throw new UsageError(
        `cannot read KEEPER_ENCRYPTION_KEY_FILE ${file} (${(error as NodeJS.ErrnoException).code ?? 'unreadable'}): check the secret mount`,
        { cause: error },
      );
    }
    return new KeyRing([single(`the key in KEEPER_ENCRYPTION_KEY_FILE ${file}`, text)]);
  }
  const keys: EncryptionKey[] = [];
  const entries = env['KEEPER_ENCRYPTION_KEYS']!.split(',').map((entry) => entry.trim());
  for (const [index, entry] of entries.entries()) {
    const colon = entry.indexOf(':');
    const id = colon === -1 ? '' : entry.slice(0, colon).trim();
    const where = `KEEPER_ENCRYPTION_KEYS entry ${index + 1}`;
    if (colon === -1 || !KEY_ID_PATTERN.test(id)) {
      throw new UsageError(
        `${where} is not ID:BASE64: write id1:BASE64,id2:BASE64 with ids of 1-64 characters of A-Z a-z 0-9 . _ - (the first key writes)`,
      );
    }
    if (keys.some((key) => key.id === id)) throw new UsageError(`${where}: key id ${id} appears twice; give every key its own id`);
    const material = decodeKey(entry.slice(colon + 1));
    if (typeof material === 'string') throw new UsageError(`${where} (id ${id}) is not a valid encryption key (${material}): ${KEY_HINT}`);
    keys.push(makeKey(material, id));
  }
  return new KeyRing(keys);
}

/** True when argv asks for help. Checked before full validation so `--help` always works. */
export function wantsHelp(argv: readonly string[]): boolean {
  return argv.includes('--help') || argv.includes('-h');
}

function parseFlags(command: Command, argv: readonly string[]): Record<string, string | boolean | undefined> {
  const accepted = settingsFor(command).filter(([, spec]) => spec.flag);
  const options = Object.fromEntries(accepted.map(([name, spec]) => [name, { type: spec.kind }]));
  try {
    const { values, positionals } = parseArgs({ args: [...argv], options, strict: true, allowPositionals: true });
    if (positionals.length > 0) {
      throw new UsageError(
        `unexpected argument ${JSON.stringify(positionals[0])} for '${command}'; see 'baileys-keeper ${command} --help'`,
      );
    }
    return values as Record<string, string | boolean | undefined>;
  } catch (error) {
    if (error instanceof UsageError) throw error;
    const unknown = (error as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' ? /'(-{1,2}[^']+)'/.exec(String(error)) : null;
    if (unknown)
      throw new UsageError(
        `${unknownFlag(
          command,
          unknown[1]!,
          accepted.map(([name]) => name),
        )}; see 'baileys-keeper ${command} --help'`,
        { cause: error },
      );
    const message = error instanceof Error ? error.message : String(error);
    throw new UsageError(`${message.replace(/\. To specify a positional argument.*$/, '')}; see 'baileys-keeper ${command} --help'`, {
      cause: error,
    });
  }
}

/** What is wrong with a flag `command` does not take: a typo of one it takes, or another command's flag. */
function unknownFlag(command: Command, flag: string, accepted: readonly string[]): string {
  const name = flag.replace(/^-+/, '').split('=')[0]!;
  const takenBy = (setting: Setting | undefined) => (setting?.flag && setting.commands ? setting.commands.join(', ') : null);
  if (takenBy(settingOf(name))) return `'${command}' does not take --${name} (it is an option of ${takenBy(settingOf(name))})`;
  const flags = Object.keys(SETTINGS).filter((other) => settingOf(other)!.flag);
  const near = didYouMean(name, accepted) ?? didYouMean(name, flags);
  if (near === null) return `unknown option ${flag}`;
  if (accepted.includes(near)) return `unknown option ${flag} (did you mean --${near}?)`;
  return `unknown option ${flag} (--${near} is an option of ${takenBy(settingOf(near)) ?? 'other commands'}, not of '${command}')`;
}

function settingOf(name: string): Setting | undefined {
  return (SETTINGS as Record<string, Setting>)[name];
}

function describe(name: string): string {
  const envName = settingOf(name)?.env;
  return envName ? `--${name} / ${envName}` : `--${name}`;
}

/** Accepts the boolean words for env values that README "Configuration" lists. */
export function parseBoolean(label: string, raw: string): boolean {
  const value = raw.trim().toLowerCase();
  if (['1', 'true', 'yes'].includes(value)) return true;
  if (['0', 'false', 'no'].includes(value)) return false;
  throw new UsageError(`invalid ${label} ${JSON.stringify(raw)}: use 1/true/yes or 0/false/no`);
}

/** Parses a plain decimal integer >= min (durations are plain integers in the unit named). */
export function parseInteger(label: string, raw: string, min: number): number {
  const trimmed = raw.trim();
  if (!/^\d+$/.test(trimmed) || !Number.isSafeInteger(Number(trimmed)) || Number(trimmed) < min) {
    throw new UsageError(`invalid ${label} ${JSON.stringify(raw)}: expected a whole number >= ${min}`);
  }
  return Number(trimmed);
}

/** HOST:PORT, [IPv6]:PORT or :PORT (all interfaces). */
export function parseListen(raw: string): { host: string; port: number } {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(raw.trim());
  const port = Number(match?.[3]);
  if (!match || port > 65535) {
    throw new UsageError(`invalid --listen / KEEPER_LISTEN ${JSON.stringify(raw)}: expected HOST:PORT such as 0.0.0.0:9464 or [::]:9464`);
  }
  return { host: match[1] ?? (match[2] || '0.0.0.0'), port };
}

function parseWatchMode(raw: string): WatchMode {
  const mode = raw.trim() as WatchMode;
  if (!WATCH_MODES.includes(mode))
    throw new UsageError(`invalid --watch / KEEPER_WATCH ${JSON.stringify(raw)}: use ${WATCH_MODES.join(', ')}`);
  return mode;
}

function parseTime(raw: string): Date {
  // Date.parse accepts many shapes; require ISO-8601 so "--at 5" is not silently year 2001.
  if (!/^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/.test(raw.trim())) {
    throw new UsageError(`invalid --at ${JSON.stringify(raw)}: expected an ISO-8601 time such as 2026-01-31T12:00:00Z`);
  }
  const date = new Date(raw.trim());
  const [year, month, day] = raw.trim().slice(0, 10).split('-').map(Number) as [number, number, number];
  // new Date() rolls 2026-02-31 over into March: reject days the month does not have.
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  if (Number.isNaN(date.getTime()) || month < 1 || month > 12 || day < 1 || day > daysInMonth) {
    throw new UsageError(`invalid --at ${JSON.stringify(raw)}: not a real date`);
  }
  return date;
}
