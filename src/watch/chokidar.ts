// The one place chokidar is set up: its options, when a watcher counts as started ("ready", and the errors
// seen before it), the symlink rule, and the native → polling fallback of `--watch auto`. The auth
// directory's watcher (watcher.ts), the fleet's watch of the sessions directory and doctor's probe all
// open their watchers here, so that a change of chokidar or of a rule is made once.
import { realpath } from 'node:fs/promises';
import path from 'node:path';
import { watch, type ChokidarOptions, type FSWatcher } from 'chokidar';
import { describeError } from '../errors.js';
import { watchEntriesNatively } from './native.js';
import type { DirectoryWatch, EntryEvent, WatchBackend, WatchHandlers } from './types.js';

export type { DirectoryWatch, EntryEvent, WatchBackend, WatchHandlers };

/** `--watch` (README "Configuration"): inotify through chokidar, stat polling, or native falling back to polling. */
export type WatchMode = 'native' | 'poll' | 'auto';
export const WATCH_MODES: readonly WatchMode[] = ['native', 'poll', 'auto'];

// errno codes that mean "the kernel will not give this user more inotify instances or watches", or
// that this filesystem has no inotify: polling still works where these happen.
const NATIVE_UNAVAILABLE = new Set(['EMFILE', 'ENFILE', 'ENOSPC', 'ENOSYS', 'EINVAL', 'ENOTSUP', 'EOPNOTSUPP']);

/** True when `error` says native watching cannot work here (as opposed to a passing fault). */
export function nativeWatchUnavailable(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && NATIVE_UNAVAILABLE.has(code);
}

/** Native watching could not start (in `native` mode, or for a reason polling would not fix); `cause` says why. */
export class WatchStartError extends Error {}

export interface WatchSpec {
  backend: WatchBackend;
  /** Polling period when polling, ms (chokidar's default when absent; unused natively). */
  pollIntervalMs?: number;
  /** Names directly inside the directory that are never reported (true: ignore). */
  ignore?: (name: string) => boolean;
}

/**
 * The chokidar options a directory is watched with (the bench measures chokidar with the same): only
 * its own entries, every event as it happens, what `ignore` says ignored. Only current option names
 * (chokidar 6's `backend` / `pollingInterval`, not the deprecated `usePolling` / `interval`).
 */
export function chokidarOptions(dir: string, spec: WatchSpec): ChokidarOptions {
  const ignore = spec.ignore;
  return {
    // Only the directory's own entries: sub-directories (a restore's stage, a session's files) are not ours.
    depth: 0,
    ignoreInitial: true,
    followSymlinks: false,
    // Every unlink and add as it happens: a delete-then-write must not be merged or delayed.
    atomic: false,
    backend: spec.backend,
    ...(spec.pollIntervalMs !== undefined && { pollingInterval: spec.pollIntervalMs, pollingBinaryInterval: spec.pollIntervalMs }),
    ...(ignore && { ignored: (entry: string) => path.dirname(entry) === dir && ignore(path.basename(entry)) }),
  };
}

/**
 * Watches the entries of the existing directory `dir` with one backend; resolves once chokidar is ready
 * (existing entries are not reported). A symlink is followed to the real directory: chokidar would
 * watch the link itself. Rejects with realpath's error, or with the first error chokidar reported
 * before it was ready (one saying native watching is unavailable first).
 */
export async function watchDirectory(dir: string, spec: WatchSpec, handlers: WatchHandlers): Promise<DirectoryWatch> {
  const target = await realpath(dir);
  const watcher: FSWatcher = watch(target, chokidarOptions(target, spec));
  let closed = false;
  const handle: DirectoryWatch = {
    dir: target,
    backend: spec.backend,
    close() {
      closed = true;
      return watcher.close();
    },
  };
  const early: unknown[] = [];
  let ready = false;
  for (const event of ['add', 'addDir', 'change', 'unlink', 'unlinkDir'] as const) {
    watcher.on(event, (entry: string) => {
      if (closed) return;
      if (entry === target) {
        if (event === 'unlinkDir') handlers.removed(handle);
      } else if (path.dirname(entry) === target) handlers.entry(path.basename(entry), event, handle);
    });
  }
  watcher.on('error', (error) => {
    if (!ready) return void early.push(error);
    if (!closed) handlers.error(error, handle);
  });
  await new Promise<void>((resolve) => watcher.once('ready', resolve));
  ready = true;
  if (early.length > 0) {
    await watcher.close();
    throw early.find(nativeWatchUnavailable) ?? early[0];
  }
  return handle;
}

export interface FallbackHandlers extends WatchHandlers {
  /**
   * Native watching is unavailable here and the mode is `auto`: polling from now on, said once per switch.
   * `broken` is null when it happened at start (the watch being opened polls already), or the running
   * watch that failed: it sees nothing more, open again (it will poll).
   */
  fellBack(error: unknown, broken: DirectoryWatch | null): void;
}

/**
 * Opens watches under one `--watch` mode: `native` and `poll` as said; `auto` natively until native
 * watching turns out unavailable (nativeWatchUnavailable: at start or while running), then by polling
 * for the life of this opener.
 */
export class WatchOpener {
  private pollingOnly: boolean;

  constructor(
    private readonly mode: WatchMode,
    /** Polling period when polling, ms. */
    private readonly pollIntervalMs: number,
  ) {
    this.pollingOnly = mode === 'poll';
  }

  /**
   * Watches `dir` (see watchDirectory), falling back to polling where the mode allows. `direct`: natively
   * through fs.watch itself (watch/native.ts: entries' names only, no listing kept) rather than chokidar's
   * native backend; polling is chokidar's either way. Rejects with WatchStartError when native watching
   * cannot start and no fallback applies, else with the error of realpath or of the polling watcher.
   */
  async open(dir: string, handlers: FallbackHandlers, ignore?: (name: string) => boolean, direct = false): Promise<DirectoryWatch> {
    const target = await realpath(dir);
    const routed: WatchHandlers = {
      entry: (name, event, from) => handlers.entry(name, event, from),
      removed: (from) => handlers.removed(from),
      error: (error, from) => {
        if (from.backend === 'native' && this.mode === 'auto' && nativeWatchUnavailable(error)) {
          // Native watching broke while running (a watch limit hit on re-adding): poll from now on.
          this.pollingOnly = true;
          handlers.fellBack(error, from);
        } else handlers.error(error, from);
      },
    };
    const spec = (backend: WatchBackend): WatchSpec => ({ backend, pollIntervalMs: this.pollIntervalMs, ignore });
    if (this.pollingOnly) return watchDirectory(target, spec('polling'), routed);
    try {
      // A directory fs.watch may not watch (EACCES: no read permission) is left to chokidar, as before.
      if (direct) {
        const watch = await watchEntriesNatively(target, routed, ignore).catch((error: NodeJS.ErrnoException) =>
          error.code === 'EACCES' || error.code === 'EPERM' ? null : Promise.reject(error),
        );
        if (watch) return watch;
      }
      return await watchDirectory(target, spec('native'), routed);
    } catch (error) {
      if (this.mode !== 'auto' || !nativeWatchUnavailable(error)) throw new WatchStartError(describeError(error), { cause: error });
      this.pollingOnly = true;
      handlers.fellBack(error, null);
      return watchDirectory(target, spec('polling'), routed);
    }
  }
}
