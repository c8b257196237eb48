// `run -- CMD`: single-container mode. Restore, start watching, start the bot as a process group with
// inherited stdio, back up in-process while it runs, forward signals to the group, and after every
// process of the group has exited a final backup; exit with the bot's code.
import { mkdir } from 'node:fs/promises';
import os from 'node:os';
import { KeeperError } from '../errors.js';
import { type DirectoryPicture, pictureChanges, takePicture } from '../directory-picture.js';
import { type LeftProcess, ProcessGroup } from '../process-group.js';
import type { CommandSpec, Context } from './command.js';
import { databaseTarget, usingDatabase } from './database.js';
import { logEncryption } from './output.js';
import { restoreDirectory, restoreSessions, type RestoreConfig, type RestoreOutcome, type WithStore } from './restore.js';
import { startService, type Service } from './service.js';
import { CLOSE_GRACE_MS } from './sidecar.js';
import { systemClock, within } from '../clock.js';

/** Exit code when the bot's command cannot be started at all (as shells use). */
export const EXIT_COMMAND_NOT_FOUND = 127;
const FORWARDED = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const;
/** How long a SIGKILLed group may take to be gone, ms. */
const KILL_GRACE_MS = 2_000;
/** Paths changed by a writer outside the group named in the warning; the rest are counted. */
const OUTSIDE_WRITES_LISTED = 5;
/** How often the wait for the group re-checks a stop deadline that a signal may have set, ms. */
const GROUP_CHECK_MS = 500;

/**
 * The process's SIGTERM/SIGINT/SIGHUP for the whole of `run`, from its first line: each phase (before
 * the bot starts, while it runs, during the final backup) says what a signal means to it, so no signal
 * ever meets Node's default action (an exit that skips the final backup and leaves the bot orphaned).
 */
class RunSignals {
  private handler: (signal: NodeJS.Signals) => void = () => undefined;
  private readonly listeners = FORWARDED.map((signal) => [signal, () => this.handler(signal)] as const);
  /** The first SIGTERM/SIGINT, once one came. */
  stop: NodeJS.Signals | null = null;
  private stopped!: () => void;
  /** Settles at the first SIGTERM/SIGINT. */
  readonly stopping = new Promise<void>((resolve) => (this.stopped = resolve));

  constructor(private readonly log: Context['log']) {
    for (const [signal, listener] of this.listeners) process.on(signal, listener);
  }

  /**
   * Sets what a signal does now. A first SIGTERM/SIGINT is recorded (and `onStop` runs); a second one
   * runs `onAbort` and exits at once; SIGHUP goes to `onHup`.
   */
  phase(handlers: { onStop?: (signal: NodeJS.Signals) => void; onHup?: () => void; onAbort?: () => void }): void {
    this.handler = (signal) => {
      if (signal === 'SIGHUP') return handlers.onHup?.();
      if (this.stop !== null) {
        this.log.warn({ signal }, 'second signal: aborting at once, without the final backup');
        handlers.onAbort?.();
        process.exit(128 + (os.constants.signals[signal] ?? 0));
      }
      this.stop = signal;
      this.stopped();
      handlers.onStop?.(signal);
    };
  }

  dispose(): void {
    for (const [signal, listener] of this.listeners) process.off(signal, listener);
  }
}

