// `restore`: the init container. Puts the session's newest (or chosen) generation into --dir.
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { sleep, systemClock, type Clock } from '../clock.js';
import type { Config, ConfigOf } from '../config.js';
import { CREDS_FILE, parseCreds } from '../creds.js';
import { DatabaseUnreachableError, ExitCode, KeeperError, NothingToRestoreError, UsageError } from '../errors.js';
import { forEachLimited } from '../limit.js';
import type { Logger } from '../log.js';
import { folderFor } from '../names.js';
import { startProgress } from '../progress.js';
import { hasUsableCreds, materialise, obstructionError, planRestore, RestoreWriteError, recoverInterruptedRestore } from '../restore.js';
import { describeRollback } from '../rollback.js';
import { setAside } from '../set-aside.js';
import { readSnapshot } from '../snapshot.js';
import { formatDuration } from '../store/retention.js';
import { LOGOUT_REASON, TOMBSTONE_REASON, type GenerationRow, type HeadLoad, type PlainFile, type SessionStore } from '../store/index.js';
import type { CommandSpec, Context } from './command.js';
import { withStore } from './database.js';
import { formatBytes, print, printJson } from './output.js';

/** How often restore looks again at a lease held by a sidecar that is shutting down, ms. */
export const LEASE_POLL_MS = 250;
/** Sessions restored at once with --sessions-dir (each may wait for its old writer's hand-over). */
export const RESTORE_CONCURRENCY = 8;
/** Sessions whose heads restore --sessions-dir reads in one go (their contents are held until written). */
export const RESTORE_BATCH = 64;
/**
 * A batch also ends once its heads hold this many bytes of files (a session larger than that is a batch by
 * itself): node-postgres holds a whole result, bytea as hex (twice the content), and the next batch is read
 * while one is written, so memory stays near 4 × this plus one large session, whatever the sessions' sizes.
 */
export const RESTORE_BATCH_BYTES = 32 * 1024 * 1024;

export type RestoreOutcome = 'restored' | 'skipped' | 'empty';

/** Runs fn with the store, connecting only when called (a directory that needs nothing needs no database). */
export type WithStore = <T>(fn: (store: SessionStore) => Promise<T>) => Promise<T>;

/** What a restore reads: the settings of `restore` that `run` shares, and the point to restore (run: the newest, never forced). */
export type RestoreConfig = ConfigOf<'restore' | 'run'> & Pick<Config, 'force' | 'generation' | 'at'>;

export async function restoreCommand(ctx: Context<'restore'>): Promise<number> {
  const { config } = ctx;
  const log = ctx.log.child({ component: 'restore', session: config.sessionId });
  if (config.sessionsDir !== null) {
    if (config.dryRun || config.generation !== null || config.at !== null)
      throw new UsageError(
        '--dry-run, --generation and --at name one session: with --sessions-dir, restore that session with --session ID --dir DIR',
      );
    // One pool for every session.
    return withStore(ctx, (store) => restoreSessions(config, ctx.log.child({ component: 'restore' }), (fn) => fn(store)), config.waitMs);
  }
  const withDb: WithStore = (fn) => withStore(ctx, (store) => fn(store), config.waitMs);
  if (config.dryRun) return dryRun(ctx, withDb);
  await restoreDirectory(config, log, withDb);
  return 0;
}

/**
 * The restore role, shared by `restore` and `run`: finishes an interrupted restore, keeps a directory
 * that already holds a valid login, otherwise waits for another holder's hand-over and restores.
 */
