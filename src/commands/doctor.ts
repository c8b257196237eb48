// `doctor`: checks what the keeper needs, one line each, and exits non-zero on any failure: the settings
// (warnings only: an unknown variable, a session id nobody chose), the auth directory (a login below it
// instead of in it, files the keeper may not read), native watching (inotify limits), the database
// (reachable, TLS as configured, privileges, schema version), the encryption key against the stored rows,
// the lease holder, and clock skew.
// It changes nothing: no migration, no lease, no write outside a probe file it removes at once.
import { access, constants, lstat, mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { systemClock } from '../clock.js';
import { CREDS_FILE } from '../creds.js';
import { describeError } from '../errors.js';
import { forEachLimited } from '../limit.js';
import { loginElsewhereAdvice, loginsBelowInstead } from '../login-search.js';
import { listCandidates } from '../snapshot.js';
import { probeNativeWatching } from '../watch/probe.js';
import { openDatabase, type Database } from '../db/pool.js';
import { connectionTls, mayCreateSchema, schemaRights, TABLE_PRIVILEGES, tablePrivileges } from '../db/queries/probes.js';
import { describeTarget } from '../db/settings.js';
import { DatabaseUnreachableError, ExitCode, NothingToRestoreError } from '../errors.js';
import { guessedSessionProblem, startWarnings } from '../start-warnings.js';
import { schemaStanding } from '../db/migrate.js';
import { SessionStore } from '../store/index.js';
import type { CommandSpec, Context } from './command.js';
import { databaseTarget, type DatabaseTarget } from './database.js';
import { print, printJson } from './output.js';

/** One check's verdict: `fail` makes the exit code non-zero, `warn` does not. */
export interface Finding {
  check: string;
  status: 'ok' | 'warn' | 'fail';
  detail: string;
}

/** Clock skew against the database beyond this fails, ms: leases and history are dated by the database. */
export const MAX_SKEW_MS = 5_000;
/** How long native watching may take to report a probe file, ms. */
const WATCH_PROBE_MS = 3_000;
/** The tables whose privileges the keeper needs, and which. */
const TABLES = ['sessions', 'generations', 'files'] as const;

const ok = (check: string, detail: string): Finding => ({ check, status: 'ok', detail });
const warn = (check: string, detail: string): Finding => ({ check, status: 'warn', detail });
const fail = (check: string, detail: string): Finding => ({ check, status: 'fail', detail });

/** The auth directory exists (or its parent, for an init container that has not restored yet) and this user may write it. */
async function checkDirectory(dir: string): Promise<Finding> {
  const info = await stat(dir).catch((error: NodeJS.ErrnoException) => error);
  if (info instanceof Error) {
    if (info.code !== 'ENOENT') return fail('auth directory', `${dir}: ${describeError(info)}`);
    const parent = path.dirname(dir);
    const writable = await access(parent, constants.W_OK).then(
      () => true,
      () => false,
    );
    return writable
      ? warn('auth directory', `${dir} does not exist yet; restore or the bot will create it (${parent} is writable)`)
      : fail(
          'auth directory',
          `${dir} does not exist and ${parent} is not writable by uid ${process.getuid?.()}: mount a writable volume there`,
        );
  }
  if (!info.isDirectory()) return fail('auth directory', `${dir} is not a directory`);
  // A dotfile: never backed up, and removed at once.
  const probe = path.join(dir, `.doctor-${process.pid}`);
  try {
    await writeFile(probe, '');
    await rm(probe, { force: true });
  } catch (error) {
    return fail(
      'auth directory',
      `${dir} is not writable by uid ${process.getuid?.()} (${describeError(error)}): give the keeper's user the volume`,
    );
  }
  return ok('auth directory', `${dir} exists and is writable by uid ${process.getuid?.()}`);
}

/** Unreadable entries named at most in the doctor's line; the rest are counted. */
const UNREADABLE_LISTED = 10;
/** access() calls in flight while checking a directory's files. */
const ACCESS_CONCURRENCY = 32;

interface Unreadable {
  /** The path as doctor shows it (under --dir / --sessions-dir as given). */
  path: string;
  uid: number;
  gid: number;
  /** Permission bits, e.g. 0o600. */
  mode: number;
}

/** Whether this process may read `file` (a directory: list and enter it, R and X), as access(2) says. */
async function readable(file: string, directory: boolean): Promise<boolean> {
  return access(file, directory ? constants.R_OK | constants.X_OK : constants.R_OK).then(
    () => true,
    () => false,
  );
}

/** `file`'s owner and mode, for an entry this process may not read. */
async function unreadableEntry(file: string): Promise<Unreadable | null> {
  const info = await lstat(file).catch(() => null);
  return info === null ? null : { path: file, uid: info.uid, gid: info.gid, mode: info.mode & 0o7777 };
}

/**
 * The auth directory (with --sessions-dir: the sessions directory and each session directory in it) and
 * the files in it the backup would read, that this process may not read: each with owner and mode.
 * Directories need R and X. A directory it cannot list hides its files: it is reported itself.
 */
async function unreadableEntries(dir: string, sessionsDir: boolean): Promise<Unreadable[]> {
  const found: Unreadable[] = [];
  const note = async (file: string) => {
    const entry = await unreadableEntry(file);
    if (entry) found.push(entry);
  };
  const checkAuthDir = async (authDir: string) => {
    if (!(await readable(authDir, true))) return note(authDir);
    const names = await listCandidates(authDir).catch(() => null);
    if (names === null) return note(authDir);
    const missing: string[] = [];
    await forEachLimited(names, ACCESS_CONCURRENCY, async (name) => {
      if (!(await readable(path.join(authDir, name), false))) missing.push(path.join(authDir, name));
    });
    for (const file of missing.sort()) await note(file);
  };
  if (!sessionsDir) {
    await checkAuthDir(dir);
    return found;
  }
  if (!(await readable(dir, true))) {
    await note(dir);
    return found;
  }
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  // Every session directory, whatever its name: a login the keeper cannot read is lost whatever it is called.
  for (const entry of entries
    .filter((entry) => entry.isDirectory() && !entry.name.startsWith('.'))
    .sort((a, b) => (a.name < b.name ? -1 : 1)))
    await checkAuthDir(path.join(dir, entry.name));
  return found;
}

/**
 * Fails when the keeper may not read a file it must back up (SPEC "Protection": an unreadable file is a
 * failure, never a torn write): names them with owner and mode, and who must be able to read them.
 */
async function checkReadable(dir: string, sessionsDir: boolean): Promise<Finding | null> {
  if (
    !(await stat(dir).then(
      (info) => info.isDirectory(),
      () => false,
    ))
  )
    return null; // said by the directory check
  const unreadable = await unreadableEntries(dir, sessionsDir);
  const uid = process.getuid?.();
  const gids = [...new Set([process.getgid?.(), ...(process.getgroups?.() ?? [])])].filter((gid) => gid !== undefined);
  if (unreadable.length === 0) return ok('file access', `uid ${uid} can read every file to back up in ${dir}`);
  const listed = unreadable
    .slice(0, UNREADABLE_LISTED)
    .map((entry) => `${entry.path} (owner ${entry.uid}:${entry.gid}, mode ${entry.mode.toString(8).padStart(4, '0')})`);
  const more = unreadable.length > UNREADABLE_LISTED ? ` and ${unreadable.length - UNREADABLE_LISTED} more` : '';
  const owners = [...new Set(unreadable.map((entry) => entry.uid))].join(', ');
  return fail(
    'file access',
    `uid ${uid} (groups ${gids.join(', ')}) cannot read ${unreadable.length} of what it must back up: ${listed.join(', ')}${more}. ` +
      `Run the keeper as the bot's user (uid ${owners}); or give both one group that may read (g+r on files, g+rx on directories: ` +
      'Kubernetes securityContext.fsGroup, or umask 027 in the bot); see docs/kubernetes.md, "File permissions"',
  );
}

/** Fails when --dir holds no creds.json but a directory below it holds a login (SPEC "Protection"). */
async function checkLogin(dir: string): Promise<Finding> {
  const elsewhere = await loginsBelowInstead(dir);
  if (elsewhere.length > 0) return fail('login', loginElsewhereAdvice(dir, elsewhere));
  const own = await stat(path.join(dir, CREDS_FILE)).then(
    () => true,
    () => false,
  );
  return ok(
    'login',
    own ? `${dir} holds ${CREDS_FILE}` : `no ${CREDS_FILE} in ${dir} or below it yet: restore writes it, or the bot pairs by QR`,
  );
}

async function readLimit(name: string): Promise<number | null> {
  const text = await readFile(`/proc/sys/fs/inotify/${name}`, 'utf8').catch(() => null);
  return text === null ? null : Number(text.trim());
}

/** Native watching works here: it reports a probe file within WATCH_PROBE_MS (watch/probe.ts); the inotify limits, said. */
async function checkWatching(dir: string, mode: string): Promise<Finding> {
  const [instances, watches] = await Promise.all([readLimit('max_user_instances'), readLimit('max_user_watches')]);
  const limits = instances === null ? 'no inotify on this system' : `max_user_instances ${instances}, max_user_watches ${watches}`;
  if (mode === 'poll') return ok('watching', `--watch poll: polling as configured (${limits})`);
  const where = await stat(dir).then(
    (info) => (info.isDirectory() ? dir : null),
    () => null,
  );
  // Without the directory yet, a probe directory beside it stands in (same filesystem, same limits).
  const probeDir = where ?? path.join(path.dirname(dir), `.doctor-watch-${process.pid}`);
  if (where === null) {
    const made = await mkdir(probeDir).catch((error: Error) => error);
    if (made instanceof Error) return warn('watching', `cannot try native watching without ${dir} (${describeError(made)}); ${limits}`);
  }
  try {
    const seen = await probeNativeWatching(probeDir, `.doctor-watch-probe-${process.pid}`, WATCH_PROBE_MS);
    if (seen === true) return ok('watching', `native watching works (${limits})`);
    const why = seen === false ? `no event within ${WATCH_PROBE_MS} ms` : describeError(seen);
    const advice = 'raise fs.inotify.max_user_instances / max_user_watches on the node, or set --watch poll';
    return mode === 'native'
      ? fail('watching', `native watching does not work: ${why} (${limits}); ${advice}`)
      : warn('watching', `native watching does not work: ${why} (${limits}); --watch auto will poll instead; ${advice}`);
  } finally {
    if (where === null) await rm(probeDir, { recursive: true, force: true });
  }
}

/** TLS as negotiated for this connection, from pg_stat_ssl. */
async function checkTls(db: Database, target: string): Promise<Finding> {
  const negotiated = await connectionTls(db);
  const tls = negotiated.ssl ? `TLS ${negotiated.version ?? 'on'}` : 'no TLS';
  return ok('database', `reachable at ${target}, ${tls}`);
}

/** The schema exists at the version this keeper writes, and the role may use it (or create it). */
async function checkSchema(db: Database): Promise<{ findings: Finding[]; ready: boolean }> {
  const { exists, version, latest } = await schemaStanding(db);
  if (!exists) {
    return {
      ready: false,
      findings: [
        (await mayCreateSchema(db))
          ? warn(
              'schema',
              `schema ${db.schemaName} does not exist yet; the first command that writes (restore, sidecar, run, backup, import, migrate) creates it (version ${latest})`,
            )
          : fail(
              'schema',
              `schema ${db.schemaName} does not exist and this role may not create it: see docs/security.md, "Least-privilege database role"`,
            ),
      ],
    };
  }
  const findings: Finding[] = [];
  const rights = await schemaRights(db);
  if (!rights.usage) return { ready: false, findings: [fail('privileges', `no USAGE on schema ${db.schemaName}`)] };
  if (version > latest) findings.push(fail('schema', `version ${version} is newer than this keeper knows (${latest}): upgrade the keeper`));
  else if (version < latest) {
    findings.push(
      rights.create
        ? warn('schema', `version ${version}; the next command that writes migrates it to ${latest} (or run baileys-keeper migrate)`)
        : fail(
            'schema',
            `version ${version}, and this role may not migrate it to ${latest}: run baileys-keeper migrate as the schema's owner`,
          ),
    );
  } else findings.push(ok('schema', `version ${version}, current`));
  const missing: string[] = [];
  for (const table of TABLES) {
    if ((await tablePrivileges(db, table)) === false) missing.push(table);
  }
  findings.push(
    missing.length === 0
      ? ok('privileges', `${TABLE_PRIVILEGES} on the keeper's tables`)
      : fail('privileges', `missing ${TABLE_PRIVILEGES} on ${missing.join(', ')}: see docs/security.md, "Least-privilege database role"`),
  );
  return { findings, ready: version === latest };
}

/** Sessions of a sessions directory whose stored rows doctor verifies: a sample, so that a fleet's check stays quick. */
export const DOCTOR_SESSION_SAMPLE = 20;

/**
 * Every stored version of the session (with --sessions-dir: of the first DOCTOR_SESSION_SAMPLE stored
 * sessions with the prefix) reads under the configured keys; who holds the lease(s); clock skew.
 */
async function checkSession(ctx: Context<'doctor'>, store: SessionStore): Promise<Finding[]> {
  const { config } = ctx;
  const findings: Finding[] = [];
  const many = config.sessionsDir !== null;
  const stored = many ? await store.status(null, config.sessionPrefix) : [];
  const sample = many ? stored.slice(0, DOCTOR_SESSION_SAMPLE).map((session) => session.sessionId) : [config.sessionId];
  let checked = 0;
  const failures: Awaited<ReturnType<SessionStore['verify']>>['failures'] = [];
  for (const sessionId of sample) {
    // A bot's first start on a database that has the schema: its session does not exist until the first
    // backup. That is "no backup yet", not a failure.
    const verified = await store.verify(sessionId).catch((error: unknown) => {
      if (error instanceof NothingToRestoreError) return { checked: 0, failures: [] };
      throw error;
    });
    checked += verified.checked;
    failures.push(...verified.failures);
  }
  const what = many
    ? `${sample.length === stored.length ? 'all' : `${sample.length} of`} ${stored.length} stored sessions with the prefix`
    : `session ${config.sessionId}`;
  if (checked === 0) findings.push(ok('stored rows', `${what}: no backup yet`));
  else if (failures.length === 0) {
    const keys = config.encryption ? `, readable with key id ${config.encryption.writer.id}` : ', plaintext';
    findings.push(ok('stored rows', `${checked} stored file versions of ${what} verified${keys}`));
  } else {
    const missingKeys = [...new Set(failures.map((failure) => failure.missingKey).filter((id): id is string => id !== null))];
    findings.push(
      fail(
        'stored rows',
        missingKeys.length > 0
          ? `${failures.length} of ${checked} stored versions need key id ${missingKeys.join(', ')}, which is not configured`
          : `${failures.length} of ${checked} stored versions failed verification (run baileys-keeper verify for the list)`,
      ),
    );
  }
  if (many) {
    const held = stored.filter((session) => session.leaseLive);
    const owners = new Set(held.map((session) => session.leaseOwner));
    findings.push(ok('lease', `${held.length} of ${stored.length} sessions held, by ${owners.size} keeper${owners.size === 1 ? '' : 's'}`));
  } else {
    const holder = await store.leaseHolder(config.sessionId);
    findings.push(
      ok(
        'lease',
        holder ? `held by ${holder.owner} until ${holder.expiresAt.toISOString()}` : `session ${config.sessionId}: nobody holds it`,
      ),
    );
  }
  const before = systemClock.wall();
  const databaseNow = (await store.databaseNow()).getTime();
  const after = systemClock.wall();
  // The database read its clock somewhere within the round trip: compare with its middle.
  const skew = databaseNow - (before + after) / 2;
  const said = `${(skew / 1000).toFixed(3)} s (round trip ${after - before} ms)`;
  findings.push(
    Math.abs(skew) > MAX_SKEW_MS
      ? fail('clock', `this machine's clock is off the database's by ${said}: fix NTP on the node`)
      : ok('clock', `skew against the database ${said}`),
  );
  return findings;
}

async function databaseFindings(ctx: Context<'doctor'>): Promise<{ findings: Finding[]; unreachable: boolean }> {
  const { config } = ctx;
  let target: DatabaseTarget | null = null;
  let db: Database | null = null;
  try {
    target = await databaseTarget(ctx);
    db = await openDatabase({ url: target.url, schema: config.schema, log: ctx.log.child({ component: 'db' }) });
    const findings = [await checkTls(db, describeTarget(target.url))];
    const schema = await checkSchema(db);
    findings.push(...schema.findings);
    if (schema.ready) {
      const store = new SessionStore(db, config.encryption, { requireEncryption: config.requireEncryption });
      findings.push(...(await checkSession(ctx, store)));
    }
    return { findings, unreachable: false };
  } catch (error) {
    const unreachable = error instanceof DatabaseUnreachableError;
    return { findings: [fail('database', (error as Error).message)], unreachable };
  } finally {
    await db?.close().catch(() => undefined);
    await target?.stop();
  }
}

export async function doctorCommand(ctx: Context<'doctor'>): Promise<number> {
  const { config } = ctx;
  // With --sessions-dir the directory that must exist, be writable and be watchable is the parent.
  const dir = config.sessionsDir ?? config.dir;
  // What the configuration itself warrants (an unknown variable, a session id nobody chose): warn lines here.
  const findings = startWarnings(config).map((warning) => warn(warning.check, warning.message));
  // A misspelled variable meant to choose the session: the roles refuse to start (exit 64), so this fails.
  const guessed = guessedSessionProblem(config);
  if (guessed) findings.push(fail('session id', guessed));
  findings.push(await checkDirectory(dir));
  if (config.sessionsDir === null) findings.push(await checkLogin(dir));
  const fileAccess = await checkReadable(dir, config.sessionsDir !== null);
  if (fileAccess) findings.push(fileAccess);
  findings.push(await checkWatching(dir, config.watchMode));
  const database = await databaseFindings(ctx);
  findings.push(...database.findings);
  if (config.json)
    printJson(
      ctx,
      config.sessionsDir === null
        ? { session_id: config.sessionId, checks: findings }
        : { sessions_dir: config.sessionsDir, checks: findings },
    );
  else for (const finding of findings) print(ctx, `${finding.status.toUpperCase().padEnd(4)}  ${finding.check}: ${finding.detail}`);
  if (!findings.some((finding) => finding.status === 'fail')) return ExitCode.ok;
  return database.unreachable ? ExitCode.databaseUnreachable : ExitCode.unexpected;
}

export const command: CommandSpec<'doctor'> = {
  name: 'doctor',
  summary: 'check the directory (login, file access), watching, the database (TLS, privileges, schema), the key, the lease and clock skew',
  logTo: 'stderr',
  reportsStartWarnings: true,
  run: doctorCommand,
};
