// `import`: a tar (from stdin or --input) stored as a new generation, under the session's lease.
import { createReadStream, fstatSync } from 'node:fs';
import { pipeline, type Readable, Transform } from 'node:stream';
import { readArchive } from '../archive.js';
import { UsageError } from '../errors.js';
import { type Progress, startProgress } from '../progress.js';
import { quoteName } from '../names.js';
import { reportBackup, thinHistory } from './backup.js';
import type { CommandSpec, Context } from './command.js';
import { withLease, withStore } from './database.js';

/** Skipped entries named in the warning; the rest are counted. */
const SKIPPED_NAMED = 5;

export async function importCommand(ctx: Context<'import'>): Promise<number> {
  const { config } = ctx;
  const log = ctx.log.child({ component: 'import', session: config.sessionId });
  const input = await openInput(ctx);
  const progress = startProgress({ label: 'reading the archive', count: null, bytes: sizeOf(input), unit: null });
  const snapshot = await readArchive(counted(input, progress)).finally(() => progress.stop());
  if (snapshot.skipped.length > 0)
    log.warn(
      { skipped: snapshot.skipped.length },
      `left out ${snapshot.skipped.length} archive entries that a backup never stores (dotfiles, *.tmp): ` +
        `${snapshot.skipped.slice(0, SKIPPED_NAMED).map(quoteName).join(', ')}${snapshot.skipped.length > SKIPPED_NAMED ? ', …' : ''}`,
    );
  log.info({ files: snapshot.files.size, directory: snapshot.directory }, 'archive read and checked');
  const result = await withStore(ctx, (store) =>
    withLease(store, config.sessionId, (lease) =>
      // The archive is the whole directory: stored files it lacks are recorded as deleted.
      store.backup(config.sessionId, snapshot, { lease, allowReplace: config.allowReplace, reason: 'import', scope: null }),
    ).then(async (outcome) => {
      await thinHistory(store, config.retention, config.sessionId, log);
      return outcome;
    }),
  );
  return reportBackup(ctx, log, result, snapshot);
}

/** The size of what `input` reads, bytes, when it is a regular file (--input, or stdin redirected from one); else null. */
function sizeOf(input: Readable): number | null {
  const fd = (input as { fd?: unknown }).fd;
  if (typeof fd !== 'number') return null;
  try {
    const info = fstatSync(fd);
    return info.isFile() ? info.size : null;
  } catch {
    return null; // no size to show: the line counts the bytes without a total
  }
}

/** `input`, with `progress` told the bytes as they pass while it is drawn; `input` itself otherwise. */
function counted(input: Readable, progress: Progress): Readable {
  if (!progress.shown) return input;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      progress.advance(0, chunk.length);
      done(null, chunk);
    },
  });
  // A read error reaches the reader of `counter` (pipeline destroys it with the error).
  pipeline(input, counter, () => undefined);
  return counter;
}

async function openInput(ctx: Context<'import'>): Promise<Readable> {
  const file = ctx.config.input;
  if (file === null) {
    if ((ctx.stdin as { isTTY?: boolean }).isTTY)
      throw new UsageError('no archive on stdin: pipe a tar in (baileys-keeper import < session.tar) or use --input FILE');
    return ctx.stdin;
  }
  const stream = createReadStream(file);
  await new Promise<void>((resolve, reject) => {
    stream.once('open', () => resolve());
    stream.once('error', (error: NodeJS.ErrnoException) =>
      reject(new UsageError(`cannot read --input ${file} (${error.code ?? error.message}): check the path`, { cause: error })),
    );
  });
  return stream;
}

export const command: CommandSpec<'import'> = {
  name: 'import',
  summary: 'store a tar from stdin or --input FILE as a new generation',
  logTo: 'stderr',
  run: importCommand,
};