export async function restoreDirectory(config: RestoreConfig, log: Logger, withDb: WithStore): Promise<RestoreOutcome> {
  await recoverInterruptedRestore(config.dir, log);
  let stale: string | null = null;
  if (await keepsItsLogin(config)) {
    await requireNamedPoint(config, withDb);
    // Never backwards (docs/reliability.md): a login older than the head is replaced by the head.
    stale = await staleLogin(config, log, withDb);
    if (stale === null) {
      log.info({ dir: config.dir }, 'the directory already holds a valid creds.json: nothing to restore (use --force to overwrite it)');
      return 'skipped';
    }
  }
  const { loaded, loggedOut } = await withDb(async (store) => {
    await waitForRelease(store, config.sessionId, config.leaseWaitMs, log);
    return {
      loaded: await store.loadPoint(config.sessionId, { generation: config.generation, at: config.at }),
      loggedOut: await loggedOutMessage(store, config),
    };
  });
  if (loggedOut !== null) {
    if (config.requireBackup) throw new NothingToRestoreError(`${loggedOut}; --require-backup was given, so the bot must not start`);
    log.warn(loggedOut);
    return 'empty';
  }
  if (!loaded) {
    const message = `session ${config.sessionId} has no backup: the bot will start unpaired and show a QR code to scan`;
    if (config.requireBackup) throw new NothingToRestoreError(`${message}; --require-backup was given, so the bot must not start`);
    log.warn(message);
    return 'empty';
  }
  const { generation: point, files } = loaded;
  if (point.reason === TOMBSTONE_REASON) {
    // The session's directory was removed for good (docs/many-sessions.md); its history is kept.
    const before = await withDb((store) => loginBefore(store, config.sessionId, point.generation));
    const message =
      `session ${config.sessionId} was removed (tombstone generation ${point.generation}): the bot will start unpaired; ` +
      `to bring it back, restore an older generation: --generation ${before ?? point.generation - 1} --force (baileys-keeper history lists them)`;
    if (config.requireBackup) throw new NothingToRestoreError(`${message}; --require-backup was given, so the bot must not start`);
    log.warn(message);
    return 'empty';
  }
  if (config.requireBackup) requireLogin(config, point.generation, files);
  const aside = stale === null ? null : await keepStaleAside(config.dir);
  const progress = startProgress({
    label: `restoring session ${config.sessionId}`,
    count: files.length,
    bytes: files.reduce((sum, file) => sum + file.content.length, 0),
  });
  try {
    await materialise(config.dir, files, log, (bytes) => progress.advance(1, bytes));
  } finally {
    progress.stop();
  }
  // An older login brought back to a logged-out session on purpose: the loop may store it again.
  if (config.generation !== null || config.at !== null) await bringBackLogin(config, files, log, withDb);
  if (aside !== null)
    log.warn(
      { generation: point.generation, aside },
      `${stale}: restored the head over it; its files were kept in ${aside} (delete that directory once you no longer need it)`,
    );
  logRestored(config, log, point, files);
  return 'restored';
}

/** The line a restore ends with: which generation went into the directory, its files and bytes. */
function logRestored(config: RestoreConfig, log: Logger, point: GenerationRow, files: readonly PlainFile[]): void {
  const bytes = files.reduce((sum, file) => sum + file.content.length, 0);
  log.info(
    { generation: point.generation, createdAt: point.createdAt.toISOString(), files: files.length, bytes, dir: config.dir },
    `restored generation ${point.generation} of ${point.createdAt.toISOString()} ` +
      `(${files.length} files, ${formatBytes(bytes)})${distanceFromAt(config.at, point.createdAt)}`,
  );
}

/**
 * `restore --sessions-dir` (and `run`'s restore): every stored session whose id starts with the prefix and
 * whose head is not a tombstone, restored into sessionsDir/<name> by the rules of restoreDirectory, their
 * heads read `options.batchSize` sessions at a time (RESTORE_BATCH; see restoreInBatches); `record` hears
 * each outcome. Returns the exit code: 0 when every session succeeds, else the highest code of those that
 * failed (docs/many-sessions.md). With --require-backup, no session at all to restore is exit 3.
 */
