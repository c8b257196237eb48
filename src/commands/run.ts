// `run -- CMD`: single-container mode. Restore, start watching, start the bot as a process group with
// inherited stdio, back up in-process while it runs, forward signals to the group, and after every
// process of the group has exited a final backup; exit with the bot's code.
import { mkdir } from 'node:fs/promises';
import { KeeperError } from '../errors.js';
import { ProcessGroup } from '../process-group.js';
import { databaseTarget, logEncryption, usingDatabase, type Context } from './context.js';
import { restoreDirectory, type WithStore } from './restore.js';
import { startService, type Service } from './service.js';
import { abortOnSecondSignal, CLOSE_GRACE_MS } from './sidecar.js';
import { systemClock, within } from '../clock.js';

/** Exit code when the bot's command cannot be started at all (as shells use). */
export const EXIT_COMMAND_NOT_FOUND = 127;
const FORWARDED = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const;
/** How long a SIGKILLed group may take to be gone, ms. */
const KILL_GRACE_MS = 2_000;

export async function runCommand(ctx: Context): Promise<number> {
  const { config } = ctx;
  const log = ctx.log.child({ component: 'run', session: config.sessionId });
  logEncryption(ctx);
  const target = await databaseTarget(ctx);
  let service: Service | null = null;
  try {
    const withDb: WithStore = (fn) =>
      usingDatabase(target.url, config.schema, ctx.log.child({ component: 'db' }), config.waitMs, (store) => fn(store), config);
    let restored = false;
    service = await startService(ctx, target, () => restored);
    try {
      const outcome = await restoreDirectory(config, ctx.log.child({ component: 'restore', session: config.sessionId }), withDb);
      service.metrics.restores.inc({ result: outcome });
    } catch (error) {
      service.metrics.restores.inc({ result: 'failure' });
      const code = error instanceof KeeperError ? error.exitCode : 1;
      log.error({ exitCode: code }, `restore failed, so the bot is not started: ${(error as Error).message}`);
      return code;
    }
    restored = true;
    // With nothing restored the directory may not exist yet; the bot (same user, same process tree)
    // would create it anyway, and watching must start before the bot's first write.
    await mkdir(config.dir, { recursive: true, mode: 0o700 });
    await service.sidecar.start();
    const exitCode = await superviseChild(ctx);
    log.info({ exitCode }, "the bot's process group has exited: final backup");
    const stored = await service.sidecar.shutdown(0);
    if (!stored) log.error('the final backup did not complete: the newest changes are not stored');
    return exitCode;
  } finally {
    if (service) await within(systemClock, service.close(), CLOSE_GRACE_MS);
    await target.stop();
  }
}

/**
 * Starts the command as a process group, forwards SIGTERM/SIGINT/SIGHUP to the whole group, and
 * resolves to the leader's exit code (128+signal if killed) once every process of the group has
 * exited. After a stop signal — or once the command itself has exited while others of its group
 * run on — the group gets `--stop-timeout`, then SIGKILL: the final backup must not wait for ever,
 * nor run while a grandchild (`npm start` → node bot.js) is still writing.
 */
async function superviseChild(ctx: Context): Promise<number> {
  const { config } = ctx;
  const log = ctx.log.child({ component: 'run' });
  const file = config.childCommand[0]!;
  // The bot gets the container's environment minus the keeper's secrets (config.withoutKeeperSecrets).
  const group = new ProcessGroup(config.childCommand, config.childEnv);
  try {
    await group.started;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    log.error({ command: file, code }, `cannot start ${file} (${code ?? (error as Error).message}): check the command after --`);
    return EXIT_COMMAND_NOT_FOUND;
  }
  log.info({ command: file, pid: group.pid }, 'bot started (its own process group)');

  let stopDeadline: number | null = null;
  let stopRequested!: () => void;
  const stopped = new Promise<void>((resolve) => (stopRequested = resolve));
  const forwarders = FORWARDED.map((signal) => {
    const forward = () => {
      log.info({ signal }, "forwarding the signal to the bot's process group");
      group.signal(signal);
      if (signal === 'SIGHUP' || stopDeadline !== null) return; // SIGHUP may mean "reload" to a bot
      stopDeadline = systemClock.now() + config.stopTimeoutMs;
      // From now on a second SIGTERM/SIGINT kills the group and ends at once.
      abortOnSecondSignal(ctx, () => group.signal('SIGKILL'));
      stopRequested();
    };
    process.on(signal, forward);
    return [signal, forward] as const;
  });
  try {
    const exit = await Promise.race([group.leaderExited, stopped.then(() => null)]);
    if (exit !== null && stopDeadline === null && (await group.alive())) {
      // The command ended on its own but left processes behind (a wrapper that did not wait): stop them
      // as a container runtime would, so the final backup sees their last writes.
      log.info({ exitCode: exit.code }, "the bot's command exited while others of its process group still run: stopping them");
      group.signal('SIGTERM');
      stopDeadline = systemClock.now() + config.stopTimeoutMs;
    }
    const deadline = stopDeadline ?? Infinity;
    if (!(await group.exited(deadline - systemClock.now()))) {
      log.warn({ stopTimeoutMs: config.stopTimeoutMs }, "the bot's process group still runs after --stop-timeout: killing it (SIGKILL), then the final backup");
      group.signal('SIGKILL');
      await group.exited(KILL_GRACE_MS);
    }
    return (await group.leaderExited).code;
  } finally {
    for (const [signal, forward] of forwarders) process.off(signal, forward);
  }
}
