// `logout`: marks a session logged out by hand (SPEC "Session lifecycle"), only with --yes: the operator's way
// to discard a login the bot did not wipe. Restore then writes no login; the history keeps it.
import { NothingToRestoreError, UsageError } from '../errors.js';
import type { CommandSpec, Context } from './command.js';
import { withLease, withStore } from './database.js';
import { print } from './output.js';

export async function logoutCommand(ctx: Context<'logout'>): Promise<number> {
  const { config } = ctx;
  if (!config.yes) {
    throw new UsageError(
      `logging session ${config.sessionId} out makes restore write no login until the bot pairs again: add --yes to confirm`,
    );
  }
  const result = await withStore(ctx, async (store) => {
    if (!(await store.summary(config.sessionId)))
      throw new NothingToRestoreError(`no session named ${config.sessionId}; 'baileys-keeper status' lists them`);
    return withLease(store, config.sessionId, (lease) => store.logout(config.sessionId, lease));
  });
  if (!result.written) {
    print(ctx, `session ${config.sessionId} is logged out already (generation ${result.generation})`);
    return 0;
  }
  print(
    ctx,
    `session ${config.sessionId} logged out: generation ${result.generation} (${result.deleted} files deleted); ` +
      `restore writes no login until the bot pairs again. The previous login stays in the history: ` +
      `'baileys-keeper restore --session ${config.sessionId} --generation ${result.generation - 1} --force' brings it back`,
  );
  ctx.log.info({ session: config.sessionId, generation: result.generation }, 'session logged out by hand');
  return 0;
}

export const command: CommandSpec<'logout'> = {
  name: 'logout',
  summary: 'mark a session logged out: restore writes no login until it pairs again (needs --yes)',
  logTo: 'stderr',
  run: logoutCommand,
};
