// Watches the auth directory and reports the names that changed. One inotify watch on the directory
// (node:fs watch) reports every write, creation, deletion and rename of its entries, unthrottled.
// chokidar, tried first, keeps a watcher per file (~70 MiB for 10,000 files) and drops a second
// event of a file within 50-100 ms, which could hide a write until the next full rescan.
import { watch, type FSWatcher } from 'node:fs';
import { stat } from 'node:fs/promises';
import { invalidNameReason } from './names.js';

export interface WatchEvents {
  /** A file directly in the directory was added, changed or removed. */
  changed(name: string): void;
  /** Events may have been lost (watcher error, an event without a name): rescan everything. */
  error(error: unknown): void;
}

export class DirectoryWatcher {
  private watcher: FSWatcher | null = null;
  /** The directory's inode when watching started: a directory deleted and recreated is a new one. */
  private inode: number | null = null;

  constructor(
    private readonly dir: string,
    private readonly events: WatchEvents,
  ) {}

  /** Starts watching (the directory must exist). Existing files are not reported. */
  async start(): Promise<void> {
    await this.close();
    this.inode = (await stat(this.dir)).ino;
    const watcher = watch(this.dir, { persistent: true }, (_event, filename) => {
      if (!filename) return this.events.error(new Error('the watcher reported an event without a file name'));
      if (invalidNameReason(filename) === null) this.events.changed(filename);
    });
    watcher.on('error', (error) => this.events.error(error));
    this.watcher = watcher;
  }

  /** True while the watched directory is still the one at the path (not deleted, not replaced). */
  async intact(): Promise<boolean> {
    const info = await stat(this.dir).catch(() => null);
    return info !== null && info.isDirectory() && info.ino === this.inode;
  }

  async close(): Promise<void> {
    this.watcher?.close();
    this.watcher = null;
  }
}
