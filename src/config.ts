// Flags, environment and the settings table → one frozen, validated configuration per command. The only
// module that reads argv/env. Every default, parser and variable name comes from the table (options.ts);
// a command's configuration holds only the settings its rows list it under (ConfigOf).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { decodeKey, type EncryptionKey, KEY_ID_PATTERN, KeyRing, makeKey } from './crypto.js';
import { UsageError } from './errors.js';
import { isValidSessionId } from './names.js';
import {
  type Command,
  CONTENT_COMMANDS,
  describeSetting,
  envNames,
  type LogFormat,
  SETTINGS,
  type Setting,
  type SettingName,
  type ValueOf,
  settingsFor,
  shownDefault,
} from './options.js';
import { parseRetention, type RetentionPolicy } from './store/retention.js';
import { formatDuration, KEY_HINT } from './setting-parsers.js';
import { didYouMean } from './suggest.js';
import { refuseGuessedSession } from './start-warnings.js';
import { type UnknownVariable, unknownVariables } from './unknown-variables.js';
import type { WatchMode } from './watcher.js';

/** A setting's default from the table, for the settings that have one (a value, not "unset"). */
function defaultOf<N extends SettingName>(name: N): NonNullable<ValueOf<N>> {
  const value: unknown = SETTINGS[name].default;
  if (value === null) throw new Error(`the setting ${name} has no default value`);
  return value as NonNullable<ValueOf<N>>;
}

// Defaults that other modules and the tests name, with their units in the name: read from the table.
export const DEFAULT_SCHEMA = defaultOf('schema');
export const DEFAULT_WAIT_MS = defaultOf('wait');
export const DEFAULT_LEASE_TTL_MS = defaultOf('lease-ttl');
export const DEFAULT_DEBOUNCE_MS = defaultOf('debounce');
export const DEFAULT_MAX_DELAY_MS = defaultOf('max-delay');
export const DEFAULT_INTERVAL_MS = defaultOf('interval');
/** HOST:PORT, as KEEPER_LISTEN writes it. */
export const DEFAULT_LISTEN = shownDefault(SETTINGS.listen);
export const DEFAULT_SHUTDOWN_QUIET_MS = defaultOf('shutdown-quiet');
export const DEFAULT_SHUTDOWN_TIMEOUT_MS = defaultOf('shutdown-timeout');
export const DEFAULT_WATCH_MODE: WatchMode = defaultOf('watch');
export const DEFAULT_POLL_INTERVAL_MS = defaultOf('poll-interval');
export const DEFAULT_KEEP_GENERATIONS = defaultOf('keep');
export const DEFAULT_RETENTION = defaultOf('retention');
export type { LogFormat };

/** The database settings as given; commands/database.ts resolves them (src/db/settings.ts: libpq's meanings). */
export interface DatabaseSettings {
  /** --database-url or DATABASE_URL; null: none (the PG* variables say where). */
  readonly url: string | null;
  /** Where the URL came from, as messages name it: `--database-url` or `DATABASE_URL`. */
  readonly source: string;
  /** Every PG* environment variable that is set, as read (libpq's variables, not the keeper's). */
  readonly pgVariables: Readonly<Record<string, string>>;
}