export async function restoreSessions(
  config: RestoreConfig,
  log: Logger,
  withDb: WithStore,
  record: (sessionId: string, result: RestoreOutcome | 'failure') => void = () => undefined,
  options: { batchSize?: number; batchBytes?: number } = {},
): Promise<number> {
  const sessionsDir = config.sessionsDir!;
  await mkdir(sessionsDir, { recursive: true, mode: 0o700 });
  const [stored, damaged] = await withDb((store) =>
    Promise.all([store.status(null, config.sessionPrefix), store.headProblems(null, config.sessionPrefix)] as const),
  );
  const counts = { restored: 0, skipped: 0, empty: 0, removed: 0, failed: 0 };
  let unnamed = 0;
  const wanted: Wanted[] = [];
  for (const session of stored) {
    // The folder it was kept from: its id minus the prefix, or the original name of a mapped id (names.folderFor).
    const place = folderFor(config.sessionPrefix, session.sessionId, session.folder);
    if ('skipped' in place) {
      if (session.headGeneration > 0 && session.headReason !== TOMBSTONE_REASON) unnamed++;
      log.warn(
        { session: session.sessionId },
        `session ${session.sessionId} is not restored into the sessions directory: ${place.skipped}; ` +
          `restore it by hand with --session ${session.sessionId} --dir DIR`,
      );
      continue;
    }
    const name = place.folder;
    if (session.headReason === TOMBSTONE_REASON) {
      counts.removed++;
      log.info({ session: session.sessionId }, `session ${session.sessionId} was removed (a tombstone): not restored`);
      continue;
    }
    // A damaged head (even one moved back to 0) is restored to fail loudly (exit 4), not skipped as empty.
    if (session.headGeneration > 0 || damaged.has(session.sessionId))
      wanted.push({ sessionId: session.sessionId, name, bytes: session.bytes });
  }
  let code = 0;
  // One line for the whole directory (each session's own restore draws none while it is shown).
  const sizes = new Map(wanted.map((session) => [session.sessionId, session.bytes]));
  const progress = startProgress({
    label: 'restoring sessions',
    count: wanted.length,
    bytes: wanted.reduce((sum, session) => sum + session.bytes, 0),
    unit: 'sessions',
  });
  const logFor = ({ sessionId, name }: Wanted): Logger =>
    log.child(name === sessionId.slice(config.sessionPrefix.length) ? { session: sessionId } : { session: sessionId, folder: name });
  const settle = (sessionId: string, result: RestoreOutcome | Error): void => {
    progress.advance(1, sizes.get(sessionId) ?? 0);
    if (!(result instanceof Error)) {
      counts[result]++;
      record(sessionId, result);
      return;
    }
    counts.failed++;
    record(sessionId, 'failure');
    const exitCode = result instanceof KeeperError ? result.exitCode : ExitCode.unexpected;
    code = Math.max(code, exitCode);
    log.error({ session: sessionId, exitCode }, `session ${sessionId} could not be restored: ${result.message}`);
  };
  const configFor = ({ sessionId, name }: Wanted): RestoreConfig => ({
    ...config,
    sessionId,
    dir: path.join(sessionsDir, name),
    requireBackup: false,
  });
  await restoreInBatches({
    config,
    wanted,
    batchSize: options.batchSize ?? RESTORE_BATCH,
    batchBytes: options.batchBytes ?? RESTORE_BATCH_BYTES,
    alone: async (session) => {
      const outcome = await restoreDirectory(configFor(session), logFor(session), withDb).catch((error: unknown) =>
        error instanceof Error ? error : new Error(String(error)),
      );
      settle(session.sessionId, outcome);
    },
    read: async (sessions) => {
      // A batch read that fails (the database went away) leaves each session to its own restore, errors and all.
      const ids = sessions.map((session) => session.sessionId);
      return withDb((store) => store.loadHeads(ids)).catch(() => new Map<string, HeadLoad>());
    },
    write: async (ready) => {
      await forEachLimited(ready, RESTORE_CONCURRENCY, async ({ session, loaded }) => {
        const one = configFor(session);
        const sessionLog = logFor(session);
        try {
          await materialise(one.dir, loaded.files, sessionLog);
          logRestored(one, sessionLog, loaded.generation, loaded.files);
          settle(session.sessionId, 'restored');
        } catch (error) {
          settle(session.sessionId, error instanceof Error ? error : new Error(String(error)));
        }
      });
    },
    dirOf: (session) => configFor(session).dir,
    logFor,
  }).finally(() => progress.stop());
  log.info(
    { sessionsDir, ...counts },
    `sessions restored: ${counts.restored} restored, ${counts.skipped} already logged in, ${counts.empty} empty, ` +
      `${counts.removed} removed (not restored), ${counts.failed} failed` +
      (unnamed > 0 ? `, ${unnamed} with no folder name that can be created (not restored)` : ''),
  );
  // A kept session that cannot be recreated is a restore that did not succeed (SPEC: the worst code).
  if (unnamed > 0) code = Math.max(code, ExitCode.unexpected);
  if (config.requireBackup && code === 0 && wanted.length === 0)
    throw new NothingToRestoreError(`no stored session has the prefix ${JSON.stringify(config.sessionPrefix)}; --require-backup was given`);
  return code;
}

/** A stored session restore --sessions-dir restores, and the folder it goes into. */
interface Wanted {
  sessionId: string;
  name: string;
  /** The head's files' total size, bytes (what the batch's read will hold). */
  bytes: number;
}