export async function runCommand(ctx: Context<'run'>): Promise<number> {
  const { config } = ctx;
  // With --sessions-dir the bot keeps many sessions: its lines name none (each session's own lines do).
  const log = ctx.log.child({ component: 'run', ...(config.sessionsDir === null ? { session: config.sessionId } : {}) });
  const signals = new RunSignals(log);
  signals.phase({
    onStop: (signal) => log.info({ signal }, 'stop signal before the bot started: it will not be started'),
    onHup: () => log.info('SIGHUP before the bot started: ignored'),
  });
  logEncryption(ctx);
  // run restores the newest point and keeps a directory that already holds a valid login.
  const restoreConfig: RestoreConfig = { ...config, force: false, generation: null, at: null };
  const target = await databaseTarget(ctx);
  let service: Service | null = null;
  try {
    const withDb: WithStore = (fn) =>
      usingDatabase(target.url, config.schema, ctx.log.child({ component: 'db' }), config.waitMs, (store) => fn(store), config);
    let restored = false;
    service = await startService(ctx, target, () => restored);
    const metrics = service.metrics;
    // With many sessions, restores are counted once the fleet has taken its sessions up (below): a session
    // restored but not kept (another keeper removed it meanwhile) must not leave series behind.
    const restoredSessions: [string, RestoreOutcome | 'failure'][] = [];
    if (config.sessionsDir !== null) {
      const code = await usingDatabase(
        target.url,
        config.schema,
        ctx.log.child({ component: 'db' }),
        config.waitMs,
        (store) =>
          restoreSessions(
            restoreConfig,
            ctx.log.child({ component: 'restore' }),
            (fn) => fn(store),
            (sessionId, result) => void restoredSessions.push([sessionId, result]),
          ),
        config,
      );
      if (code !== 0) {
        log.error({ exitCode: code }, 'a session could not be restored, so the bot is not started (see above)');
        return code;
      }
    } else {
      try {
        const outcome = await restoreDirectory(restoreConfig, ctx.log.child({ component: 'restore', session: config.sessionId }), withDb);
        metrics.restores.inc({ result: outcome });
      } catch (error) {
        metrics.restores.inc({ result: 'failure' });
        const code = error instanceof KeeperError ? error.exitCode : 1;
        log.error({ exitCode: code }, `restore failed, so the bot is not started: ${(error as Error).message}`);
        return code;
      }
    }
    restored = true;
    // With nothing restored the directory may not exist yet; the bot (same user, same process tree)
    // would create it anyway, and watching must start before the bot's first write.
    await mkdir(config.sessionsDir ?? config.dir, { recursive: true, mode: 0o700 });
    await Promise.race([service.loop.start(), signals.stopping]);
    for (const [sessionId, result] of restoredSessions) if (service.loop.loopFor(sessionId)) metrics.restored(sessionId, result);
    const watched = config.sessionsDir ?? config.dir;
    const picture = () => takePicture(watched, { sessions: config.sessionsDir !== null });
    let exitCode: number;
    let left: LeftProcess[] = [];
    let atExit: DirectoryPicture | null = null;
    let botExited = false;
    if (signals.stop !== null) {
      exitCode = 128 + (os.constants.signals[signals.stop] ?? 0);
      log.info({ exitCode }, 'stopped before the bot started: final backup of the restored directory');
    } else {
      // The picture first, at once: a writer outside the group may be at work right now, and whatever it
      // writes from here on must count as changed.
      let group: ProcessGroup;
      ({ code: exitCode, group } = await superviseChild(ctx, signals));
      // No stop signal came while it ran: the bot ended by itself (a crash, a logout it handled by exiting).
      botExited = signals.stop === null;
      atExit = await picture();
      left = await group.stopTracking();
      log.info(
        { exitCode, shutdownQuietMs: config.shutdownQuietMs },
        "the bot's process group has exited: final backup once the directory has been quiet for --shutdown-quiet",
      );
    }
    signals.phase({ onStop: (signal) => log.info({ signal }, 'the final backup is running; a second signal aborts it') });
    // Even with the whole group gone the directory may still change: a supervisor that daemonises the bot
    // (pm2 start, nohup/setsid … &, a double fork) leaves it writing outside the group. So the final backup
    // waits for quiet as the sidecar's does (bounded by half of --shutdown-timeout), and the directory is
    // compared with its state at the group's exit: whatever changed since was written by someone else.
    const stored = await service.loop.shutdown(atExit === null ? 0 : config.shutdownQuietMs, { botExited });
    const changed = atExit === null ? [] : pictureChanges(atExit, await picture());
    const outside = changed.length > 0 || left.length > 0;
    if (outside) {
      log.warn(
        { dir: watched, files: changed.length, examples: changed.slice(0, OUTSIDE_WRITES_LISTED), leftBehind: left },
        outsideWarning(watched, changed, left),
      );
    }
    if (!stored) log.error('the final backup did not complete: the newest changes are not stored');
    // Only what run itself knows: held-back files (unreadable, too large, torn) are the loop's to report.
    else if (!outside) log.info({ exitCode }, `final backup done; nothing in ${watched} changed after the bot's process group exited`);
    // The exit code stays the bot's (SPEC: run exits with the child's code) even when a writer outside the
    // group was seen: a restart policy acting on a keeper-made failure would start the detached bot again
    // beside the copy still running (two sockets, one login); the warning above is the signal.
    return exitCode;
  } finally {
    if (service) {
      await service.flushNotifications();
      await within(systemClock, service.close(), CLOSE_GRACE_MS);
    }
    await target.stop();
    signals.dispose();
  }
}

/**
 * What `run` says when something outside the bot's process group may write to `dir` after the final
 * backup: files that changed after the group exited (`changed`), processes started from the group that
 * left it and still run (`left`); and the fix.
 */
