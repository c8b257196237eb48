// Watches the auth directory (chokidar, non-recursive) and reports the names that changed.
import path from 'node:path';
import { watch, type FSWatcher } from 'chokidar';
import { invalidNameReason } from './names.js';

export interface WatchEvents {
  /** A file directly in the directory was added, changed or removed. */
  changed(name: string): void;
  /** The watcher failed; the caller should fall back to a full rescan. */
  error(error: unknown): void;
}

export class DirectoryWatcher {
  private watcher: FSWatcher | null = null;

  constructor(
    private readonly dir: string,
    private readonly events: WatchEvents,
  ) {}

  /** Starts watching; resolves when the watcher is ready (existing files are not reported). */
  async start(): Promise<void> {
    const dir = this.dir;
    const watcher = watch(dir, {
      depth: 0,
      ignoreInitial: true,
      followSymlinks: false,
      // Baileys writes in place; coalescing is done by the debounce, not by chokidar.
      atomic: false,
      awaitWriteFinish: false,
      ignored: (file) => file !== dir && (path.dirname(file) !== dir || invalidNameReason(path.basename(file)) !== null),
    });
    const report = (file: string) => {
      if (path.dirname(file) === dir) this.events.changed(path.basename(file));
    };
    watcher.on('add', report).on('change', report).on('unlink', report);
    watcher.on('error', (error) => this.events.error(error));
    await new Promise<void>((resolve) => watcher.once('ready', () => resolve()));
    this.watcher = watcher;
  }

  async close(): Promise<void> {
    await this.watcher?.close();
    this.watcher = null;
  }
}
