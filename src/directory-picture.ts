// A cheap picture of an auth directory's metadata, to tell whether anything wrote to it between two
// moments without reading a byte of content: `run` compares the picture taken when the bot's process
// group has exited with the one after the final backup (a daemonising supervisor leaves the bot writing
// outside the group).
import type { Dirent } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import path from 'node:path';
import { forEachLimited } from './limit.js';
import { invalidNameReason } from './names.js';

/** lstat calls in flight while taking a picture. */
const STAT_CONCURRENCY = 32;

/**
 * Path (relative to the root) → size, inode, mtime and ctime in ns, of every file a backup would read. The
 * kernel's file times are coarse (a few ms): a same-size rewrite within one tick of a picture is not seen.
 */
export type DirectoryPicture = ReadonlyMap<string, string>;

/**
 * The picture of `root`: its backed-up files (regular files with names the backup keeps, docs/storage.md
 * "What is backed up"), or with `sessions` those of each sub-directory not starting with a dot (a sessions
 * directory). Never follows symbolic links; a directory or file that cannot be read or vanishes is left out,
 * so a picture never throws.
 */
export async function takePicture(root: string, options: { sessions?: boolean } = {}): Promise<DirectoryPicture> {
  const picture = new Map<string, string>();
  const dirs = options.sessions
    ? (await list(root)).filter((entry) => entry.isDirectory() && !entry.name.startsWith('.')).map((entry) => entry.name)
    : [''];
  for (const dir of dirs) {
    const names = (await list(path.join(root, dir)))
      .filter((entry) => entry.isFile() && invalidNameReason(entry.name) === null)
      .map((entry) => path.join(dir, entry.name));
    await forEachLimited(names, STAT_CONCURRENCY, async (name) => {
      const info = await lstat(path.join(root, name), { bigint: true }).catch(() => null);
      if (info?.isFile()) picture.set(name, `${info.size}:${info.ino}:${info.mtimeNs}:${info.ctimeNs}`);
    });
  }
  return picture;
}

/** The paths that differ between two pictures (written, created or deleted in between), sorted. */
export function pictureChanges(before: DirectoryPicture, after: DirectoryPicture): string[] {
  const changed = new Set<string>();
  for (const [name, stamp] of after) if (before.get(name) !== stamp) changed.add(name);
  for (const name of before.keys()) if (!after.has(name)) changed.add(name);
  return [...changed].sort();
}

async function list(dir: string): Promise<Dirent[]> {
  return readdir(dir, { withFileTypes: true }).catch(() => []);
}