/** Every command's full configuration; a command gets the part it declares, ConfigOf<its name>. */
export interface Config {
  readonly command: Command;
  /** --database-url / DATABASE_URL and the PG* variables, as given; null: none, the embedded default. */
  readonly database: DatabaseSettings | null;
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
  readonly listen: { readonly host: string; readonly port: number };
  readonly shutdownQuietMs: number;
  readonly shutdownTimeoutMs: number;
  readonly watchMode: WatchMode;
  /** Polling period when polling, ms. */
  readonly pollIntervalMs: number;
  /** run: how long the bot's process group may take to exit after a stop signal, ms. */
  readonly stopTimeoutMs: number;
  /** `run -- CMD ARGS…`: the bot's command line (empty for the other commands). */
  readonly childCommand: readonly string[];
  /** import-legacy: the Flask session API's table, and whether to import all of its rows. */
  readonly table: string;
  readonly all: boolean;
  /** Bearer token of the session API; null disables it (403). */
  readonly apiToken: string | null;
  /** --webhook-url: where lifecycle events are POSTed (docs/monitoring.md); null: nowhere. */
  readonly webhookUrl: string | null;
  /** KEEPER_WEBHOOK_SECRET(_FILE): the HMAC-SHA256 key of X-Keeper-Signature; null: unsigned. */
  readonly webhookSecret: string | null;
  /** --heartbeat-url: GET while every session is protected; null: no heartbeat. */
  readonly heartbeatUrl: string | null;
  /** --heartbeat-interval, ms. */
  readonly heartbeatIntervalMs: number;
  /** Largest request body the API reads, bytes. */
  readonly maxBodyBytes: number;
  /** Encryption at rest: the configured keys (the first encrypts), or null for plaintext storage. */
  readonly encryption: KeyRing | null;
  /** KEEPER_REQUIRE_ENCRYPTION: a plaintext stored row is an integrity failure wherever it is. */
  readonly requireEncryption: boolean;
  /** The environment for processes the keeper starts (the bot, the embedded PostgreSQL): its own, without the keeper's secrets. */
  readonly childEnv: Readonly<Record<string, string>>;
  /** Variables of the keeper's namespace in the environment that no setting reads (warned about at start). */
  readonly unknownVariables: readonly UnknownVariable[];
}

/** The fields every command gets, whatever it declares: they come from no row. */
type CommonField = 'command' | 'childCommand' | 'childEnv' | 'unknownVariables';

/**
 * Which settings each other field holds (its first setting decides who gets the field; the others
 * have the same commands). `help` holds none: cli.ts answers it before the configuration is read.
 */
export const FIELDS = {
  database: ['database-url'],
  dataDir: ['data-dir'],
  sessionId: ['session'],
  sessionExplicit: ['session'],
  dir: ['dir'],
  sessionsDir: ['sessions-dir'],
  sessionPrefix: ['session-prefix'],
  schema: ['schema'],
  logLevel: ['log-level'],
  logFormat: ['log-format'],
  json: ['json'],
  waitMs: ['wait'],
  leaseWaitMs: ['lease-wait'],
  retention: ['retention', 'keep'],
  allowReplace: ['allow-replace'],
  allowRollback: ['allow-rollback'],
  force: ['force'],
  requireBackup: ['require-backup'],
  dryRun: ['dry-run'],
  yes: ['yes'],
  generation: ['generation'],
  at: ['at'],
  input: ['input'],
  output: ['output'],
  leaseTtlMs: ['lease-ttl'],
  debounceMs: ['debounce'],
  maxDelayMs: ['max-delay'],
  intervalMs: ['interval'],
  listen: ['listen'],
  shutdownQuietMs: ['shutdown-quiet'],
  shutdownTimeoutMs: ['shutdown-timeout'],
  watchMode: ['watch'],
  pollIntervalMs: ['poll-interval'],
  stopTimeoutMs: ['stop-timeout'],
  table: ['table'],
  all: ['all'],
  apiToken: ['api-token'],
  webhookUrl: ['webhook-url'],
  webhookSecret: ['webhook-secret'],
  heartbeatUrl: ['heartbeat-url'],
  heartbeatIntervalMs: ['heartbeat-interval'],
  maxBodyBytes: ['max-body-bytes'],
  encryption: ['encryption-key'],
  requireEncryption: ['require-encryption'],
} as const satisfies Record<Exclude<keyof Config, CommonField>, readonly [SettingName, ...SettingName[]]>;
type SettingField = keyof typeof FIELDS;

