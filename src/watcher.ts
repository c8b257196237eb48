// Watches the auth directory and reports the names that changed; chokidar and the native → polling rule
// are watch/chokidar.ts's. Native watching is one inotify watch on the directory, which also reports the
// directory itself going away; polling is the fallback when the kernel will not give us inotify instances
// or watches (EMFILE / ENOSPC on busy nodes), and a mode of its own for filesystems without inotify.
// Directories deleted and recreated (a bot that logged out and pairs again) are followed at once.
import { stat } from 'node:fs/promises';
import { sleep, systemClock, type Clock } from './clock.js';
import { describeError } from './errors.js';
import { invalidNameReason } from './names.js';
import { Backoff, RETRY_BACKOFF } from './retry.js';
import { type DirectoryWatch, WatchOpener, type WatchBackend, type WatchMode, WatchStartError } from './watch/chokidar.js';

// The names the loop and the settings have always taken from here.
export { WATCH_MODES, type WatchBackend, type WatchMode, WatchStartError } from './watch/chokidar.js';

/** How often a missing directory is looked for, ms: bounds how late a recreated directory is noticed. */
export const DIR_POLL_MS = 250;

/** Names never backed up (names.ts) are not watched for either. */
const notBackedUp = (name: string) => invalidNameReason(name) !== null;

export interface WatchEvents {
  /** A file directly in the directory was added, changed or removed (its base name). */
  changed(name: string): void;
  /** The directory is being watched (at start, or again after it reappeared): rescan it now. */
  watching(backend: WatchBackend): void;
  /**
   * Nothing is watched until `watching` follows: the directory went away ('removed'), or watching
   * is being restarted in another way ('switching').
   */
  lost(reason: 'removed' | 'switching'): void;
  /** Native watching failed and `auto` switched to polling; said once per switch. */
  fellBack(error: unknown): void;
  /** Events may have been lost (a watcher error): rescan everything. */
  error(error: unknown): void;
}

export interface WatcherOptions {
  mode: WatchMode;
  /** Polling period when polling, ms. */
  pollIntervalMs: number;
}

export class DirectoryWatcher {
  private watch: DirectoryWatch | null = null;
  private readonly opener: WatchOpener;
  /** The directory's inode when watching started: a directory deleted and recreated is a new one. */
  private inode: number | null = null;
  private closed = false;
  private markClosed!: () => void;
  private readonly closing = new Promise<void>((resolve) => (this.markClosed = resolve));
  private following: Promise<void> | null = null;

  constructor(
    private readonly dir: string,
    options: WatcherOptions,
    private readonly events: WatchEvents,
    private readonly clock: Clock = systemClock,
  ) {
    this.opener = new WatchOpener(options.mode, options.pollIntervalMs);
  }

  /** What is watching now, or null (not started, or the directory is gone). */
  get backend(): WatchBackend | null {
    return this.watch?.backend ?? null;
  }

  /**
   * Starts watching the existing directory; resolves once events are flowing (and `watching` was
   * called). Existing files are not reported. Throws WatchStartError when native watching cannot
   * start in `native` mode, or the error of `stat`/chokidar for anything else.
   */
  async start(): Promise<WatchBackend | null> {
    await this.stop();
    if (this.closed) return null;
    this.inode = (await stat(this.dir)).ino;
    const watch = await this.opener.open(
      this.dir,
      {
        entry: (name, event) => {
          if (event === 'add' || event === 'change' || event === 'unlink' || event === 'renamed') this.events.changed(name);
        },
        removed: (from) => {
          if (from === this.watch) void this.follow();
        },
        error: (error, from) => {
          if (from === this.watch) this.events.error(error);
        },
        fellBack: (error, broken) => {
          this.events.fellBack(error);
          // Native watching broke while running (a watch limit hit on re-adding): poll from now on.
          if (broken !== null && broken === this.watch) void this.follow('switching');
        },
      },
      notBackedUp,
      // Names are all the loop needs: the kernel's watch directly, without chokidar's listing (watch/native.ts).
      true,
    );
    // Closed meanwhile (shutdown), or the directory went away before chokidar was ready (it would then
    // quietly wait on the parent): give up this watcher.
    if (this.closed || !(await this.intact())) {
      await watch.close();
      if (this.closed) return null;
      throw Object.assign(new Error(`${this.dir} was removed while watching started`), { code: 'ENOENT' });
    }
    this.watch = watch;
    this.events.watching(watch.backend);
    return watch.backend;
  }
  /** True while the watched directory is still the one at the path (not deleted, not replaced). */
  async intact(): Promise<boolean> {
    const info = await stat(this.dir).catch(() => null);
    return info?.isDirectory() === true && info.ino === this.inode;
  }

  /**
   * The directory went away or was replaced: reports `lost`, waits for a directory at the path
   * again, and watches it (reporting `watching`). One follow at a time; failures to start are
   * reported through `error` and retried.
   */
  follow(reason: 'removed' | 'switching' = 'removed'): Promise<void> {
    this.following ??= (async () => {
      // Reported before the old watcher is closed (which takes a while): the loss dates from now.
      this.events.lost(reason);
      await this.stop();
      const backoff = new Backoff(RETRY_BACKOFF);
      while (!this.closed) {
        const info = await stat(this.dir).catch(() => null);
        if (info?.isDirectory()) {
          try {
            await this.start();
            return;
          } catch (error) {
            // Gone again before it could be watched: wait for it as before.
            if ((error as { code?: unknown }).code !== 'ENOENT') {
              // Whatever the cause (no inotify in native mode, no permission), nothing watches: a failed start.
              this.events.error(error instanceof WatchStartError ? error : new WatchStartError(describeError(error), { cause: error }));
              await this.pause(backoff.fail());
              continue;
            }
          }
        }
        await this.pause(DIR_POLL_MS);
      }
    })().finally(() => (this.following = null));
    return this.following;
  }

  /** Waits `ms`, or less if the watcher is closed meanwhile. */
  private pause(ms: number): Promise<void> {
    return Promise.race([sleep(this.clock, ms), this.closing]);
  }

  /** Stops watching for good (a follow in progress ends without watching again). */
  async close(): Promise<void> {
    this.closed = true;
    this.markClosed();
    await this.stop();
    await this.following;
  }

  private async stop(): Promise<void> {
    const watch = this.watch;
    this.watch = null;
    await watch?.close();
  }
}
