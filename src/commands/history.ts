// `history`: a session's retained generations and the retention schedule that keeps them.
import { sessionHistoryJson } from '../session-history.js';
import { describeRetention } from '../store/retention.js';
import type { CommandSpec, Context } from './command.js';
import { withStore } from './database.js';
import { formatBytes, print, printJson, table } from './output.js';

export async function historyCommand(ctx: Context<'history'>): Promise<number> {
  const { config } = ctx;
  const { generations, now } = await withStore(
    ctx,
    async (store) => ({ generations: await store.history(config.sessionId), now: await store.databaseNow() }),
    0,
    'read',
  );
  if (config.json) {
    printJson(ctx, sessionHistoryJson(config.sessionId, config.retention, generations));
  } else {
    // The schedule as configured for this command (KEEPER_RETENTION / --retention): set it as the writers have it.
    for (const line of describeRetention(generations, config.retention, now)) print(ctx, line);
    print(
      ctx,
      table(
        ['GENERATION', 'TIME', 'CHANGED', 'DELETED', 'FILES', 'BYTES', 'REASON'],
        generations.map((g) => [
          String(g.generation),
          g.createdAt.toISOString(),
          String(g.filesChanged),
          String(g.filesDeleted),
          String(g.totalFiles),
          formatBytes(g.totalBytes),
          g.reason,
        ]),
      ),
    );
  }
  return 0;
}

export const command: CommandSpec<'history'> = {
  name: 'history',
  summary: "list a session's retained generations",
  logTo: 'stderr',
  run: historyCommand,
};
