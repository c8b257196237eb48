// `export`: a generation (the newest, or --generation / --at) as a tar, to stdout or --output.
import { packArchive } from '../archive.js';
import { writeFileAtomically } from '../atomic-file.js';
import type { Writable } from 'node:stream';
import { NothingToRestoreError, UsageError } from '../errors.js';
import { type Progress, startProgress } from '../progress.js';
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
  const progress = startProgress({ label: `exporting generation ${point.generation}`, count: null, bytes: tar.length, unit: null });
  if (config.output !== null) {
    await writeFileAtomically(config.output, tar).catch((error: NodeJS.ErrnoException) => {
      throw new UsageError(`cannot write --output ${config.output} (${error.code ?? error.message}): choose a writable path`, {
        cause: error,
      });
    });
    progress.advance(0, tar.length);
  } else {
    await writeOut(ctx.stdout, tar, progress);
  }
  progress.stop();
  log.info(
    { generation: point.generation, files: files.length, bytes: tar.length },
    `exported generation ${point.generation} (${files.length} files, ${formatBytes(tar.length)})`,
  );
  return 0;
}

/** Bytes written to stdout per step while a progress line is drawn (a pipe takes them as fast as its reader reads). */
const PROGRESS_STEP_BYTES = 256 * 1024;

/**
 * Writes `tar` to `out`, resolving once it is handed on; in steps of PROGRESS_STEP_BYTES that advance
 * `progress` while it is drawn, else in one write as always.
 */
async function writeOut(out: Writable, tar: Buffer, progress: Progress): Promise<void> {
  const step = progress.shown ? PROGRESS_STEP_BYTES : tar.length;
  for (let at = 0; at < tar.length || at === 0; at += step) {
    const chunk = tar.subarray(at, at + step);
    await new Promise<void>((resolve, reject) => out.write(chunk, (error) => (error ? reject(error) : resolve())));
    progress.advance(0, chunk.length);
  }
}

export const command: CommandSpec<'export'> = {
  name: 'export',
  summary: 'write a generation as a tar to stdout or --output FILE',
  logTo: 'stderr',
  run: exportCommand,
};