type Loaded = { session: Wanted; loaded: Exclude<HeadLoad, string> };

/**
 * Restores `wanted` a batch at a time: at most `batchSize` sessions and `batchBytes` of head files (a larger
 * session alone), in the order given. A batch's sessions whose directory needs
 * the restore (no valid login kept there, after finishing an interrupted restore) have their heads read
 * in one go (`read`) while the previous batch is being written (`write`, which writes its directories
 * RESTORE_CONCURRENCY at once): at most two batches' contents are held. A session the batch read
 * cannot settle (a directory holding a login, a live writer to wait for, no backup, a logout, a damaged
 * or unreadable head) goes to `alone` — restoreDirectory's rules and messages — beside the batches,
 * RESTORE_CONCURRENCY at a time, so that one writer's hand-over wait holds up no other session.
 * None of the callbacks rejects: each settles its sessions' outcomes itself.
 */
async function restoreInBatches(job: {
  config: RestoreConfig;
  wanted: readonly Wanted[];
  batchSize: number;
  batchBytes: number;
  alone: (session: Wanted) => Promise<void>;
  read: (sessions: readonly Wanted[]) => Promise<Map<string, HeadLoad>>;
  write: (ready: readonly Loaded[]) => Promise<void>;
  dirOf: (session: Wanted) => string;
  logFor: (session: Wanted) => Logger;
}): Promise<void> {
  const byThemselves: Promise<void>[] = [];
  let running = 0;
  const waiting: (() => void)[] = [];
  const alone = (session: Wanted): void => {
    byThemselves.push(
      (async () => {
        if (running >= RESTORE_CONCURRENCY) await new Promise<void>((resolve) => waiting.push(resolve));
        running++;
        try {
          await job.alone(session);
        } finally {
          running--;
          waiting.shift()?.();
        }
      })(),
    );
  };
  const read = async (batch: readonly Wanted[]): Promise<Loaded[]> => {
    const needed: Wanted[] = [];
    await forEachLimited(batch, RESTORE_CONCURRENCY, async (session) => {
      const dir = job.dirOf(session);
      // A directory that keeps (or may keep) its login takes restoreDirectory's path: never backwards, set aside.
      const settled = await recoverInterruptedRestore(dir, job.logFor(session))
        .then(() => keepsItsLogin({ ...job.config, dir }))
        .catch(() => true);
      if (settled) alone(session);
      else needed.push(session);
    });
    if (needed.length === 0) return [];
    const loads = await job.read(needed);
    const ready: Loaded[] = [];
    for (const session of needed) {
      const loaded = loads.get(session.sessionId) ?? 'one by one';
      if (typeof loaded === 'object') ready.push({ session, loaded });
      else alone(session);
    }
    return ready;
  };
  const batches: Wanted[][] = [];
  let bytes = 0;
  for (const session of job.wanted) {
    const last = batches.at(-1);
    if (last && last.length < job.batchSize && bytes + session.bytes <= job.batchBytes) {
      last.push(session);
      bytes += session.bytes;
    } else {
      batches.push([session]);
      bytes = session.bytes;
    }
  }
  let next = batches.length > 0 ? read(batches[0]!) : null;
  try {
    for (let i = 0; next !== null; i++) {
      const ready = await next;
      next = i + 1 < batches.length ? read(batches[i + 1]!) : null;
      await job.write(ready);
    }
  } finally {
    await Promise.allSettled(byThemselves);
  }
}

/**
 * With --at, how far the generation found is from the asked-for time (thinned history keeps fewer
 * points the older they are): "; 4m12s before --at 2026-…". Empty without --at.
 */
export function distanceFromAt(at: Date | null, createdAt: Date): string {
  if (at === null) return '';
  const ms = at.getTime() - createdAt.getTime();
  return ms < 1000
    ? `; at --at ${at.toISOString()}`
    : `; the newest retained generation at or before --at ${at.toISOString()}, ${formatDuration(ms)} before it`;
}

/**
 * --require-backup means "the bot must start logged in": a restore point without a usable creds.json
 * (emptied, or a creds.json that is not one) would start it unpaired just like no backup at all.
 */
