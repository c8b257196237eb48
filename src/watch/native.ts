// An auth directory's own entries watched with the kernel's inotify through Node's fs.watch, without
// chokidar. chokidar lists and lstat's every file of a directory it starts watching and keeps each name
// (with its full path) for as long as it watches: for a fleet of 1,000 sessions of 73 files that is
// ~3 s of CPU at start and ~70 MiB of RSS (docs/performance.md "One watcher for a fleet?"). A session's
// loop needs neither: it only asks which names changed (its audit compares the files by metadata itself).
// Polling, and the fleet's watch of the sessions directory, stay chokidar's (watch/chokidar.ts).
import { type FSWatcher, watch } from 'node:fs';
import { lstat } from 'node:fs/promises';
import path from 'node:path';
import type { DirectoryWatch, WatchHandlers } from './types.js';

/**
 * Watches the entries of the existing directory `target` (a real path, no symlink) natively; resolves once
 * the kernel watches it (existing entries are not reported). Every event names an entry: 'change' for a
 * write or an attribute change, 'renamed' for one that appeared, went away or was renamed (inotify through
 * fs.watch does not say which). The directory itself deleted, moved or replaced is `removed`, once; an event
 * without a name (events may have been lost) is an `error`. Rejects with fs.watch's error (ENOENT, ENOSPC,
 * EMFILE: watch/chokidar.ts nativeWatchUnavailable).
 */
export async function watchEntriesNatively(
  target: string,
  handlers: WatchHandlers,
  ignore?: (name: string) => boolean,
): Promise<DirectoryWatch> {
  const own = path.basename(target);
  let closed = false;
  let gone = false;
  let watcher: FSWatcher | null = null;
  const handle: DirectoryWatch = {
    dir: target,
    backend: 'native',
    async close() {
      closed = true;
      watcher?.close();
    },
  };
  // inotify reports an event of the directory itself (IN_DELETE_SELF, IN_MOVE_SELF: fs.watch's 'rename';
  // IN_ATTRIB: 'change') under the directory's own name, as it would one of an entry of that name. A
  // 'rename' of that name with no such entry inside is the directory going: removed, whatever is at the path
  // now — a directory deleted and recreated at once (`rm -rf auth_info; mkdir auth_info`, what a bot does on
  // logout) may get the same inode number back on ext4, and this watch still sees only the old one. At worst
  // (an entry of that name deleted) the watch is opened again for nothing.
  const checkSelf = async () => {
    // Only ENOENT says there is no such entry: a directory made unreadable meanwhile proves nothing.
    const missing = await lstat(path.join(target, own)).then(
      () => false,
      (error: NodeJS.ErrnoException) => error.code === 'ENOENT',
    );
    if (closed || gone || !missing) return;
    gone = true;
    handlers.removed(handle);
  };
  watcher = watch(target, { persistent: true }, (event, name) => {
    if (closed || gone) return;
    if (name === null) return handlers.error(new Error(`${target}: a change was reported without a name`), handle);
    if (name === own && event === 'rename') void checkSelf();
    if (!ignore?.(name)) handlers.entry(name, event === 'change' ? 'change' : 'renamed', handle);
  });
  watcher.on('error', (error) => {
    if (!closed) handlers.error(error, handle);
  });
  return handle;
}
