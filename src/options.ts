// Every setting the keeper reads — each flag with its environment twin, and the settings that are
// environment-only (secrets) — in one table. The parser (config.ts), every `--help` and the README's
// configuration table are made from it; nothing else names a flag or a KEEPER_* variable.

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
  'verify',
  'rekey',
  'migrate',
  'doctor',
] as const;
export type Command = (typeof COMMANDS)[number];

// Who takes a setting, by what the command does.
const RESTORE_POINT: readonly Command[] = ['restore', 'export'];
const WRITERS: readonly Command[] = ['backup', 'import', 'import-legacy', 'sidecar', 'run'];
const RESTORERS: readonly Command[] = ['restore', 'run'];
/** The long-running loops: they watch, back up, and serve HTTP. */
export const LOOPS: readonly Command[] = ['sidecar', 'run'];
/** The commands that keep a whole directory of sessions with --sessions-dir (and doctor, which checks it). */
export const MANY_SESSIONS: readonly Command[] = ['restore', 'sidecar', 'run', 'backup', 'doctor'];
/** The loops, and doctor, which tries their watching. */
const WATCHERS: readonly Command[] = [...LOOPS, 'doctor'];
/** Writers apply the retention schedule; history shows it. */
export const RETAINERS: readonly Command[] = [...WRITERS, 'history'];
/** The commands that read or write stored file contents (the encryption settings apply to them). */
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
];

export interface Setting {
  /** A command-line flag `--<id>` exists (false: environment only, as secrets are). */
  readonly flag: boolean;
  /** The environment twin (a flag beats it; it beats the default). */
  readonly env?: string;
  /** Further environment variables that give the same setting another way (a file, a list). */
  readonly envAlternatives?: readonly string[];
  /** A boolean is a switch (`--force`); a string takes a value (`--dir DIR`). */
  readonly kind: 'string' | 'boolean';
  /** The value's placeholder in help: DIR, MS, N… */
  readonly value?: string;
  /** The default, as a person reads it. */
  readonly default: string;
  /** The commands that take it; undefined: every command. */
  readonly commands?: readonly Command[];
  /** What it does, one line of plain text (it is shown by `--help`). */
  readonly help: string;
  /** Where the documentation says more: its title, and a link relative to the README (a `#` anchor or a docs/ page). */
  readonly see?: readonly [title: string, link: string];
}

const setting = (spec: Omit<Setting, 'flag'> & { flag?: boolean }): Setting => ({ flag: true, ...spec });

