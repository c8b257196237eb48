// Reads the auth directory into a validated snapshot (docs/storage.md "What is backed up").
import { createHash } from 'node:crypto';
import { constants, type Dirent, readdirSync } from 'node:fs';
import { type FileHandle, open, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { sleep, systemClock, type Clock } from './clock.js';
import { tornReason } from './creds.js';
import { UsageError } from './errors.js';
import { type Progress, type ProgressWork, startProgress } from './progress.js';
import { forEachLimited } from './limit.js';
import { invalidNameReason } from './names.js';

/** Largest file stored; real Baileys files stay under ~150 KiB, so anything bigger is not a key file. */
export const MAX_FILE_BYTES = 16 * 1024 * 1024;
/** Files read at once: enough to keep the disk busy, few enough to bound open files and memory. */
const READ_CONCURRENCY = 32;
/** Pauses before re-reading a torn file, ms: Baileys rewrites a file in well under a second. */
export const TORN_RETRY_DELAYS_MS: readonly number[] = [50, 150, 400];

export interface SnapshotFile {
  name: string;
  content: Buffer;
  sha256: Buffer;
  /** The file's metadata as it was read from disk (the audit compares the directory with it later); none for API bodies. */
  stamp?: FileStamp;
}

/**
 * What the audit compares without reading a file (docs/monitoring.md "Protection"): the rule git uses for
 * its index — size, modification and change times in nanoseconds, inode. Any rewrite changes one of them,
 * except one that keeps the size within the file system's timestamp granularity of the read; see `racy`.
 */
export interface FileStamp {
  size: number;
  mtimeNs: bigint;
  ctimeNs: bigint;
  ino: bigint;
  /** The file system's device: a stamp recorded on one volume never matches a file on another. */
  dev: bigint;
}

/**
 * Why a file cannot be stored now (SPEC "Protection", baileys_keeper_held_back_files{reason}):
 * - `torn`: empty, truncated or unparseable after every re-read (Baileys is mid-write);
 * - `unreadable`: it cannot be opened or read (EACCES, EMFILE, EIO…): a failure, retried with backoff;
 * - `too_large`: over the per-file limit (MAX_FILE_BYTES).
 */
export type HeldReason = 'torn' | 'unreadable' | 'too_large';
export const HELD_REASONS: readonly HeldReason[] = ['torn', 'unreadable', 'too_large'];

export interface HeldFile {
  /** Why the file on disk cannot be stored now, in words; the previously stored version is kept. */
  reason: string;
  /** The kind of reason (see HeldReason). */
  kind: HeldReason;
  /** A torn write (counted in baileys_keeper_torn_reads_total): kind === 'torn'. */
  torn: boolean;
}

export interface Snapshot {
  /** Files that can be stored, by name. */
  files: Map<string, SnapshotFile>;
  /** Files that exist but could not be stored: the backup keeps their stored version. */
  held: Map<string, HeldFile>;
}

export interface ReadOptions {
  /** Pauses before each re-read of the files still torn, ms (default TORN_RETRY_DELAYS_MS; empty: no re-read). */
  retryDelaysMs?: readonly number[];
  /** What those pauses are taken on (default the system clock): a loop passes its own. */
  clock?: Clock;
  /** Larger files are held as too large, bytes (default MAX_FILE_BYTES). */
  maxFileBytes?: number;
  /**
   * What a progress line (src/progress.ts: on a terminal only) says of a read of this many files, or null
   * for none; default: none.
   */
  progress?: (files: number) => ProgressWork | null;
}

export function sha256(content: Buffer): Buffer {
  return createHash('sha256').update(content).digest();
}

/** Reads every backed-up file directly inside `dir`; torn files are re-read before they are held. */
export async function readSnapshot(dir: string, options: ReadOptions = {}): Promise<Snapshot> {
  const names = await listCandidates(dir);
  return readNamed(dir, names, options);
}

/** Names of the regular files in `dir` that the backup considers (no links, dirs, devices, dotfiles, *.tmp). */
export async function listCandidates(dir: string): Promise<string[]> {
  let entries: Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (error) {
    throw directoryError(dir, error);
  }
  return candidatesOf(entries);
}

/** listCandidates, synchronously: for the audit, which lstat's the files synchronously too (audit.ts). */
export function listCandidatesSync(dir: string): string[] {
  let entries: Dirent[];
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch (error) {
    throw directoryError(dir, error);
  }
  return candidatesOf(entries);
}

function candidatesOf(entries: Dirent[]): string[] {
  return entries.filter((entry) => entry.isFile() && invalidNameReason(entry.name) === null).map((entry) => entry.name);
}

/** Reads the given names from `dir`; a name that no longer exists is left out (it was deleted). */
export async function readNamed(dir: string, names: Iterable<string>, options: ReadOptions = {}): Promise<Snapshot> {
  const delays = options.retryDelaysMs ?? TORN_RETRY_DELAYS_MS;
  const clock = options.clock ?? systemClock;
  const maxBytes = options.maxFileBytes ?? MAX_FILE_BYTES;
  const snapshot: Snapshot = { files: new Map(), held: new Map() };

  const pending = [...new Set(names)];
  const work = options.progress?.(pending.length) ?? null;
  const progress = work === null ? null : startProgress(work);
  try {
    return await readEach(dir, pending, snapshot, { delays, clock, maxBytes, progress });
  } finally {
    progress?.stop();
  }
}

/** readNamed's reads: every name once, then the torn ones again after each of `delays`; `progress` hears each first read. */
async function readEach(
  dir: string,
  names: string[],
  snapshot: Snapshot,
  { delays, clock, maxBytes, progress }: { delays: readonly number[]; clock: Clock; maxBytes: number; progress: Progress | null },
): Promise<Snapshot> {
  let pending = names;
  for (let attempt = 0; pending.length > 0; attempt++) {
    const torn: string[] = [];
    await forEachLimited(pending, READ_CONCURRENCY, async (name) => {
      const read = await readRegularFile(path.join(dir, name), maxBytes);
      if (attempt === 0) progress?.advance(1, read.kind === 'ok' ? read.content.length : 0);
      if (read.kind === 'gone') {
        snapshot.held.delete(name);
        return;
      }
      if (read.kind === 'unusable') {
        snapshot.held.set(name, { reason: read.reason, kind: read.held, torn: false });
        return;
      }
      const reason = tornReason(name, read.content);
      if (reason === null) {
        snapshot.held.delete(name);
        snapshot.files.set(name, { name, content: read.content, sha256: sha256(read.content), stamp: read.stamp });
      } else {
        snapshot.held.set(name, { reason, kind: 'torn', torn: true });
        torn.push(name);
      }
    });
    const delay = delays[attempt];
    if (torn.length === 0 || delay === undefined) break;
    await sleep(clock, delay);
    pending = torn;
  }
  return snapshot;
}

/** What reading one name found: its bytes and metadata, nothing readable as a regular file there, or why it cannot be used. */
export type ReadResult =
  | { kind: 'ok'; content: Buffer; stamp: FileStamp }
  | { kind: 'gone' }
  | { kind: 'unusable'; reason: string; held: 'unreadable' | 'too_large' };

/**
 * The stamp as one exact string, "dev:ino:size:mtime_ns:ctime_ns" in decimal: what files.stamp stores and
 * what the audit's book keeps per file (a short string costs less memory than the numbers as objects).
 */
export function stampKey(stamp: FileStamp): string {
  return `${stamp.dev}:${stamp.ino}:${stamp.size}:${stamp.mtimeNs}:${stamp.ctimeNs}`;
}

/** The stamp of a bigint stat result. */
export function stampOf(info: { size: bigint; mtimeNs: bigint; ctimeNs: bigint; ino: bigint; dev: bigint }): FileStamp {
  return { size: Number(info.size), mtimeNs: info.mtimeNs, ctimeNs: info.ctimeNs, ino: info.ino, dev: info.dev };
}

/**
 * Reads `file` only if it is a regular file of at most `maxBytes`: never follows a symlink, never
 * blocks on a FIFO or device, never reads past the bound. A missing name, a link, a directory or any
 * other non-regular entry is 'gone'. Shared by backups and by restore's comparisons (dry runs).
 */
export async function readRegularFile(file: string, maxBytes = MAX_FILE_BYTES): Promise<ReadResult> {
  let handle: FileHandle;
  try {
    // O_NOFOLLOW: a file swapped for a symlink after readdir is refused, not followed.
    // O_NONBLOCK: a FIFO swapped in would otherwise block the open forever.
    handle = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { kind: 'gone' };
    if (code === 'ELOOP') return { kind: 'gone' };
    return { kind: 'unusable', reason: `cannot open (${code ?? String(error)})`, held: 'unreadable' };
  }
  try {
    const info = await handle.stat({ bigint: true });
    if (!info.isFile()) return { kind: 'gone' };
    if (info.size > maxBytes)
      return { kind: 'unusable', reason: `the file is ${info.size} bytes, over the ${maxBytes}-byte limit`, held: 'too_large' };
    const content = await handle.readFile();
    if (content.length > maxBytes) return { kind: 'unusable', reason: `the file grew over the ${maxBytes}-byte limit`, held: 'too_large' };
    return { kind: 'ok', content, stamp: stampOf(info) };
  } catch (error) {
    return { kind: 'unusable', reason: `cannot read (${(error as NodeJS.ErrnoException).code ?? String(error)})`, held: 'unreadable' };
  } finally {
    await handle.close();
  }
}

/** Throws a clear error unless `dir` is an existing directory. */
export async function requireDirectory(dir: string): Promise<void> {
  try {
    const info = await stat(dir);
    if (!info.isDirectory()) throw new UsageError(`${dir} is not a directory: point --dir / KEEPER_DIR at the bot's auth directory`);
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw directoryError(dir, error);
  }
}

function directoryError(dir: string, error: unknown): Error {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOENT')
    return new UsageError(`directory ${dir} does not exist: point --dir / KEEPER_DIR at the bot's auth directory`, { cause: error });
  if (code === 'ENOTDIR')
    return new UsageError(`${dir} is not a directory: point --dir / KEEPER_DIR at the bot's auth directory`, { cause: error });
  if (code === 'EACCES')
    return new UsageError(`cannot read directory ${dir}: permission denied; run as a user that can read it`, { cause: error });
  return new UsageError(`cannot read directory ${dir}: ${(error as Error).message}`, { cause: error });
}
