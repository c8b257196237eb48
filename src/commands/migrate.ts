// `migrate`: creates or upgrades the schema and says at which version it is.
import type { CommandSpec, Context } from './command.js';
import { withStore } from './database.js';
import { print, printJson } from './output.js';

export async function migrateCommand(ctx: Context<'migrate'>): Promise<number> {
  const { config } = ctx;
  const schema = await withStore(ctx, async (_store, _db, schema) => schema);
  if (config.json) printJson(ctx, { schema: config.schema, version: schema.version, applied: schema.applied });
  else
    print(
      ctx,
      `schema ${config.schema} is at version ` +
        `${schema.version}${schema.applied.length ? ` (applied ${schema.applied.join(', ')})` : ' (up to date)'}`,
    );
  return 0;
}

export const command: CommandSpec<'migrate'> = {
  name: 'migrate',
  summary: 'create or upgrade the database schema',
  logTo: 'stderr',
  run: migrateCommand,
};