/** The commands a setting's row lists (every command when it lists none). */
type CommandsOf<N extends SettingName> = (typeof SETTINGS)[N]['commands'] extends readonly (infer C)[] ? C : Command;
/** The fields `C` declares; for a union of commands, the fields all of them declare. */
type FieldsOf<C extends Command> = {
  [F in SettingField]: [C] extends [CommandsOf<(typeof FIELDS)[F][0]>] ? F : never;
}[SettingField];
/** The configuration command `C` gets: the common fields and the settings it declares, nothing else. */
export type ConfigOf<C extends Command> = Pick<Config, CommonField | FieldsOf<C>>;

/** The fields `command` gets, at run time: the same rule as ConfigOf. */
export function fieldsFor(command: Command): SettingField[] {
  return (Object.keys(FIELDS) as SettingField[]).filter((field) => takes(command, FIELDS[field][0]));
}

function takes(command: Command, name: SettingName): boolean {
  const commands: readonly Command[] | undefined = SETTINGS[name].commands;
  return commands === undefined || commands.includes(command);
}

type Env = Readonly<Record<string, string | undefined>>;
type Flags = Readonly<Record<string, string | boolean | undefined>>;

/**
 * Parses `argv` (after the command word) and `env` for `command` into the settings it declares (others
 * are not read: a bad variable another command takes must not break it). Throws UsageError (exit 64).
 */
export function loadConfig<C extends Command>(command: C, argv: readonly string[], env: Env, cwd = process.cwd()): ConfigOf<C> {
  const separator = argv.indexOf('--');
  const childCommand = separator === -1 ? [] : argv.slice(separator + 1);
  if (command === 'run' && childCommand.length === 0) {
    throw new UsageError("run needs the bot's command after --, e.g. baileys-keeper run -- node bot.js");
  }
  if (command !== 'run' && separator !== -1) throw new UsageError(`'${command}' takes no command after --; only 'run' does`);
  const flags = parseFlags(command, separator === -1 ? argv : argv.slice(0, separator));
  const { given, value } = reader(flags, env);
  const declared = fieldsFor(command);
  const has = (field: SettingField) => declared.includes(field);

  const sessionId = value('session');
  // Only the commands that take it read it: a KEEPER_SESSIONS_DIR in the environment must not break `status`.
  const many = has('sessionsDir') ? manySessions(given, flags, env, cwd) : null;
  const encryption = readEncryptionKeys(env);
  if (command === 'rekey' && encryption === null) {
    throw new UsageError(
      'rekey re-encrypts under the newest key, but no key is configured: ' +
        `set ${ENCRYPTION_KEYS}=new:BASE64,old:BASE64 (the first one writes)`,
    );
  }
  const requireEncryption = readRequireEncryption(env);
  if (requireEncryption && encryption === null && CONTENT_COMMANDS.includes(command)) {
    const requireVariable = variable('require-encryption');
    throw new UsageError(
      `${requireVariable} is on but no encryption key is configured: set ${ENCRYPTION_KEY} ` +
        `(or ${ENCRYPTION_KEY_FILE} / ${ENCRYPTION_KEYS}), or unset ${requireVariable}`,
    );
  }
  const debounceMs = has('debounceMs') ? value('debounce') : 0;
  // Unset, max-delay follows a longer --debounce up (it used to default to 5 s, above most debounces).
  const maxDelayMs = has('maxDelayMs')
    ? given('max-delay') === undefined
      ? Math.max(defaultOf('max-delay'), debounceMs)
      : value('max-delay')
    : 0;
  if (maxDelayMs < debounceMs) {
    throw new UsageError(
      `--max-delay (${formatDuration(maxDelayMs)}) is shorter than --debounce (${formatDuration(debounceMs)}): ` +
        'max-delay caps the wait, so make it at least the debounce',
    );
  }
  if (flags['all'] === true && typeof flags['session'] === 'string') {
    throw new UsageError('--all imports every row; give either --session or --all');
  }
  if (given('generation') !== undefined && given('at') !== undefined) {
    throw new UsageError('--generation and --at both name a point to restore: give only one');
  }

  // Each field, computed only for a command that declares it.
  const compute: { [F in SettingField]: () => Config[F] } = {
    database: () => databaseSettings(given('database-url') ?? null, typeof flags['database-url'] === 'string', env),
    dataDir: () => path.resolve(cwd, value('data-dir')),
    sessionId: () => sessionId,
    sessionExplicit: () => given('session') !== undefined,
    dir: () => path.resolve(cwd, value('dir')),
    sessionsDir: () => many?.sessionsDir ?? null,
    sessionPrefix: () => many?.sessionPrefix ?? '',
    schema: () => value('schema'),
    logLevel: () => value('log-level'),
    logFormat: () => value('log-format'),
    json: () => value('json'),
    waitMs: () => value('wait'),
    leaseWaitMs: () => value('lease-wait'),
    retention: () => {
      const keep = value('keep'); // first: a bad --keep is reported before a bad schedule
      return parseRetention(value('retention'), keep);
    },
    allowReplace: () => value('allow-replace'),
    allowRollback: () => value('allow-rollback'),
    force: () => value('force'),
    requireBackup: () => value('require-backup'),
    dryRun: () => value('dry-run'),
    yes: () => value('yes'),
    generation: () => value('generation'),
    at: () => value('at'),
    input: () => value('input'),
    output: () => value('output'),
    leaseTtlMs: () => value('lease-ttl'),
    debounceMs: () => debounceMs,
    maxDelayMs: () => maxDelayMs,
    intervalMs: () => value('interval'),
    listen: () => value('listen'),
    shutdownQuietMs: () => value('shutdown-quiet'),
    shutdownTimeoutMs: () => value('shutdown-timeout'),
    watchMode: () => value('watch'),
    pollIntervalMs: () => value('poll-interval'),
    stopTimeoutMs: () => value('stop-timeout'),
    table: () => value('table'),
    all: () => value('all'),
    apiToken: () => readApiToken(env),
    webhookUrl: () => value('webhook-url'),
    webhookSecret: () => readWebhookSecret(env),
    heartbeatUrl: () => value('heartbeat-url'),
    heartbeatIntervalMs: () => value('heartbeat-interval'),
    maxBodyBytes: () => value('max-body-bytes'),
    encryption: () => encryption,
    requireEncryption: () => requireEncryption,
  };
  const config: Record<string, unknown> = {
    command,
    childCommand,
    childEnv: Object.freeze(withoutKeeperSecrets(env)),
    unknownVariables: Object.freeze(unknownVariables(env)),
  };
  for (const field of declared) config[field] = compute[field]();
  refuseGuessedSession(config as unknown as Parameters<typeof refuseGuessedSession>[0]);
  return Object.freeze(config) as unknown as ConfigOf<C>;
}

