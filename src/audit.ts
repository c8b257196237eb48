// The audit (SPEC "Protection"): compares the auth directory with what the head holds, independently of
// watch events, by metadata first — contents only where metadata changed. It finds what a missed event, a
// dropped event or an outside write left behind, at the cost of one readdir and one lstat per file.
import { lstat } from 'node:fs/promises';
import path from 'node:path';
import { forEachLimited } from './limit.js';
import { type FileStamp, listCandidates, type SnapshotFile, stampOf } from './snapshot.js';

/** lstat calls at once: enough to hide latency, few enough to leave the process its descriptors. */
const STAT_CONCURRENCY = 16;
/**
 * A file modified this close to the moment it was read may change again within the same timestamp tick
 * and keep its stamp ("racily clean" in git's index): its stamp proves nothing, so the next audit reads
 * it. 2 s covers the coarsest common timestamp granularity (FAT, some network file systems); ext4, xfs
 * and overlayfs tick in milliseconds or less.
 */
export const RACY_WINDOW_NS = 2_000_000_000n;

interface Entry {
  stamp: FileStamp;
  /** The stamp was taken within RACY_WINDOW_NS of the file's last modification: read it again. */
  racy: boolean;
}

/**
 * What this process knows the head holds: for each file, its metadata at the moment its stored content
 * was read. Kept in memory only (per file a few numbers, no contents); empty until a full comparison has
 * been stored, and rebuilt by each one.
 */
export class StampBook {
  private readonly entries = new Map<string, Entry>();
  private complete = false;

  /** True once a whole-directory comparison was stored and nothing since made the book unreliable. */
  get primed(): boolean {
    return this.complete;
  }

  /** Files recorded. */
  get size(): number {
    return this.entries.size;
  }

  /**
   * Records what a stored backup read: `files` are now in the head exactly as read, `absent` names are
   * not (deleted, or held back). `whole`: the backup read the whole directory, so the book is replaced.
   * `readStartedNs` is the wall time (ns since the epoch) at which the read began.
   */
  record(files: Iterable<SnapshotFile>, absent: Iterable<string>, whole: boolean, readStartedNs: bigint): void {
    if (whole) this.entries.clear();
    for (const name of absent) this.entries.delete(name);
    for (const file of files) {
      if (!file.stamp) continue;
      const racy = file.stamp.mtimeNs >= readStartedNs - RACY_WINDOW_NS || file.stamp.ctimeNs >= readStartedNs - RACY_WINDOW_NS;
      this.entries.set(file.name, { stamp: file.stamp, racy });
    }
    if (whole) this.complete = true;
  }

  /** Forgets everything: the next comparison must read the whole directory (another writer, a new directory). */
  invalidate(): void {
    this.entries.clear();
    this.complete = false;
  }

  /** Whether `name` on disk, with stamp `stamp`, is known to be stored as it is. */
  matches(name: string, stamp: FileStamp): boolean {
    const entry = this.entries.get(name);
    if (!entry || entry.racy) return false;
    const known = entry.stamp;
    return known.size === stamp.size && known.mtimeNs === stamp.mtimeNs && known.ctimeNs === stamp.ctimeNs && known.ino === stamp.ino;
  }

  names(): IterableIterator<string> {
    return this.entries.keys();
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
 * Throws what listCandidates throws when the directory cannot be read (a UsageError naming the cause).
 */
export async function auditDirectory(dir: string, book: StampBook): Promise<AuditResult> {
  const names = await listCandidates(dir);
  const differ: string[] = [];
  const present = new Set(names);
  await forEachLimited(names, STAT_CONCURRENCY, async (name) => {
    const info = await lstat(path.join(dir, name), { bigint: true }).catch(() => null);
    // Gone since the readdir, or no longer a regular file: the backup reads it and decides.
    if (!info?.isFile() || !book.matches(name, stampOf(info))) differ.push(name);
  });
  for (const name of book.names()) if (!present.has(name)) differ.push(name);
  return { differ, files: names.length };
}
