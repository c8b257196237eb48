// Every setting the keeper reads — each flag with its environment twin, and the settings that are
// environment-only (secrets) — in one table. The parser (config.ts), every `--help` and the README's
// configuration table are made from it; nothing else names a flag or a KEEPER_* variable. Each row
// carries its typed default and its parser, so the runtime default, help and the README agree.
import { DEFAULT_RETENTION } from './store/retention.js';
import {
  bearerToken,
  boolean,
  duration,
  encryptionKey,
  integer,
  isoTime,
  listen,
  oneOf,
  type Parser,
  retentionSchedule,
  schemaName,
  sessionId,
  text,
  webhookUrl,
} from './setting-parsers.js';
import { WATCH_MODES } from './watcher.js';

/** The commands, in the order `--help` lists them. Each has its module in src/commands/. */
export const COMMANDS = [
  'restore',
  'sidecar',
  'run',
  'backup',
  'status',
  'history',
  'export',
  'import',
  'import-legacy',
  'delete',
  'logout',
  'verify',
  'rekey',
  'migrate',
  'doctor',
] as const;
export type Command = (typeof COMMANDS)[number];

// Who takes a setting, by what the command does. Literal tuples (`as const`), so that the type of
// each command's configuration (config.ts: ConfigOf) knows which settings it has.
const RESTORE_POINT = ['restore', 'export'] as const;
const WRITERS = ['backup', 'import', 'import-legacy', 'sidecar', 'run'] as const;
const RESTORERS = ['restore', 'run'] as const;
/** The long-running loops: they watch, back up, and serve HTTP. */
const LOOPS = ['sidecar', 'run'] as const;
/** The commands that keep a whole directory of sessions with --sessions-dir (and doctor, which checks it). */
const MANY_SESSIONS = ['restore', 'sidecar', 'run', 'backup', 'doctor'] as const;
/** The loops, and doctor, which tries their watching. */
const WATCHERS = [...LOOPS, 'doctor'] as const;
/** Writers apply the retention schedule; history shows it. */
const RETAINERS = [...WRITERS, 'history'] as const;
/** The commands that read or write stored file contents: KEEPER_REQUIRE_ENCRYPTION needs a key for them. */
export const CONTENT_COMMANDS: readonly Command[] = [
  'restore',
  'sidecar',
  'run',
  'backup',
  'export',
  'import',
  'import-legacy',
  'verify',
  'rekey',
  'logout',
];

export interface Setting<T = unknown> {
  /** A command-line flag `--<id>` exists (false: environment only, as secrets are). */
  readonly flag: boolean;
  /** The environment twin (a flag beats it; it beats the default). */
  readonly env?: string;
  /** Further environment variables that give the same setting another way (a file, a list). */
  readonly envAlternatives?: readonly string[];
  /** A boolean is a switch (`--force`); a string takes a value (`--dir DIR`). */
  readonly kind: 'string' | 'boolean';
  /** The value's placeholder in help: DIR, DURATION, N… */
  readonly value?: string;
  /** The value when neither the flag nor the environment gives one; null: unset (`show` says what that means). */
  readonly default: T | null;
  /** Reads the flag's value or the environment variable's text (never empty) into the value. */
  readonly parse: Parser<T>;
  /** How help and the README show the default, where it is not the default written out (null, or a rule). */
  readonly show?: string;
  /** The commands that take it; undefined: every command. */
  readonly commands?: readonly Command[];
  /** What it does, one line of plain text (it is shown by `--help`). */
  readonly help: string;
  /** Where the documentation says more: its title, and a link relative to the README (a `#` anchor or a docs/ page). */
  readonly see?: readonly [title: string, link: string];
  /**
   * A flag with no environment twin on purpose: why it must be given with each invocation (the README lists
   * these). Every other flag has a twin, because the images are configured by the environment alone.
   */
  readonly oneShot?: string;
}

/**
 * A row: a flag unless `flag: false`. Its `commands` (every command when absent) and its `default` keep
 * their own types, so that a command's configuration type knows what it has and whether it can be null.
 */
function setting<T, const C extends readonly Command[] | undefined = undefined, const D extends T | null = T>(
  spec: Omit<Setting<T>, 'flag' | 'commands' | 'default'> & { flag?: boolean; commands?: C; default: D },
): Setting<T> & { readonly commands: C; readonly default: D } {
  return { flag: true, ...spec } as Setting<T> & { readonly commands: C; readonly default: D };
}