function outsideWarning(dir: string, changed: readonly string[], left: readonly LeftProcess[]): string {
  const processes = left.map((proc) => `pid ${proc.pid} ${JSON.stringify(proc.command)}`).join(', ');
  const said: string[] = [];
  if (changed.length > 0) {
    said.push(
      `a process outside the bot's process group is still writing to ${dir}: ${changed.length} ` +
        `file${changed.length === 1 ? '' : 's'} changed after every process of the group had exited, so what it writes ` +
        'now is not stored (nothing watches the directory once run exits)',
    );
    if (left.length > 0) said.push(`left running outside the group: ${processes}`);
  } else {
    said.push(
      `the bot left ${left.length} process${left.length === 1 ? '' : 'es'} running outside its process group (${processes}): ` +
        `whatever ${left.length === 1 ? 'it writes' : 'they write'} to ${dir} from now on is not stored (nothing watches the directory once run exits)`,
    );
  }
  said.push(
    'a supervisor that detaches the bot does this: run pm2 as pm2-runtime, not pm2 start; forever without start/-d; ' +
      'no nohup, setsid or & around the bot',
  );
  return said.join('. ');
}

/**
 * Starts the command as a process group, forwards SIGTERM/SIGINT/SIGHUP to the whole group, and
 * resolves to the leader's exit code (128+signal if killed) once every process of the group has
 * exited. After a stop signal — or once the command itself has exited while others of its group
 * run on — the group gets `--stop-timeout`, then SIGKILL: the final backup must not wait for ever,
 * nor run while a grandchild (`npm start` → node bot.js) is still writing. A second stop signal
 * SIGKILLs the group and exits at once. The group is returned still tracking the processes that left it
 * (setsid, a daemonising supervisor): the caller asks it which still run.
 */
async function superviseChild(ctx: Context<'run'>, signals: RunSignals): Promise<{ code: number; group: ProcessGroup }> {
  const { config } = ctx;
  const log = ctx.log.child({ component: 'run' });
  const file = config.childCommand[0]!;
  // The bot gets the container's environment minus the keeper's secrets (config.withoutKeeperSecrets).
  const group = new ProcessGroup(config.childCommand, config.childEnv);
  let stopDeadline: number | null = null;
  const forward = (signal: NodeJS.Signals) => {
    log.info({ signal }, "forwarding the signal to the bot's process group");
    group.signal(signal);
  };
  signals.phase({
    onStop: (signal) => {
      forward(signal);
      stopDeadline = Math.min(stopDeadline ?? Infinity, systemClock.now() + config.stopTimeoutMs);
    },
    onHup: () => forward('SIGHUP'), // SIGHUP may mean "reload" to a bot: only forwarded
    onAbort: () => group.signal('SIGKILL'),
  });
  try {
    await group.started;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    log.error({ command: file, code }, `cannot start ${file} (${code ?? (error as Error).message}): check the command after --`);
    return { code: EXIT_COMMAND_NOT_FOUND, group };
  }
  log.info({ command: file, botPid: group.pid }, 'bot started (its own process group)');
  group.track();
  const exit = await Promise.race([group.leaderExited, signals.stopping.then(() => null)]);
  if (exit !== null && stopDeadline === null && (await group.alive())) {
    // The command ended on its own but left processes behind (a wrapper that did not wait): stop them
    // as a container runtime would, so the final backup sees their last writes.
    log.info({ exitCode: exit.code }, "the bot's command exited while others of its process group still run: stopping them");
    group.signal('SIGTERM');
    stopDeadline = systemClock.now() + config.stopTimeoutMs;
  }
  // The deadline may be set (or moved closer) by a signal while we wait: check it as time passes.
  while (!(await group.exited(Math.min(GROUP_CHECK_MS, (stopDeadline ?? Infinity) - systemClock.now())))) {
    if (stopDeadline !== null && systemClock.now() >= stopDeadline) {
      log.warn(
        { stopTimeoutMs: config.stopTimeoutMs },
        "the bot's process group still runs after --stop-timeout: killing it (SIGKILL), then the final backup",
      );
      group.signal('SIGKILL');
      await group.exited(KILL_GRACE_MS);
      break;
    }
  }
  return { code: (await group.leaderExited).code, group };
}

export const command: CommandSpec<'run'> = {
  name: 'run',
  summary: 'restore, run the bot (run -- node bot.js) and back up while it runs; one container',
  logTo: 'stdout',
  run: runCommand,
};
