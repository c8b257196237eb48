// Keeps a copy of a directory's files before a restore replaces them: the stale login a rolled-back
// disk held (docs/reliability.md "Never backwards") stays on the same volume for the operator to inspect.
import { constants } from 'node:fs';
import { copyFile, mkdir, open } from 'node:fs/promises';
import path from 'node:path';
import { forEachLimited } from './limit.js';
import { listCandidates } from './snapshot.js';

/**
 * The prefix of a set-aside copy inside the auth directory. Dotted, so backups skip it; it is not the
 * restore stage's prefix, so start-up recovery (recoverInterruptedRestore) never touches it.
 */
export const ASIDE_PREFIX = '.baileys-keeper-stale-';
/** Files copied at once. */
const COPY_CONCURRENCY = 16;

/**
 * Copies every file a backup would consider (regular, not dotted, not *.tmp) from `dir` into a new
 * directory `dir/.baileys-keeper-stale-<UTC time>` (mode 0700, files 0600, fsynced) and returns its path.
 * Inside the directory rather than next to it: the auth directory is often a volume mount whose parent
 * is read-only or not persistent. Throws (nothing replaced yet) when the copy cannot be written.
 */
export async function setAside(dir: string, now: Date = new Date()): Promise<string> {
  const stamp = now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  let aside = path.join(dir, `${ASIDE_PREFIX}${stamp}`);
  for (let n = 2; ; n++) {
    try {
      await mkdir(aside, { mode: 0o700 });
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      aside = path.join(dir, `${ASIDE_PREFIX}${stamp}-${n}`);
    }
  }
  const names = await listCandidates(dir);
  await forEachLimited(names, COPY_CONCURRENCY, async (name) => {
    const target = path.join(aside, name);
    await copyFile(path.join(dir, name), target, constants.COPYFILE_EXCL);
    const handle = await open(target, constants.O_RDONLY);
    try {
      await handle.chmod(0o600);
      await handle.sync();
    } finally {
      await handle.close();
    }
  });
  const handle = await open(aside, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
  return aside;
}