/** Every setting, by its flag name (or, for environment-only settings, a name of the same form). */
export const SETTINGS = {
  'database-url': setting({
    kind: 'string',
    env: 'DATABASE_URL',
    value: 'URL',
    default: 'none: the PG* variables if any is set, else embedded PostgreSQL',
    help: "PostgreSQL connection string (URI or key=value), with libpq's meanings",
    see: ['Database connection', '#database-connection'],
  }),
  'data-dir': setting({
    kind: 'string',
    env: 'KEEPER_DATA_DIR',
    value: 'DIR',
    default: './.baileys-keeper',
    help: 'embedded PostgreSQL data, used only without a database URL',
  }),
  session: setting({
    kind: 'string',
    env: 'KEEPER_SESSION_ID',
    value: 'ID',
    default: 'default',
    help: 'session id: 1-100 chars of [A-Za-z0-9._-]',
  }),
  dir: setting({ kind: 'string', env: 'KEEPER_DIR', value: 'DIR', default: './auth_info', help: 'the Baileys auth directory' }),
  'sessions-dir': setting({
    kind: 'string',
    env: 'KEEPER_SESSIONS_DIR',
    value: 'DIR',
    default: 'none',
    commands: MANY_SESSIONS,
    help: 'many sessions: every sub-directory DIR/NAME is the auth directory of session PREFIX+NAME (a mapped id for other names) (not with --dir/--session)',
    see: ['Many sessions', 'docs/many-sessions.md'],
  }),
  'session-prefix': setting({
    kind: 'string',
    env: 'KEEPER_SESSION_PREFIX',
    value: 'P',
    default: 'empty',
    commands: MANY_SESSIONS,
    help: 'with --sessions-dir: the session id is this prefix followed by the sub-directory name',
  }),
  schema: setting({ kind: 'string', env: 'KEEPER_SCHEMA', value: 'NAME', default: 'baileys_keeper', help: 'PostgreSQL schema' }),
  'log-level': setting({
    kind: 'string',
    env: 'KEEPER_LOG_LEVEL',
    value: 'LEVEL',
    default: 'info',
    help: 'trace, debug, info, warn, error, fatal or silent',
  }),
  'log-format': setting({
    kind: 'string',
    env: 'KEEPER_LOG_FORMAT',
    value: 'FORMAT',
    default: 'pretty on a terminal, else json',
    help: 'json (one object a line) or pretty (human-readable, through pino-pretty)',
  }),
  json: setting({ kind: 'boolean', default: 'off', help: 'machine-readable output' }),
  help: setting({ kind: 'boolean', default: 'off', help: 'show help' }),
  wait: setting({
    kind: 'string',
    env: 'KEEPER_WAIT_SECONDS',
    value: 'S',
    default: '60',
    commands: RESTORERS,
    help: 'seconds to retry an unreachable database',
  }),
  'lease-wait': setting({
    kind: 'string',
    env: 'KEEPER_LEASE_WAIT_SECONDS',
    value: 'S',
    default: '30',
    commands: RESTORERS,
    help: "seconds to wait for another holder's release",
  }),
  force: setting({
    kind: 'boolean',
    default: 'off',
    commands: ['restore'],
    help: 'restore even if the directory already holds a valid creds.json',
  }),
  'require-backup': setting({
    kind: 'boolean',
    default: 'off',
    commands: RESTORERS,
    help: 'exit 3 when there is nothing to restore (no backup, or no usable creds.json in it)',
  }),
  'lease-ttl': setting({
    kind: 'string',
    env: 'KEEPER_LEASE_TTL_MS',
    value: 'MS',
    default: '30000',
    commands: LOOPS,
    help: 'lease time-to-live, ms (min 300); renewed every third of it',
  }),
  debounce: setting({
    kind: 'string',
    env: 'KEEPER_DEBOUNCE_MS',
    value: 'MS',
    default: '1000',
    commands: LOOPS,
    help: 'back up after this long without changes, ms',
  }),
  'max-delay': setting({
    kind: 'string',
    env: 'KEEPER_MAX_DELAY_MS',
    value: 'MS',
    default: '1000, or the debounce if longer',
    commands: LOOPS,
    help: 'never wait longer than this after the first unsaved change, ms (at least the debounce)',
  }),
  interval: setting({
    kind: 'string',
    env: 'KEEPER_INTERVAL_MS',
    value: 'MS',
    default: '120000',
    commands: LOOPS,
    help: 'audit every this many ms: compare the directory with what is stored (metadata first) and back up what differs',
  }),
  listen: setting({
    kind: 'string',
    env: 'KEEPER_LISTEN',
    value: 'HOST:PORT',
    default: '0.0.0.0:9464',
    commands: LOOPS,
    help: 'address for /healthz, /readyz, /metrics and the API ([::]:9464 for IPv6, port 0 for any)',
  }),
  'shutdown-quiet': setting({
    kind: 'string',
    env: 'KEEPER_SHUTDOWN_QUIET_MS',
    value: 'MS',
    default: '2000',
    commands: LOOPS,
    help: "wait for this long without changes before the final backup (sidecar: on SIGTERM; run: once the bot's process group has exited), ms",
  }),
  'shutdown-timeout': setting({
    kind: 'string',
    env: 'KEEPER_SHUTDOWN_TIMEOUT_MS',
    value: 'MS',
    default: '20000',
    commands: LOOPS,
    help: 'bound on the final backup and its retries, ms',
  }),
  watch: setting({
    kind: 'string',
    env: 'KEEPER_WATCH',
    value: 'MODE',
    default: 'auto',
    commands: WATCHERS,
    help: 'native (inotify, through chokidar), poll, or auto: native, polling when native watching cannot start or fails',
  }),
  'poll-interval': setting({
    kind: 'string',
    env: 'KEEPER_POLL_INTERVAL_MS',
    value: 'MS',
    default: '1000',
    commands: WATCHERS,
    help: 'polling period when polling, ms (min 10)',
  }),
  'stop-timeout': setting({
    kind: 'string',
    env: 'KEEPER_STOP_TIMEOUT_MS',
    value: 'MS',
    default: '10000',
    commands: ['run'],
    help: "how long the bot's process group may take to exit after the stop signal, ms; then it is SIGKILLed and the final backup runs",
  }),
  generation: setting({
    kind: 'string',
    value: 'N',
    default: 'newest',
    commands: RESTORE_POINT,
    help: 'restore or export this retained generation',
  }),
  at: setting({
    kind: 'string',
    value: 'TIME',
    default: 'newest',
    commands: RESTORE_POINT,
    help: 'restore or export the newest generation at or before this ISO-8601 time',
  }),
  'dry-run': setting({ kind: 'boolean', default: 'off', commands: ['restore'], help: 'list what would be written, write nothing' }),
  keep: setting({
    kind: 'string',
    env: 'KEEPER_KEEP_GENERATIONS',
    value: 'N',
    default: '100',
    commands: RETAINERS,
    help: 'the newest N generations are always kept, whatever their age',
  }),
  retention: setting({
    kind: 'string',
    env: 'KEEPER_RETENTION',
    value: 'SCHEDULE',
    default: '1h:all,24h:10m,7d:1h,30d:1d',
    commands: RETAINERS,
    help: 'thinning schedule: up to each age, one generation per interval; "none": only --keep',
    see: ['History and retention', '#history-and-retention'],
  }),
  'allow-replace': setting({
    kind: 'boolean',
    env: 'KEEPER_ALLOW_REPLACE',
    default: 'off',
    commands: WRITERS,
    help: 'allow replacing a registered session with another account',
  }),
  'allow-rollback': setting({
    kind: 'boolean',
    env: 'KEEPER_ALLOW_ROLLBACK',
    default: 'off',
    commands: [...WRITERS, 'restore'],
    help: 'store a directory older than the stored head, and let restore keep one (used pre-keys come back)',
    see: ['Never backwards', 'docs/reliability.md#never-backwards'],
  }),
  output: setting({
    kind: 'string',
    value: 'FILE',
    default: 'stdout',
    commands: ['export'],
    help: 'write the tar atomically to this file instead of stdout',
  }),
  input: setting({
    kind: 'string',
    value: 'FILE',
    default: 'stdin',
    commands: ['import'],
    help: 'read the tar from this file instead of stdin',
  }),
  yes: setting({ kind: 'boolean', default: 'off', commands: ['delete'], help: 'confirm deletion' }),
  table: setting({
    kind: 'string',
    value: 'NAME',
    default: 'whatsapp_sessions',
    commands: ['import-legacy'],
    help: "the old system's table (optionally schema.table)",
  }),
  all: setting({ kind: 'boolean', default: 'off', commands: ['import-legacy'], help: 'import every row instead of --session' }),
  'api-token': setting({
    flag: false,
    kind: 'string',
    env: 'KEEPER_API_TOKEN',
    envAlternatives: ['KEEPER_API_TOKEN_FILE'],
    default: 'none (API off)',
    commands: LOOPS,
    help: 'bearer token of the session API; the _FILE twin names a file whose first line is the token',
    see: ['HTTP API', 'docs/http-api.md'],
  }),
  'max-body-bytes': setting({
    flag: false,
    kind: 'string',
    env: 'KEEPER_MAX_BODY_BYTES',
    default: '16777216',
    commands: LOOPS,
    help: 'largest request body the API reads, bytes (min 1024)',
  }),
  'encryption-key': setting({
    flag: false,
    kind: 'string',
    env: 'KEEPER_ENCRYPTION_KEY',
    envAlternatives: ['KEEPER_ENCRYPTION_KEY_FILE', 'KEEPER_ENCRYPTION_KEYS'],
    default: 'none (plaintext)',
    help: 'encryption at rest: a base64 key, a file holding one, or id:base64,… (the first one writes)',
    see: ['Encryption at rest', 'docs/security.md#encryption-at-rest'],
  }),
  'require-encryption': setting({
    flag: false,
    kind: 'boolean',
    env: 'KEEPER_REQUIRE_ENCRYPTION',
    default: 'off',
    commands: CONTENT_COMMANDS,
    help: 'refuse every plaintext stored row; needs a key (exit 64 without)',
    see: ['Requiring encryption', 'docs/security.md#requiring-encryption'],
  }),
} satisfies Record<string, Setting>;

export type SettingName = keyof typeof SETTINGS;

/** The settings `command` takes, in table order. */
export function settingsFor(command: Command): Array<[SettingName, Setting]> {
  return (Object.entries(SETTINGS) as Array<[SettingName, Setting]>).filter(
    ([, spec]) => !spec.commands || spec.commands.includes(command),
  );
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
