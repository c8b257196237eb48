// `rekey`: re-encrypts a session's retained history under the newest configured key.
import type { CommandSpec, Context } from './command.js';
import { withStore } from './database.js';
import { print, printJson } from './output.js';

export async function rekeyCommand(ctx: Context<'rekey'>): Promise<number> {
  const { config } = ctx;
  const log = ctx.log.child({ component: 'rekey', session: config.sessionId });
  const { rewritten, keyId } = await withStore(ctx, (store) => store.rekey(config.sessionId));
  if (config.json) printJson(ctx, { session_id: config.sessionId, key_id: keyId, rewritten });
  else
    print(
      ctx,
      `session ${config.sessionId}: ${rewritten} stored file versions ` +
        `re-encrypted under key id ${keyId}; every retained version now uses it`,
    );
  log.info({ keyId, rewritten }, 'rekey done');
  return 0;
}

export const command: CommandSpec<'rekey'> = {
  name: 'rekey',
  summary: "re-encrypt a session's retained history under the newest key of KEEPER_ENCRYPTION_KEYS",
  logTo: 'stderr',
  run: rekeyCommand,
};