function requireLogin(config: RestoreConfig, generation: number, files: readonly PlainFile[]): void {
  const creds = files.find((file) => file.name === CREDS_FILE);
  if (creds && parseCreds(creds.content.toString('utf8')) !== null) return;
  throw new NothingToRestoreError(
    `generation ${generation} of session ${config.sessionId} holds ` +
      `${creds ? 'a creds.json that is not a Baileys login' : 'no creds.json'}: ` +
      'the bot would start unpaired; --require-backup was given, so nothing was written and the bot must not start',
  );
}

/**
 * Why the directory's valid login is older than the stored head (src/rollback.ts), or null when it is
 * not, or when that is not asked: --allow-rollback, or an older point chosen with --generation/--at.
 * A database that stays unreachable keeps the login as before (backups still refuse a stale one).
 */
async function staleLogin(config: RestoreConfig, log: Logger, withDb: WithStore): Promise<string | null> {
  if (config.allowRollback || config.generation !== null || config.at !== null) return null;
  const snapshot = await readSnapshot(config.dir);
  try {
    const found = await withDb((store) => store.rollbackOf(config.sessionId, snapshot));
    return found ? describeRollback(found.finding, found.headGeneration) : null;
  } catch (error) {
    if (!(error instanceof DatabaseUnreachableError)) throw error;
    log.warn(
      { dir: config.dir },
      `cannot check whether the directory's login is older than the stored head (${error.message}); keeping it`,
    );
    return null;
  }
}

/** setAside, failing as a restore that has not written anything yet. */
async function keepStaleAside(dir: string): Promise<string> {
  try {
    return await setAside(dir);
  } catch (error) {
    throw new RestoreWriteError(
      `cannot keep the stale files of ${dir} aside before restoring the head (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}): ` +
        'nothing was restored; free space or fix permissions and run restore again, or pass --allow-rollback to keep the older login',
      { cause: error },
    );
  }
}

/**
 * A point asked for by --generation or --at must exist even when the directory's login is kept: a typo'd
 * generation is an error (NothingToRestoreError, exit 3, listing what is retained), never "nothing to do".
 */
async function requireNamedPoint(config: RestoreConfig, withDb: WithStore): Promise<void> {
  if (config.generation === null && config.at === null) return;
  await withDb((store) => store.findPoint(config.sessionId, { generation: config.generation, at: config.at }));
}

/** True when the directory already holds a valid login and --force was not given: nothing to restore. */
async function keepsItsLogin(config: RestoreConfig): Promise<boolean> {
  return !config.force && (await hasUsableCreds(config.dir));
}

/**
 * When the session is logged out (SPEC "Session lifecycle") and no older point was asked for: what restore
 * says instead of writing a login — when, and the command that brings the previous login back. Else null.
 */
async function loggedOutMessage(store: SessionStore, config: RestoreConfig): Promise<string | null> {
  if (config.generation !== null || config.at !== null) return null;
  const loggedOut = (await store.summary(config.sessionId))?.loggedOut;
  if (!loggedOut) return null;
  const previous = await loginBefore(store, config.sessionId, loggedOut.generation);
  const back =
    previous !== null
      ? `to bring the previous login back, run 'baileys-keeper restore --session ${config.sessionId} --generation ${previous} --force'`
      : 'no generation before the logout is retained';
  return (
    `session ${config.sessionId} was logged out at ${loggedOut.at.toISOString()} (generation ${loggedOut.generation}): ` +
    `no login was written, the bot will start unpaired and show a QR code to scan; ${back}`
  );
}

/** The newest retained generation before `generation` that a backup wrote (not a logout or a tombstone), or null. */
async function loginBefore(store: SessionStore, sessionId: string, generation: number): Promise<number | null> {
  const rows = await store.history(sessionId);
  return (
    rows.find((row) => row.generation < generation && row.reason !== LOGOUT_REASON && row.reason !== TOMBSTONE_REASON)?.generation ?? null
  );
}

/** After restoring an asked-for point that holds a paired login: a logged-out session is not any more. */
async function bringBackLogin(config: RestoreConfig, files: readonly PlainFile[], log: Logger, withDb: WithStore): Promise<void> {
  const creds = files.find((file) => file.name === CREDS_FILE);
  if (!creds || !parseCreds(creds.content.toString('utf8'))?.registeredJid) return;
  if (await withDb((store) => store.revive(config.sessionId)))
    log.warn(
      'the session was logged out: the restored login is its login again and is backed up as such ' +
        "(to look at a generation without this, use 'baileys-keeper export --generation N')",
    );
}

