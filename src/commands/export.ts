// `export`: a generation (the newest, or --generation / --at) as a tar, to stdout or --output.
import { packArchive } from '../archive.js';
import { writeFileAtomically } from '../atomic-file.js';
import { NothingToRestoreError, UsageError } from '../errors.js';
import type { CommandSpec, Context } from './command.js';
import { withStore } from './database.js';
import { formatBytes } from './output.js';

export async function exportCommand(ctx: Context<'export'>): Promise<number> {
  const { config } = ctx;
  const log = ctx.log.child({ component: 'export', session: config.sessionId });
  if (config.output === null && (ctx.stdout as { isTTY?: boolean }).isTTY) {
    throw new UsageError('refusing to write a tar archive to a terminal: redirect stdout to a file or use --output FILE');
  }
  const { generation: point, files } = await withStore(
    ctx,
    async (store) => {
      const loaded = await store.loadPoint(config.sessionId, { generation: config.generation, at: config.at });
      if (!loaded) throw new NothingToRestoreError(`session ${config.sessionId} has no backup to export`);
      return loaded;
    },
    0,
    'read',
  );
  const tar = await packArchive(files, point.createdAt);
  if (config.output !== null) {
    await writeFileAtomically(config.output, tar).catch((error: NodeJS.ErrnoException) => {
      throw new UsageError(`cannot write --output ${config.output} (${error.code ?? error.message}): choose a writable path`, {
        cause: error,
      });
    });
  } else {
    await new Promise<void>((resolve, reject) => ctx.stdout.write(tar, (error) => (error ? reject(error) : resolve())));
  }
  log.info(
    { generation: point.generation, files: files.length, bytes: tar.length },
    `exported generation ${point.generation} (${files.length} files, ${formatBytes(tar.length)})`,
  );
  return 0;
}

export const command: CommandSpec<'export'> = {
  name: 'export',
  summary: 'write a generation as a tar to stdout or --output FILE',
  logTo: 'stderr',
  run: exportCommand,
};