/** The log levels pino knows. */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
/** How logs are written: one JSON object a line, or human-readable (pino-pretty). */
export const LOG_FORMATS = ['json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/** Every setting, by its flag name (or, for environment-only settings, a name of the same form). */
export const SETTINGS = {
  'database-url': setting({
    kind: 'string',
    env: 'DATABASE_URL',
    value: 'URL',
    default: null,
    parse: text,
    show: 'none: the PG* variables if any is set, else embedded PostgreSQL',
    help: "PostgreSQL connection string (URI or key=value), with libpq's meanings",
    see: ['Database connection', '#database-connection'],
  }),
  'data-dir': setting({
    kind: 'string',
    env: 'KEEPER_DATA_DIR',
    value: 'DIR',
    default: './.baileys-keeper',
    parse: text,
    help: 'embedded PostgreSQL data, used only without a database URL',
  }),
  session: setting({
    kind: 'string',
    env: 'KEEPER_SESSION_ID',
    value: 'ID',
    default: 'default',
    parse: sessionId,
    help: 'session id: 1-100 chars of [A-Za-z0-9._-]',
  }),
  dir: setting({
    kind: 'string',
    env: 'KEEPER_DIR',
    value: 'DIR',
    default: './auth_info',
    parse: text,
    help: 'the Baileys auth directory',
  }),
  'sessions-dir': setting({
    kind: 'string',
    env: 'KEEPER_SESSIONS_DIR',
    value: 'DIR',
    default: null,
    parse: text,
    show: 'none',
    commands: MANY_SESSIONS,
    help: 'many sessions: every sub-directory DIR/NAME is the auth directory of session PREFIX+NAME (a mapped id for other names) (not with --dir/--session)',
    see: ['Many sessions', 'docs/many-sessions.md'],
  }),
  'session-prefix': setting({
    kind: 'string',
    env: 'KEEPER_SESSION_PREFIX',
    value: 'P',
    default: '',
    parse: text,
    show: 'empty',
    commands: MANY_SESSIONS,
    help: 'with --sessions-dir: the session id is this prefix followed by the sub-directory name',
  }),
  schema: setting({
    kind: 'string',
    env: 'KEEPER_SCHEMA',
    value: 'NAME',
    default: 'baileys_keeper',
    parse: schemaName,
    help: 'PostgreSQL schema',
  }),
  'log-level': setting({
    kind: 'string',
    env: 'KEEPER_LOG_LEVEL',
    value: 'LEVEL',
    default: 'info',
    parse: oneOf(LOG_LEVELS, { label: 'log level', use: `use one of ${LOG_LEVELS.join(', ')}` }),
    help: 'trace, debug, info, warn, error, fatal or silent',
  }),
  'log-format': setting({
    kind: 'string',
    env: 'KEEPER_LOG_FORMAT',
    value: 'FORMAT',
    default: null,
    parse: oneOf(LOG_FORMATS, { use: 'use json or pretty' }),
    show: 'pretty on a terminal, else json',
    help: 'json (one object a line) or pretty (human-readable, through pino-pretty)',
  }),
  json: setting({
    kind: 'boolean',
    default: false,
    parse: boolean,
    help: 'machine-readable output',
    oneShot: 'the output format of one query, for the script that reads it',
  }),
  help: setting({ kind: 'boolean', default: false, parse: boolean, help: 'show help', oneShot: 'asks for the help text' }),
  wait: setting({
    kind: 'string',
    env: 'KEEPER_WAIT_SECONDS',
    value: 'DURATION',
    default: 60_000,
    parse: duration({ minMs: 0, bareUnit: 's' }),
    commands: RESTORERS,
    help: 'how long to retry an unreachable database',
  }),
  'lease-wait': setting({
    kind: 'string',
    env: 'KEEPER_LEASE_WAIT_SECONDS',
    value: 'DURATION',
    default: 30_000,
    parse: duration({ minMs: 0, bareUnit: 's' }),
    commands: RESTORERS,
    help: "how long to wait for another holder's release",
  }),
  force: setting({
    kind: 'boolean',
    default: false,
    parse: boolean,
    commands: ['restore'],
    help: 'restore even if the directory already holds a valid creds.json',
    oneShot: "standing in an init container's environment, it would overwrite the login on disk at every start",
  }),
  'require-backup': setting({
    kind: 'boolean',
    env: 'KEEPER_REQUIRE_BACKUP',
    default: false,
    parse: boolean,
    commands: RESTORERS,
    help: 'exit 3 when there is nothing to restore (no backup, or no usable creds.json in it)',
  }),
  'lease-ttl': setting({
    kind: 'string',
    env: 'KEEPER_LEASE_TTL_MS',
    value: 'DURATION',
    default: 30_000,
    parse: duration({ minMs: 300, bareUnit: 'ms' }),
    commands: LOOPS,
    help: 'lease time-to-live (at least 300ms); renewed every third of it',
  }),
  debounce: setting({
    kind: 'string',
    env: 'KEEPER_DEBOUNCE_MS',
    value: 'DURATION',
    default: 1_000,
    parse: duration({ minMs: 0, bareUnit: 'ms' }),
    commands: LOOPS,
    help: 'back up after this long without changes',
  }),
  'max-delay': setting({
    kind: 'string',
    env: 'KEEPER_MAX_DELAY_MS',
    value: 'DURATION',
    default: 1_000,
    parse: duration({ minMs: 0, bareUnit: 'ms' }),
    show: '1s, or the debounce if longer',
    commands: LOOPS,
    help: 'never wait longer than this after the first unsaved change (at least the debounce)',
  }),
  interval: setting({
    kind: 'string',
    env: 'KEEPER_INTERVAL_MS',
    value: 'DURATION',
    default: 120_000,
    parse: duration({ minMs: 100, bareUnit: 'ms' }),
    commands: LOOPS,
    help: 'audit this often (at least 100ms): compare the directory with what is stored (metadata first) and back up what differs',
  }),
  listen: setting({
    kind: 'string',
    env: 'KEEPER_LISTEN',
    value: 'HOST:PORT',
    default: { host: '0.0.0.0', port: 9464 },
    parse: listen,
    commands: LOOPS,
    help: 'address for /healthz, /readyz, /metrics and the API ([::]:9464 for IPv6, port 0 for any)',
  }),
  'shutdown-quiet': setting({
    kind: 'string',
    env: 'KEEPER_SHUTDOWN_QUIET_MS',
    value: 'DURATION',
    default: 2_000,
    parse: duration({ minMs: 0, bareUnit: 'ms' }),
    commands: LOOPS,
    help: "wait for this long without changes before the final backup (sidecar: on SIGTERM; run: once the bot's process group has exited)",
  }),
  'shutdown-timeout': setting({
    kind: 'string',
    env: 'KEEPER_SHUTDOWN_TIMEOUT_MS',
    value: 'DURATION',
    default: 20_000,
    parse: duration({ minMs: 0, bareUnit: 'ms' }),
    commands: LOOPS,
    help: 'bound on the final backup and its retries',
  }),
  watch: setting({
    kind: 'string',
    env: 'KEEPER_WATCH',
    value: 'MODE',
    default: 'auto',
    parse: oneOf(WATCH_MODES),
    commands: WATCHERS,
    help: 'native (inotify, through chokidar), poll, or auto: native, polling when native watching cannot start or fails',
  }),
  'poll-interval': setting({
    kind: 'string',
    env: 'KEEPER_POLL_INTERVAL_MS',
    value: 'DURATION',
    default: 1_000,
    parse: duration({ minMs: 10, bareUnit: 'ms' }),
    commands: WATCHERS,
    help: 'polling period when polling (at least 10ms)',
  }),
  'stop-timeout': setting({
    kind: 'string',
    env: 'KEEPER_STOP_TIMEOUT_MS',
    value: 'DURATION',
    default: 10_000,
    parse: duration({ minMs: 0, bareUnit: 'ms' }),
    commands: ['run'],
    help: "how long the bot's process group may take to exit after the stop signal; then it is SIGKILLed and the final backup runs",
  }),
  generation: setting({
    kind: 'string',
    value: 'N',
    default: null,
    parse: integer({ min: 1 }),
    show: 'newest',
    commands: RESTORE_POINT,
    help: 'restore or export this retained generation',
    oneShot:
      'standing, it would roll the bot back to the same point at every start (and the sidecar refuses to store a directory older than the head)',
  }),
  at: setting({
    kind: 'string',
    value: 'TIME',
    default: null,
    parse: isoTime,
    show: 'newest',
    commands: RESTORE_POINT,
    help: 'restore or export the newest generation at or before this ISO-8601 time',
    oneShot: 'standing, it would roll the bot back to the same time at every start',
  }),
  'dry-run': setting({
    kind: 'boolean',
    default: false,
    parse: boolean,
    commands: ['restore'],
    help: 'list what would be written, write nothing',
    oneShot: 'standing, every restore would write nothing and the bot would start unpaired',
  }),
  keep: setting({
    kind: 'string',
    env: 'KEEPER_KEEP_GENERATIONS',
    value: 'N',
    default: 100,
    parse: integer({ min: 1 }),
    commands: RETAINERS,
    help: 'the newest N generations are always kept, whatever their age',
  }),
  retention: setting({
    kind: 'string',
    env: 'KEEPER_RETENTION',
    value: 'SCHEDULE',
    default: DEFAULT_RETENTION,
    parse: retentionSchedule,
    commands: RETAINERS,
    help: 'thinning schedule: up to each age, one generation per interval; "none": only --keep',
    see: ['History and retention', '#history-and-retention'],
  }),
  'allow-replace': setting({
    kind: 'boolean',
    env: 'KEEPER_ALLOW_REPLACE',
    default: false,
    parse: boolean,
    commands: WRITERS,
    help: "store the directory over a paired login although it holds another account's login, or an unpaired one or none",
    see: ['Session lifecycle', 'docs/lifecycle.md'],
  }),
  'allow-rollback': setting({
    kind: 'boolean',
    env: 'KEEPER_ALLOW_ROLLBACK',
    default: false,
    parse: boolean,
    commands: [...WRITERS, 'restore'],
    help: 'store a directory older than the stored head, and let restore keep one (used pre-keys come back)',
    see: ['Never backwards', 'docs/reliability.md#never-backwards'],
  }),
  output: setting({
    kind: 'string',
    value: 'FILE',
    default: null,
    parse: text,
    show: 'stdout',
    commands: ['export'],
    help: 'write the tar atomically to this file instead of stdout',
    oneShot: 'the file of one transfer',
  }),
  input: setting({
    kind: 'string',
    value: 'FILE',
    default: null,
    parse: text,
    show: 'stdin',
    commands: ['import'],
    help: 'read the tar from this file instead of stdin',
    oneShot: 'the file of one transfer',
  }),
  yes: setting({
    kind: 'boolean',
    default: false,
    parse: boolean,
    commands: ['delete', 'logout'],
    help: 'confirm deletion or logout',
    oneShot: 'confirms one deletion or logout; a standing yes would confirm every one',
  }),
  table: setting({
    kind: 'string',
    value: 'NAME',
    default: 'whatsapp_sessions',
    parse: text,
    oneShot: 'a one-time migration, run by hand',
    commands: ['import-legacy'],
    help: "the Flask session API's table (optionally schema.table)",
  }),
  all: setting({
    kind: 'boolean',
    default: false,
    parse: boolean,
    oneShot: 'a one-time migration, run by hand',
    commands: ['import-legacy'],
    help: 'import every row instead of --session',
  }),
  'api-token': setting({
    flag: false,
    kind: 'string',
    env: 'KEEPER_API_TOKEN',
    envAlternatives: ['KEEPER_API_TOKEN_FILE'],
    default: null,
    parse: bearerToken,
    show: 'none (API off)',
    commands: LOOPS,
    help: 'bearer token of the session API; the _FILE twin names a file whose first line is the token',
    see: ['HTTP API', 'docs/http-api.md'],
  }),
  'webhook-url': setting({
    kind: 'string',
    env: 'KEEPER_WEBHOOK_URL',
    value: 'URL',
    default: null,
    parse: webhookUrl,
    show: 'none',
    commands: LOOPS,
    help: 'POST each session lifecycle event here as JSON (paired, logged_out, repaired, identity_refused, unprotected, protected)',
    see: ['Webhooks and heartbeat', 'docs/monitoring.md#webhooks-and-heartbeat'],
  }),
  'webhook-secret': setting({
    flag: false,
    kind: 'string',
    env: 'KEEPER_WEBHOOK_SECRET',
    envAlternatives: ['KEEPER_WEBHOOK_SECRET_FILE'],
    default: null,
    parse: text,
    show: 'none (unsigned)',
    commands: LOOPS,
    help: 'signs each webhook body: X-Keeper-Signature: sha256=<HMAC-SHA256>; the _FILE twin names a file whose first line is the secret',
    see: ['Webhooks and heartbeat', 'docs/monitoring.md#webhooks-and-heartbeat'],
  }),
  'heartbeat-url': setting({
    kind: 'string',
    env: 'KEEPER_HEARTBEAT_URL',
    value: 'URL',
    default: null,
    parse: webhookUrl,
    show: 'none',
    commands: LOOPS,
    help: 'GET this URL every --heartbeat-interval while every session is protected (healthchecks.io, Uptime Kuma push)',
    see: ['Webhooks and heartbeat', 'docs/monitoring.md#webhooks-and-heartbeat'],
  }),
  'heartbeat-interval': setting({
    kind: 'string',
    env: 'KEEPER_HEARTBEAT_INTERVAL',
    value: 'DURATION',
    default: 300_000,
    parse: duration({ minMs: 1_000 }),
    commands: LOOPS,
    help: 'how often the heartbeat is sent, with its unit: 30s, 5m, 1h (at least 1s; no bare number)',
    see: ['Webhooks and heartbeat', 'docs/monitoring.md#webhooks-and-heartbeat'],
  }),
  'max-body-bytes': setting({
    flag: false,
    kind: 'string',
    env: 'KEEPER_MAX_BODY_BYTES',
    default: 16 * 1024 * 1024,
    parse: integer({ min: 1024 }),
    commands: LOOPS,
    help: 'largest request body the API reads, bytes (min 1024)',
  }),
  'encryption-key': setting({
    flag: false,
    kind: 'string',
    env: 'KEEPER_ENCRYPTION_KEY',
    envAlternatives: ['KEEPER_ENCRYPTION_KEY_FILE', 'KEEPER_ENCRYPTION_KEYS'],
    default: null,
    parse: encryptionKey,
    show: 'none (plaintext)',
    help: 'encryption at rest: a base64 key, a file holding one, or id:base64,… (the first one writes)',
    see: ['Encryption at rest', 'docs/security.md#encryption-at-rest'],
  }),
  'require-encryption': setting({
    flag: false,
    kind: 'boolean',
    env: 'KEEPER_REQUIRE_ENCRYPTION',
    default: false,
    parse: boolean,
    help: 'refuse every plaintext stored row; needs a key where contents are read or written (exit 64 without)',
    see: ['Requiring encryption', 'docs/security.md#requiring-encryption'],
  }),
} satisfies Record<string, Setting>;

/**
 * Variables of the keeper's namespace that are not settings, with why they may be in its environment: they are
 * not warned about as unknown (src/unknown-variables.ts).
 */
export const NOT_SETTINGS: ReadonlyArray<readonly [name: string, why: string]> = [
  ...['KEEPER_VERSION', 'KEEPER_SOURCE', 'KEEPER_REF', 'KEEPER_SOURCE_URL'].map(
    (name) =>
      [
        name,
        "deploy/railway/Dockerfile's build argument: Railway gives a service's variables to its build and to the running container alike",
      ] as const,
  ),
];

export type SettingName = keyof typeof SETTINGS;
/** What setting `N` holds: what its parser returns, or null where it has no default value. */
export type ValueOf<N extends SettingName> = ReturnType<(typeof SETTINGS)[N]['parse']> | Extract<(typeof SETTINGS)[N]['default'], null>;

/** The settings `command` takes, in table order. */
export function settingsFor(command: Command): Array<[SettingName, Setting]> {
  return (Object.entries(SETTINGS) as Array<[SettingName, Setting]>).filter(
    ([, spec]) => !spec.commands || spec.commands.includes(command),
  );
}

/**
 * The default as help and the README show it: the `show` text, else off/on for a switch (given or not),
 * else the default written out as its parser reads it.
 */
export function shownDefault(setting: Setting): string {
  if (setting.show !== undefined) return setting.show;
  if (setting.default === null) return 'none';
  if (setting.kind === 'boolean') return setting.default ? 'on' : 'off';
  return setting.parse.format ? setting.parse.format(setting.default) : String(setting.default);
}

/** `--name / ENV` as messages name a setting: how it is given (the flag, the variable, or both). */
export function describeSetting(name: string, setting: Setting): string {
  return [...(setting.flag ? [`--${name}`] : []), ...(setting.env ? [setting.env] : [])].join(' / ');
}

/** The variables a setting is read from: its twin, then the alternatives. */
export function envNames(setting: Setting): string[] {
  return [...(setting.env ? [setting.env] : []), ...(setting.envAlternatives ?? [])];
}

/** Every environment variable the keeper reads itself (not the PG* variables, which are libpq's). */
export function environmentVariables(): string[] {
  return Object.values(SETTINGS as Record<string, Setting>).flatMap((spec) => [
    ...(spec.env ? [spec.env] : []),
    ...(spec.envAlternatives ?? []),
  ]);
}
