// `export` and `import`: a generation as a tar, and a tar as a new generation.
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { packArchive, readArchive } from '../archive.js';
import { writeFileAtomically } from '../atomic-file.js';
import { NothingToRestoreError, UsageError } from '../errors.js';
import { formatBytes, withLease, withStore, type Context } from './context.js';
import { reportBackup, thinHistory } from './backup.js';

export async function exportCommand(ctx: Context): Promise<number> {
  const { config } = ctx;
  const log = ctx.log.child({ component: 'export', session: config.sessionId });
  if (config.output === null && (ctx.stdout as { isTTY?: boolean }).isTTY) {
    throw new UsageError('refusing to write a tar archive to a terminal: redirect stdout to a file or use --output FILE');
  }
  const { generation: point, files } = await withStore(ctx, async (store) => {
    const loaded = await store.loadPoint(config.sessionId, { generation: config.generation, at: config.at });
    if (!loaded) throw new NothingToRestoreError(`session ${config.sessionId} has no backup to export`);
    return loaded;
  });
  const tar = await packArchive(files, point.createdAt);
  if (config.output !== null) {
    await writeFileAtomically(config.output, tar).catch((error: NodeJS.ErrnoException) => {
      throw new UsageError(`cannot write --output ${config.output} (${error.code ?? error.message}): choose a writable path`, { cause: error });
    });
  } else {
    await new Promise<void>((resolve, reject) => ctx.stdout.write(tar, (error) => (error ? reject(error) : resolve())));
  }
  log.info({ generation: point.generation, files: files.length, bytes: tar.length }, `exported generation ${point.generation} (${files.length} files, ${formatBytes(tar.length)})`);
  return 0;
}

export async function importCommand(ctx: Context): Promise<number> {
  const { config } = ctx;
  const log = ctx.log.child({ component: 'import', session: config.sessionId });
  const snapshot = await readArchive(await openInput(ctx));
  log.info({ files: snapshot.files.size }, 'archive read and checked');
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

async function openInput(ctx: Context): Promise<Readable> {
  const file = ctx.config.input;
  if (file === null) {
    if ((ctx.stdin as { isTTY?: boolean }).isTTY) throw new UsageError('no archive on stdin: pipe a tar in (baileys-keeper import < session.tar) or use --input FILE');
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