/**
 * How settings are read: `given(name)` is the flag's text, else the env twin's (empty counts as unset),
 * else undefined; `value(name)` is that text through the row's parser, else the row's default.
 */
function reader(flags: Flags, env: Env) {
  const given = (name: SettingName): string | undefined => {
    const flag = flags[name];
    if (typeof flag === 'string') return flag;
    const variable = SETTINGS[name].env;
    const fromEnv = variable ? env[variable] : undefined;
    return fromEnv === undefined || fromEnv === '' ? undefined : fromEnv;
  };
  const value = <N extends SettingName>(name: N): ValueOf<N> => {
    const setting: Setting = SETTINGS[name];
    if (setting.kind === 'boolean' && flags[name] === true) return true as ValueOf<N>;
    const raw = given(name);
    if (raw === undefined) return setting.default as ValueOf<N>;
    // A switch's text only ever comes from its variable, so its message names the variable alone.
    const label = setting.kind === 'boolean' && setting.env ? setting.env : describeSetting(name, setting);
    return setting.parse(raw, label) as ValueOf<N>;
  };
  return { given, value };
}

/** The database URL as given (from the flag or DATABASE_URL) and the PG* variables; null when none is set. */
function databaseSettings(url: string | null, fromFlag: boolean, env: Env): DatabaseSettings | null {
  // libpq's variables are all PG*: which ones the keeper honours or refuses is src/db/settings.ts's business.
  const pgVariables = Object.fromEntries(
    Object.entries(env).filter((entry): entry is [string, string] => entry[0].startsWith('PG') && entry[1] !== undefined),
  );
  if (url === null && !Object.values(pgVariables).some((text) => text !== '')) return null;
  return Object.freeze({ url, source: fromFlag ? '--database-url' : variable('database-url'), pgVariables: Object.freeze(pgVariables) });
}

