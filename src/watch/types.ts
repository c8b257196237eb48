// The shapes of a directory watch, whichever implementation opens it (watch/chokidar.ts, watch/native.ts).

/** What is watching right now. */
export type WatchBackend = 'native' | 'polling';

/**
 * What happened to an entry directly inside a watched directory: chokidar's event names, and 'renamed'
 * from a direct native watch (watch/native.ts), for an entry that appeared, went away or was renamed.
 */
export type EntryEvent = 'add' | 'addDir' | 'change' | 'unlink' | 'unlinkDir' | 'renamed';

/** One open watch of a directory's own entries. */
export interface DirectoryWatch {
  /** The directory as watched: the path asked for with symlinks resolved. */
  readonly dir: string;
  readonly backend: WatchBackend;
  /** Stops it; no handler is called afterwards. Resolves once the watcher has let go of everything. */
  close(): Promise<void>;
}

/** Told what a watch sees; each call names the watch, so that a caller can ignore one it has replaced. */
export interface WatchHandlers {
  /** An entry directly inside the directory: its base name and what happened to it. */
  entry(name: string, event: EntryEvent, from: DirectoryWatch): void;
  /** The watched directory itself went away (deleted or moved): this watch sees nothing more. */
  removed(from: DirectoryWatch): void;
  /** A watcher error after start: events may have been lost. */
  error(error: unknown, from: DirectoryWatch): void;
}
