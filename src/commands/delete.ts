// `delete`: removes a session and its whole history, only with --yes.
import { UsageError } from '../errors.js';
import type { CommandSpec, Context } from './command.js';
import { withStore } from './database.js';
import { print } from './output.js';

export async function deleteCommand(ctx: Context<'delete'>): Promise<number> {
  const { config } = ctx;
  if (!config.yes) {
    throw new UsageError(`deleting session ${config.sessionId} and its whole history cannot be undone: add --yes to confirm`);
  }
  await withStore(ctx, (store) => store.delete(config.sessionId));
  print(ctx, `deleted session ${config.sessionId} and its history`);
  ctx.log.info({ session: config.sessionId }, 'session deleted');
  return 0;
}

export const command: CommandSpec<'delete'> = {
  name: 'delete',
  summary: 'delete a session and its history (needs --yes)',
  logTo: 'stderr',
  run: deleteCommand,
};