/** KEEPER_REQUIRE_ENCRYPTION. Set but empty is an error, as for the keys: a setting that failed to expand must not turn it off. */
function readRequireEncryption(env: Env): boolean {
  const name = variable('require-encryption');
  const raw = env[name];
  if (raw !== undefined && raw.trim() === '') throw new UsageError(`${name} is set but empty: set it to true or false, or unset it`);
  return raw === undefined ? defaultOf('require-encryption') : SETTINGS['require-encryption'].parse(raw, name);
}

/** The environment twin of a setting that has one. */
function variable(name: SettingName): string {
  const twin = SETTINGS[name].env;
  if (twin === undefined) throw new Error(`the setting ${name} has no environment variable`);
  return twin;
}

/**
 * --sessions-dir and --session-prefix. A sessions directory excludes the one-session settings: --dir or
 * --session given as a flag, or KEEPER_SESSION_ID, is a usage error. KEEPER_DIR alone is not, because
 * the images set it (KEEPER_DIR=/auth_info) for the one-session case; with --sessions-dir it is unused.
 */
function manySessions(
  given: (name: SettingName) => string | undefined,
  flags: Flags,
  env: Env,
  cwd: string,
): { sessionsDir: string | null; sessionPrefix: string } {
  const dir = given('sessions-dir');
  const prefix = given('session-prefix') ?? defaultOf('session-prefix');
  if (dir === undefined) {
    if (prefix !== '') throw new UsageError(`--session-prefix only applies with --sessions-dir (${variable('sessions-dir')})`);
    return { sessionsDir: null, sessionPrefix: '' };
  }
  const clash =
    typeof flags['dir'] === 'string'
      ? '--dir'
      : typeof flags['session'] === 'string'
        ? '--session'
        : env[variable('session')]
          ? variable('session')
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

const [ENCRYPTION_KEY, ENCRYPTION_KEY_FILE, ENCRYPTION_KEYS] = envNames(SETTINGS['encryption-key']) as [string, string, string];
const [API_TOKEN, API_TOKEN_FILE] = envNames(SETTINGS['api-token']) as [string, string];
const [WEBHOOK_SECRET, WEBHOOK_SECRET_FILE] = envNames(SETTINGS['webhook-secret']) as [string, string];

/**
 * The keeper's own secrets, never handed to the processes it starts. DATABASE_URL stays: on Railway and
 * similar it is usually the bot's own setting too. The *_FILE variables hold paths, not secrets.
 */
export const KEEPER_SECRET_VARIABLES: readonly string[] = [
  ENCRYPTION_KEY,
  ENCRYPTION_KEYS,
  API_TOKEN,
  WEBHOOK_SECRET,
  // Webhook and ping URLs carry their token in the path or query (src/notify/url.ts).
  ...envNames(SETTINGS['webhook-url']),
  ...envNames(SETTINGS['heartbeat-url']),
];

/** `env` without KEEPER_SECRET_VARIABLES and unset entries. */
export function withoutKeeperSecrets(env: Env): Record<string, string> {
  return Object.fromEntries(
    Object.entries(env).filter((entry): entry is [string, string] => entry[1] !== undefined && !KEEPER_SECRET_VARIABLES.includes(entry[0])),
  );
}

/**
 * A secret given as VAR or as the first line of the file VAR_FILE names (a mounted secret): its text, or
 * null when neither is set. UsageError when both are, or the file cannot be read.
 */
function readSecret(env: Env, variable: string, fileVariable: string): string | null {
  const direct = env[variable];
  const file = env[fileVariable];
  if (direct && file) throw new UsageError(`both ${variable} and ${fileVariable} are set: set only one`);
  if (!file) return direct ?? null;
  try {
    return readFileSync(file, 'utf8').split(/\r?\n/)[0] ?? '';
  } catch (error) {
    throw new UsageError(
      `cannot read ${fileVariable} ${file} (${(error as NodeJS.ErrnoException).code ?? String(error)}): check the secret mount`,
      { cause: error },
    );
  }
}

/** KEEPER_WEBHOOK_SECRET or its _FILE twin; null: webhooks are sent unsigned. Set but empty is an error. */
function readWebhookSecret(env: Env): string | null {
  const secret = readSecret(env, WEBHOOK_SECRET, WEBHOOK_SECRET_FILE);
  if (secret !== null && secret.trim() === '')
    throw new UsageError(
      `the webhook secret is empty: set ${WEBHOOK_SECRET} (or ${WEBHOOK_SECRET_FILE}) to a long random string, or unset it`,
    );
  return secret;
}

/** KEEPER_API_TOKEN, or the first line of the file KEEPER_API_TOKEN_FILE names (a mounted secret); null: the API is off. */
function readApiToken(env: Env): string | null {
  const token = readSecret(env, API_TOKEN, API_TOKEN_FILE);
  const file = env[API_TOKEN_FILE];
  if (token === null) return SETTINGS['api-token'].default;
  if (token.trim() === '')
    throw new UsageError(`the API token is empty: set a long random ${API_TOKEN} or leave it unset to disable the API`);
  return SETTINGS['api-token'].parse(token, file ? API_TOKEN_FILE : API_TOKEN);
}

/**
 * The encryption keys from KEEPER_ENCRYPTION_KEY (base64), KEEPER_ENCRYPTION_KEY_FILE (a mounted
 * secret holding the base64) or KEEPER_ENCRYPTION_KEYS (id:base64,…; the first one writes). A key given
 * alone is identified by its fingerprint (fp-…, derived from the key), so the same key always has
 * the same id. Messages never include key bytes.
 */
export function readEncryptionKeys(env: Env): KeyRing | null {
  // Set but empty is an error, not "no encryption": a secret that failed to mount or expand must not
  // quietly turn encryption off.
  const given = [ENCRYPTION_KEY, ENCRYPTION_KEY_FILE, ENCRYPTION_KEYS].filter((name) => env[name] !== undefined);
  if (given.length === 0) return SETTINGS['encryption-key'].default;
  if (given.length > 1) throw new UsageError(`${given.join(' and ')} are all set: set only one (${ENCRYPTION_KEYS} holds several keys)`);
  const empty = given.find((name) => env[name]!.trim() === '');
  if (empty) {
    throw new UsageError(`${empty} is set but empty: give it a key (${KEY_HINT}), or unset it to store contents in plaintext`);
  }
  const single = SETTINGS['encryption-key'].parse;
  const direct = env[ENCRYPTION_KEY];
  if (direct) return single(direct, ENCRYPTION_KEY);
  const file = env[ENCRYPTION_KEY_FILE];
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (error) {
      throw new UsageError(
        `cannot read ${ENCRYPTION_KEY_FILE} ${file} (${(error as NodeJS.ErrnoException).code ?? 'unreadable'}): check the secret mount`,
        { cause: error },
      );
    }
    return single(text, `the key in ${ENCRYPTION_KEY_FILE} ${file}`);
  }
  const keys: EncryptionKey[] = [];
  const entries = env[ENCRYPTION_KEYS]!.split(',').map((entry) => entry.trim());
  for (const [index, entry] of entries.entries()) {
    const colon = entry.indexOf(':');
    const id = colon === -1 ? '' : entry.slice(0, colon).trim();
    const where = `${ENCRYPTION_KEYS} entry ${index + 1}`;
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
