// The audit (SPEC "Protection"): compares the auth directory with what the head holds, independently of
// watch events, by metadata first — contents only where metadata changed. It finds what a missed event, a
// dropped event or an outside write left behind, at the cost of one readdir and one lstat per file.
import { type BigIntStats, lstatSync } from 'node:fs';
import path from 'node:path';
import { type FileStamp, listCandidatesSync, type SnapshotFile, stampKey, stampOf } from './snapshot.js';
/**
 * A file modified this close to the moment it was read may change again within the same timestamp tick
 * and keep its stamp ("racily clean" in git's index): its stamp proves nothing, so the next audit reads
 * it. 2 s covers the coarsest common timestamp granularity (FAT, some network file systems); ext4, xfs
 * and overlayfs tick in milliseconds or less.
 */
export const RACY_WINDOW_NS = 2_000_000_000n;

/** lstat calls between two yields to the event loop (a few ms on a local disk, far more on NFS). */
const YIELD_EVERY_FILES = 512;

/**
 * Whether `stamp`, taken by a read that began at `readStartedNs` (wall time, ns since the epoch), proves
 * what was read: false when the file was modified within RACY_WINDOW_NS of the read (it may have changed
 * again within the same timestamp tick, keeping its stamp).
 */
export function trustworthy(stamp: FileStamp, readStartedNs: bigint): boolean {
  return stamp.mtimeNs < readStartedNs - RACY_WINDOW_NS && stamp.ctimeNs < readStartedNs - RACY_WINDOW_NS;
}

/**
 * What this process knows the head holds: for each file, its metadata at the moment its stored content
 * was read, as one short string (stampKey: ~70 bytes a file, no contents); empty until a full comparison
 * has been stored or the head's recorded metadata was loaded (prime), and rebuilt by each full comparison.
 */
export class StampBook {
  /** name → stampKey of what the head holds, null where not known; racy names are in `racy` too. */
  private readonly keys = new Map<string, string | null>();
  /** Names whose stamp was taken within RACY_WINDOW_NS of their last modification: read them again. */
  private readonly racy = new Set<string>();
  private complete = false;

  /** True once a whole-directory comparison was stored and nothing since made the book unreliable. */
  get primed(): boolean {
    return this.complete;
  }

  /** Files recorded. */
  get size(): number {
    return this.keys.size;
  }

  /**
   * Records what a stored backup read: `files` are now in the head exactly as read, `absent` names are
   * not (deleted, or held back). `whole`: the backup read the whole directory, so the book is replaced.
   * `readStartedNs` is the wall time (ns since the epoch) at which the read began.
   */
  record(files: Iterable<SnapshotFile>, absent: Iterable<string>, whole: boolean, readStartedNs: bigint): void {
    if (whole) this.clear();
    for (const name of absent) this.forget(name);
    for (const file of files) {
      if (!file.stamp) continue;
      this.keys.set(file.name, stampKey(file.stamp));
      if (trustworthy(file.stamp, readStartedNs)) this.racy.delete(file.name);
      else this.racy.add(file.name);
    }
    if (whole) this.complete = true;
  }

  /**
   * Replaces the book with what the head records (store.headStamps): every name the head holds, with the
   * stampKey of the metadata its stored content was read with, or null where that is not known (such a name
   * never matches, so it is read). Used before the first comparison after the lease was acquired.
   */
  prime(stamps: ReadonlyMap<string, string | null>): void {
    this.clear();
    for (const [name, key] of stamps) this.keys.set(name, key);
    this.complete = true;
  }

  /** Forgets everything: the next comparison must read the whole directory (another writer, a new directory). */
  invalidate(): void {
    this.clear();
    this.complete = false;
  }

  /** Whether `name` on disk, with stamp `stamp`, is known to be stored as it is. */
  matches(name: string, stamp: FileStamp): boolean {
    const key = this.keys.get(name);
    return key != null && !this.racy.has(name) && key === stampKey(stamp);
  }

  names(): IterableIterator<string> {
    return this.keys.keys();
  }

  private clear(): void {
    this.keys.clear();
    this.racy.clear();
  }

  private forget(name: string): void {
    this.keys.delete(name);
    this.racy.delete(name);
  }
}

export interface AuditResult {
  /** Names whose file differs from the head or may (new, changed, racy) or that the head holds and the disk no longer does. */
  differ: string[];
  /** Files looked at. */
  files: number;
}

/** The wall clock in ns since the epoch, to compare with file times (the kernel's clock, never a test's). */
export function wallNowNs(): bigint {
  return BigInt(Date.now()) * 1_000_000n;
}

/**
 * Compares `dir` with `book` by metadata: one readdir and one lstat per candidate file, no contents.
 * Throws what listCandidatesSync throws when the directory cannot be read (a UsageError naming the cause).
 *
 * The listing and the lstat calls are synchronous, one after the other: a fleet audits every file of every
 * session each --interval, and an lstat through libuv's thread pool costs about 4× the CPU of a direct one
 * (measured: 73,000 files in 1.25 s of CPU through promises, 0.3 s synchronously; docs/performance.md), the
 * hand-over to a pool thread and back included. One session's files take well under a millisecond of the
 * event loop on a local file system.
 */
export async function auditDirectory(dir: string, book: StampBook): Promise<AuditResult> {
  const names = listCandidatesSync(dir);
  const differ: string[] = [];
  const present = new Set(names);
  for (const [i, name] of names.entries()) {
    // A large session on a slow (network) file system: let the event loop breathe between chunks.
    if (i > 0 && i % YIELD_EVERY_FILES === 0) await new Promise((resolve) => setImmediate(resolve));
    let info: BigIntStats | undefined;
    try {
      // `name` is a listed entry (no separator): joined without path.join's normalising.
      info = lstatSync(`${dir}${path.sep}${name}`, { bigint: true, throwIfNoEntry: false });
    } catch {
      info = undefined; // unreadable now: the backup reads it and says why
    }
    // Gone since the readdir, or no longer a regular file: the backup reads it and decides.
    if (!info?.isFile() || !book.matches(name, stampOf(info))) differ.push(name);
  }
  for (const name of book.names()) if (!present.has(name)) differ.push(name);
  return { differ, files: names.length };
}
