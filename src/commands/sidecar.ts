// `sidecar`: watches --dir and backs up every change until SIGTERM/SIGINT, then a final backup.
import os from 'node:os';
import { systemClock, within } from '../clock.js';
import type { CommandSpec, Context } from './command.js';
import { databaseTarget } from './database.js';
import { logEncryption } from './output.js';
import { startService } from './service.js';

/** How long closing HTTP and the pool may take after the final backup, ms. */
export const CLOSE_GRACE_MS = 2_000;

export async function sidecarCommand(ctx: Context<'sidecar'>): Promise<number> {
  logEncryption(ctx);
  const target = await databaseTarget(ctx);
  try {
    const stop = new Promise<NodeJS.Signals>((resolve) => {
      process.once('SIGTERM', () => resolve('SIGTERM'));
      process.once('SIGINT', () => resolve('SIGINT'));
    });
    const service = await startService(ctx, target);
    void service.loop.start();
    const signal = await stop;
    abortOnSecondSignal(ctx);
    ctx.log.info({ signal }, 'stopping: waiting for the bot to go quiet, then a final backup');
    const stored = await service.loop.shutdown();
    await service.flushNotifications();
    await within(systemClock, service.close(), CLOSE_GRACE_MS);
    ctx.log.info({ stored }, stored ? 'stopped: everything is stored' : 'stopped without storing the newest changes');
    return stored ? 0 : 1;
  } finally {
    await target.stop();
  }
}

/** After the first signal starts a graceful stop, a second one ends the process at once. */
export function abortOnSecondSignal(ctx: Context, beforeExit: () => void = () => undefined): void {
  for (const name of ['SIGTERM', 'SIGINT'] as const) {
    process.once(name, () => {
      ctx.log.warn({ signal: name }, 'second signal: aborting at once, without the final backup');
      beforeExit();
      process.exit(128 + (os.constants.signals[name] ?? 0));
    });
  }
}

export const command: CommandSpec<'sidecar'> = {
  name: 'sidecar',
  summary: 'watch --dir and back up every change; serves /healthz, /readyz, /metrics',
  logTo: 'stdout',
  run: sidecarCommand,
};
