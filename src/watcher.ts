// Watches the auth directory with chokidar and reports the names that changed. Native watching is one
// inotify watch on the directory, which also reports the directory itself going away; polling is the
// fallback when the kernel will not give us inotify instances or watches (EMFILE / ENOSPC on busy
// nodes), and a mode of its own for filesystems without inotify.
// Directories deleted and recreated (a bot that logged out and pairs again) are followed at once.
import { realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { watch, type ChokidarOptions, type FSWatcher } from 'chokidar';
import { sleep, systemClock, type Clock } from './clock.js';
import { describeError } from './db/errors.js';
import { invalidNameReason } from './names.js';
import { Backoff, type BackoffPolicy } from './retry.js';

/** `--watch` (README "Configuration"): inotify through chokidar, stat polling, or native falling back to polling. */
export type WatchMode = 'native' | 'poll' | 'auto';
export const WATCH_MODES: readonly WatchMode[] = ['native', 'poll', 'auto'];
/** What is watching right now. */
export type WatchBackend = 'native' | 'polling';

/** How often a missing directory is looked for, ms: bounds how late a recreated directory is noticed. */
export const DIR_POLL_MS = 250;
/** Pauses between attempts to watch a directory that is there but cannot be watched: from one poll, doubling, to 30 s. */
const FOLLOW_RETRY: BackoffPolicy = { initialMs: DIR_POLL_MS, factor: 2, maxMs: 30_000 };

// errno codes that mean "the kernel will not give this user more inotify instances or watches", or
// that this filesystem has no inotify: polling still works where these happen.
const NATIVE_UNAVAILABLE = new Set(['EMFILE', 'ENFILE', 'ENOSPC', 'ENOSYS', 'EINVAL', 'ENOTSUP', 'EOPNOTSUPP']);

/** True when `error` says native watching cannot work here (as opposed to a passing fault). */
export function nativeWatchUnavailable(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && NATIVE_UNAVAILABLE.has(code);
}

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

/** A start-up failure of watching (native mode only: auto falls back to polling). */
export class WatchStartError extends Error {}

export class DirectoryWatcher {
  private watcher: FSWatcher | null = null;
  private current: WatchBackend | null = null;
  /** After a native failure `auto` stays on polling for the life of the process. */
  private pollingOnly: boolean;
  /** The directory's inode when watching started: a directory deleted and recreated is a new one. */
  private inode: number | null = null;
  private closed = false;
  private markClosed!: () => void;
  private readonly closing = new Promise<void>((resolve) => (this.markClosed = resolve));
  private following: Promise<void> | null = null;
  /** The directory as watched: --dir with symlinks resolved (a symlinked auth directory is common). */
  private target: string;

  constructor(
    private readonly dir: string,
    private readonly options: WatcherOptions,
    private readonly events: WatchEvents,
    private readonly clock: Clock = systemClock,
  ) {
    this.pollingOnly = options.mode === 'poll';
    this.target = dir;
  }

  /** What is watching now, or null (not started, or the directory is gone). */
  get backend(): WatchBackend | null {
    return this.current;
  }

  /**
   * Starts watching the existing directory; resolves once events are flowing (and `watching` was
   * called). Existing files are not reported. Throws WatchStartError when native watching cannot
   * start in `native` mode, or the error of `stat`/chokidar for anything else.
   */
  async start(): Promise<WatchBackend | null> {
    await this.stop();
    if (this.closed) return null;
    // chokidar watches a symlink itself, not what it points to: watch the real directory.
    this.target = await realpath(this.dir);
    this.inode = (await stat(this.target)).ino;
    let backend: WatchBackend = this.pollingOnly ? 'polling' : 'native';
    let watcher: FSWatcher;
    try {
      watcher = await this.open(backend);
    } catch (error) {
      if (backend === 'polling' || this.options.mode !== 'auto' || !nativeWatchUnavailable(error)) {
        throw backend === 'native' ? new WatchStartError(describeError(error), { cause: error }) : error;
      }
      this.pollingOnly = true;
      this.events.fellBack(error);
      backend = 'polling';
      watcher = await this.open(backend);
    }
    // Closed meanwhile (shutdown), or the directory went away before chokidar was ready (it would then
    // quietly wait on the parent): give up this watcher.
    if (this.closed || !(await this.intact())) {
      await watcher.close();
      if (this.closed) return null;
      throw Object.assign(new Error(`${this.dir} was removed while watching started`), { code: 'ENOENT' });
    }
    this.watcher = watcher;
    this.current = backend;
    this.events.watching(backend);
    return backend;
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
      const backoff = new Backoff(FOLLOW_RETRY);
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
    const watcher = this.watcher;
    this.watcher = null;
    this.current = null;
    await watcher?.close();
  }

  /** A chokidar watcher on the directory, ready; rejects with the first error seen before `ready`. */
  private async open(backend: WatchBackend): Promise<FSWatcher> {
    const dir = this.target;
    const watcher = watch(dir, chokidarOptions(dir, backend, this.options.pollIntervalMs));
    const early: unknown[] = [];
    let ready = false;
    const onFile = (entry: string) => {
      if (path.dirname(entry) === dir) this.events.changed(path.basename(entry));
    };
    watcher.on('add', onFile).on('change', onFile).on('unlink', onFile);
    watcher.on('unlinkDir', (entry) => {
      if (entry === dir && this.watcher === watcher) void this.follow();
    });
    watcher.on('error', (error) => {
      if (!ready) return void early.push(error);
      if (this.watcher !== watcher) return;
      if (backend === 'native' && this.options.mode === 'auto' && nativeWatchUnavailable(error)) {
        // Native watching broke while running (a watch limit hit on re-adding): poll from now on.
        this.pollingOnly = true;
        this.events.fellBack(error);
        void this.follow('switching');
        return;
      }
      this.events.error(error);
    });
    await new Promise<void>((resolve) => watcher.once('ready', resolve));
    ready = true;
    if (early.length > 0) {
      await watcher.close();
      throw early.find(nativeWatchUnavailable) ?? early[0];
    }
    return watcher;
  }
}

/**
 * The chokidar options the keeper watches `dir` with (the bench measures chokidar with the same):
 * only the directory's own entries, every event as it happens, names never backed up ignored.
 */
export function chokidarOptions(dir: string, backend: WatchBackend, pollIntervalMs: number): ChokidarOptions {
  return {
    // Only the directory's own entries: sub-directories (a restore's stage) are never backed up.
    depth: 0,
    ignoreInitial: true,
    followSymlinks: false,
    // Every unlink and add as it happens: a delete-then-write must not be merged or delayed.
    atomic: false,
    backend: backend === 'polling' ? 'polling' : 'native',
    pollingInterval: pollIntervalMs,
    pollingBinaryInterval: pollIntervalMs,
    ignored: (entry: string) => path.dirname(entry) === dir && invalidNameReason(path.basename(entry)) !== null,
  };
}