/** Lists what a restore would change. Writes nothing: not even finishing an interrupted restore. */
async function dryRun(ctx: Context<'restore'>, withDb: WithStore): Promise<number> {
  const { config } = ctx;
  // As the real restore: a valid login is kept, unless it is older than the head (then the head goes over it).
  let stale: string | null = null;
  if (await keepsItsLogin(config)) {
    await requireNamedPoint(config, withDb);
    stale = await staleLogin(config, ctx.log, withDb);
    if (stale === null) {
      print(ctx, `skip: ${config.dir} already holds a valid creds.json (use --force to overwrite it)`);
      return 0;
    }
  }
  const { loaded, loggedOut } = await withDb(async (store) => ({
    loaded: await store.loadPoint(config.sessionId, { generation: config.generation, at: config.at }),
    loggedOut: await loggedOutMessage(store, config),
  }));
  if (loggedOut !== null) {
    if (config.requireBackup) throw new NothingToRestoreError(`${loggedOut}; --require-backup was given`);
    print(ctx, `nothing: ${loggedOut}`);
    return 0;
  }
  if (!loaded) {
    if (config.requireBackup) throw new NothingToRestoreError(`session ${config.sessionId} has no backup; --require-backup was given`);
    print(ctx, `nothing: session ${config.sessionId} has no backup; the bot would start unpaired and show a QR code`);
    return 0;
  }
  const { generation: point, files } = loaded;
  if (config.requireBackup) requireLogin(config, point.generation, files);
  const plan = await planRestore(config.dir, files);
  // The real restore refuses names taken by a non-file: the dry run lists them and fails the same way.
  const refuse = () => {
    if (plan.blocked.length > 0) throw obstructionError(config.dir, plan.blocked);
    return 0;
  };
  if (config.json) {
    printJson(ctx, { session_id: config.sessionId, generation: point.generation, ...plan, ...(stale ? { stale } : {}) });
    return refuse();
  }
  if (stale)
    print(
      ctx,
      `stale: ${config.dir} holds a login older than the stored head (${stale}); a restore keeps its files aside ` +
        `in ${config.dir}/.baileys-keeper-stale-<time> and writes the head (--allow-rollback keeps the older login)`,
    );
  print(
    ctx,
    `generation ${point.generation} of session ${config.sessionId} ` +
      `(${point.createdAt.toISOString()}${distanceFromAt(config.at, point.createdAt)}) into ${config.dir}:`,
  );
  for (const name of plan.write) print(ctx, `write   ${name}`);
  for (const name of plan.remove) print(ctx, `remove  ${name}`);
  for (const entry of plan.blocked) print(ctx, `blocked ${entry.name} (${entry.kind} is in the way)`);
  print(
    ctx,
    `${plan.write.length} to write, ${plan.unchanged.length} unchanged, ${plan.remove.length} to remove` +
      `${plan.blocked.length > 0 ? `, ${plan.blocked.length} blocked` : ''} (dry run: nothing written)`,
  );
  return refuse();
}

/**
 * Zero-loss hand-over: while another process holds the session's lease (an old pod's sidecar that is
 * flushing its last changes), waits up to `waitMs` on `clock` for it to release, looking every
 * LEASE_POLL_MS; the caller then restores what it left. Resolves either way (a holder still there
 * is logged as a warning); rejects only with the store's error.
 */
export async function waitForRelease(
  store: SessionStore,
  sessionId: string,
  waitMs: number,
  log: Logger,
  clock: Clock = systemClock,
): Promise<void> {
  const deadline = clock.now() + waitMs;
  let holder = await store.leaseHolder(sessionId);
  if (!holder) return;
  log.info({ holder: holder.owner, waitMs }, 'another instance holds the session: waiting for its final backup');
  while (holder && clock.now() < deadline) {
    await sleep(clock, Math.min(LEASE_POLL_MS, deadline - clock.now()));
    holder = await store.leaseHolder(sessionId);
  }
  if (holder)
    log.warn({ holder: holder.owner }, 'the other instance still holds the session after --lease-wait: restoring its newest backup');
  else log.info('the other instance released the session');
}

export const command: CommandSpec<'restore'> = {
  name: 'restore',
  summary: 'restore the newest (or a chosen) generation into --dir; the init container',
  logTo: 'stdout',
  run: restoreCommand,
};
