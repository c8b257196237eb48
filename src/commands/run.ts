// `run -- CMD`: single-container mode. Restore, start the bot as a child with inherited stdio, back up
// in-process while it runs, forward signals, and after it exits a final backup; exit with its code.
import { spawn } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import os from 'node:os';
import { KeeperError } from '../errors.js';
import { databaseTarget, logEncryption, usingDatabase, type Context } from './context.js';
import { restoreDirectory, type WithStore } from './restore.js';
import { startService, type Service } from './service.js';
import { abortOnSecondSignal, CLOSE_GRACE_MS } from './sidecar.js';
import { systemClock, within } from '../clock.js';

/** Exit code when the bot's command cannot be started at all (as shells use). */
export const EXIT_COMMAND_NOT_FOUND = 127;
const FORWARDED = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const;

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
    const exitCode = await superviseChild(ctx, config.childCommand, config.childEnv);
    log.info({ exitCode }, 'the bot exited: final backup');
    const stored = await service.sidecar.shutdown(0);
    if (!stored) log.error('the final backup did not complete: the newest changes are not stored');
    return exitCode;
  } finally {
    if (service) await within(systemClock, service.close(), CLOSE_GRACE_MS);
    await target.stop();
  }
}

/** Starts the command, forwards signals to it, and resolves to its exit code (128+signal if killed). */
function superviseChild(ctx: Context, command: readonly string[], env: Readonly<Record<string, string>>): Promise<number> {
  const log = ctx.log.child({ component: 'run' });
  const [file, ...args] = command as [string, ...string[]];
  return new Promise((resolve) => {
    // The bot gets the container's environment minus the keeper's secrets (config.withoutKeeperSecrets).
    const child = spawn(file, args, { stdio: 'inherit', env });
    log.info({ command: file, pid: child.pid }, 'bot started');
    const forwarders = FORWARDED.map((signal) => {
      const forward = () => {
        log.info({ signal }, 'forwarding signal to the bot');
        child.kill(signal);
      };
      process.on(signal, forward);
      return [signal, forward] as const;
    });
    let signalled = false;
    const firstStop = () => {
      if (signalled) return;
      signalled = true;
      // From now on a second SIGTERM/SIGINT kills the bot and ends at once.
      abortOnSecondSignal(ctx, () => child.kill('SIGKILL'));
    };
    process.once('SIGTERM', firstStop);
    process.once('SIGINT', firstStop);
    const done = (code: number) => {
      for (const [signal, forward] of forwarders) process.off(signal, forward);
      process.off('SIGTERM', firstStop);
      process.off('SIGINT', firstStop);
      resolve(code);
    };
    child.once('error', (error: NodeJS.ErrnoException) => {
      log.error({ command: file, code: error.code }, `cannot start ${file} (${error.code ?? error.message}): check the command after --`);
      done(EXIT_COMMAND_NOT_FOUND);
    });
    child.once('exit', (code, signal) => done(code ?? 128 + (signal ? (os.constants.signals[signal] ?? 0) : 0)));
  });
}
