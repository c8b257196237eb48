// Materialises a generation into the auth directory so that a kill at any instant leaves either the
// previous files or the complete new set, as seen by the next keeper start (which finishes the job).
//
// The directory itself is never renamed: on Kubernetes it is a volume mount point (rename fails with
// EBUSY) and its parent sits on a read-only root filesystem. So the files are staged in a hidden
// directory inside it, fsynced, and committed by atomically renaming a manifest into place. Only a
// committed stage is moved into the directory, and the next start rolls a half-moved one forward.
// creds.json moves last, so until a restore is complete the directory never looks restorable-complete.
import { randomBytes } from 'node:crypto';
import { constants, type Dirent, type Stats } from 'node:fs';
import { lstat, mkdir, open, readdir, readFile, rename, rm, rmdir, unlink } from 'node:fs/promises';
import path from 'node:path';
import { CREDS_FILE, parseCreds } from './creds.js';
import { IntegrityError, KeeperError, ExitCode } from './errors.js';
import type { Logger } from './log.js';
import { forEachLimited } from './limit.js';
import { invalidNameReason, quoteName } from './names.js';
import { listCandidates, readRegularFile, sha256 } from './snapshot.js';

export const STAGING_PREFIX = '.baileys-keeper-restore-';
const MANIFEST = '.manifest';
/** Files written at once while staging. */
const WRITE_CONCURRENCY = 32;

export interface RestoreFile {
  name: string;
  content: Buffer;
}

/** Failure to write the target directory (read-only, full, permissions): exit 1, old files intact. */
export class RestoreWriteError extends KeeperError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, ExitCode.unexpected, options);
  }
}

/** True when `dir/creds.json` is a complete Baileys creds object (the restore then has nothing to do). */
export async function hasUsableCreds(dir: string): Promise<boolean> {
  const read = await readRegularFile(path.join(dir, CREDS_FILE));
  return read.kind === 'ok' && parseCreds(read.content.toString('utf8')) !== null;
}

/** A name the restore would write that is taken by something other than a regular file. */
export interface Obstruction {
  name: string;
  /** What is in the way: "a directory", "a FIFO (named pipe)", "a symbolic link"… */
  kind: string;
}

/** What a restore of `files` would change in `dir`, compared as the real restore would see it. */
export interface RestorePlan {
  write: string[];
  unchanged: string[];
  remove: string[];
  /** Names the restore would refuse to write (see targetObstructions): a real run exits with restore's error. */
  blocked: Obstruction[];
}

/**
 * What a restore of `files` would change in `dir`. Reads like the real paths do (readRegularFile):
 * regular files only, no link followed, no read that can block or run without end.
 */
export async function planRestore(dir: string, files: readonly RestoreFile[]): Promise<RestorePlan> {
  const present = await listCandidates(dir).catch(() => [] as string[]);
  const wanted = new Set(files.map((file) => file.name));
  const blocked = await targetObstructions(
    dir,
    files.map((file) => file.name),
  ).catch(() => [] as Obstruction[]);
  const isBlocked = new Set(blocked.map((entry) => entry.name));
  const write: string[] = [];
  const unchanged: string[] = [];
  await forEachLimited(files, WRITE_CONCURRENCY, async (file) => {
    if (isBlocked.has(file.name)) return;
    const current = await readRegularFile(path.join(dir, file.name));
    (current.kind === 'ok' && sha256(current.content).equals(sha256(file.content)) ? unchanged : write).push(file.name);
  });
  return { write: write.sort(), unchanged: unchanged.sort(), remove: present.filter((name) => !wanted.has(name)).sort(), blocked };
}

/**
 * The names among `names` that `dir` holds as anything but a regular file (a directory, FIFO, socket,
 * device or symlink): a restore cannot put a regular file there without destroying something that is
 * not a backed-up file, so it refuses before its commit point (docs/reliability.md). Never follows links.
 */
export async function targetObstructions(dir: string, names: readonly string[]): Promise<Obstruction[]> {
  // One listing of the directory instead of an lstat per name: a restore of a fleet checks tens of
  // thousands of names, nearly all absent. A listing's entry types are lstat's (links not followed);
  // a filesystem that does not report them gets the lstat.
  let entries: Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  const wanted = new Set(names);
  const found: Obstruction[] = [];
  await forEachLimited(
    entries.filter((entry) => wanted.has(entry.name) && !entry.isFile()),
    WRITE_CONCURRENCY,
    async (entry) => {
      const info: FileKind | null = typeKnown(entry)
        ? entry
        : await lstat(path.join(dir, entry.name)).catch((error: NodeJS.ErrnoException) => {
            if (error.code === 'ENOENT') return null;
            throw error;
          });
      if (info && !info.isFile()) found.push({ name: entry.name, kind: kindOf(info) });
    },
  );
  return found.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** What both an lstat and a directory entry tell of a file's type. */
type FileKind = Pick<Stats, 'isFile' | 'isDirectory' | 'isSymbolicLink' | 'isFIFO' | 'isSocket' | 'isCharacterDevice' | 'isBlockDevice'>;

/** False for an entry whose type the filesystem did not report (DT_UNKNOWN): every test is false. */
function typeKnown(entry: FileKind): boolean {
  return (
    entry.isFile() ||
    entry.isDirectory() ||
    entry.isSymbolicLink() ||
    entry.isFIFO() ||
    entry.isSocket() ||
    entry.isCharacterDevice() ||
    entry.isBlockDevice()
  );
}

/** The refusal of a restore whose target names are taken (exit 1, like any target that cannot be written). */
export function obstructionError(dir: string, blocked: readonly Obstruction[]): RestoreWriteError {
  return new RestoreWriteError(
    `cannot restore into ${dir}: ${describeObstructions(dir, blocked)}, where a stored file must be written as a regular file. ` +
      `Remove or rename ${blocked.length === 1 ? 'it' : 'them'}, then restore again. Nothing was written: the previous files were left as they were`,
  );
}

/** "DIR/a is a directory; DIR/b is a socket (and 3 more)". */
function describeObstructions(dir: string, blocked: readonly Obstruction[]): string {
  const listed = blocked
    .slice(0, 5)
    .map((entry) => `${path.join(dir, entry.name)} is ${entry.kind}`)
    .join('; ');
  return `${listed}${blocked.length > 5 ? ` (and ${blocked.length - 5} more)` : ''}`;
}

function kindOf(info: FileKind): string {
  if (info.isDirectory()) return 'a directory';
  if (info.isSymbolicLink()) return 'a symbolic link';
  if (info.isFIFO()) return 'a FIFO (named pipe)';
  if (info.isSocket()) return 'a socket';
  if (info.isCharacterDevice()) return 'a character device';
  if (info.isBlockDevice()) return 'a block device';
  return 'not a regular file';
}

/**
 * Replaces the backed-up files of `dir` with exactly `files` (mode 0600). Other entries (dotfiles,
 * sub-directories, links) are left alone. Names are validated first: a bad one writes nothing.
 * `onWritten` is told the bytes of each file once it is staged (progress lines).
 */
export async function materialise(
  dir: string,
  files: readonly RestoreFile[],
  log: Logger,
  onWritten?: (bytes: number) => void,
): Promise<void> {
  for (const file of files) {
    const bad = invalidNameReason(file.name);
    if (bad) throw new IntegrityError(`refusing to restore ${quoteName(file.name)}: ${bad}`);
  }
  await mkdir(dir, { recursive: true, mode: 0o700 }).catch((error) => {
    throw writeError(dir, 'create', error);
  });
  await recoverInterruptedRestore(dir, log);

  const staging = await stageRestore(dir, files, onWritten);
  try {
    await rollForward(
      dir,
      staging,
      files.map((file) => file.name),
    );
  } catch (error) {
    throw unfinishedError(dir, staging, error);
  }
}

/**
 * Writes `files` durably into a new hidden stage inside `dir` and commits it (the manifest rename).
 * Returns the stage's path; from then on the restore wins, even if the process dies.
 */
export async function stageRestore(dir: string, files: readonly RestoreFile[], onWritten?: (bytes: number) => void): Promise<string> {
  const staging = path.join(dir, `${STAGING_PREFIX}${randomBytes(6).toString('hex')}`);
  const names = files.map((file) => file.name);
  // Checked before anything is staged, and again just before the commit point (something may have
  // appeared meanwhile): a committed stage that cannot be moved in would leave the directory half-restored.
  const checkTarget = async () => {
    const blocked = await targetObstructions(dir, names);
    if (blocked.length > 0) throw obstructionError(dir, blocked);
  };
  try {
    await checkTarget();
    await mkdir(staging, { mode: 0o700 });
    await forEachLimited(files, WRITE_CONCURRENCY, async (file) => {
      await writeDurably(path.join(staging, file.name), file.content);
      onWritten?.(file.content.length);
    });
    const manifest = JSON.stringify({ files: names });
    await writeDurably(path.join(staging, `${MANIFEST}.tmp`), Buffer.from(manifest));
    await fsyncDirectory(staging);
    await checkTarget();
    // The commit point: once the manifest has its final name, the stage is complete and must win.
    await rename(path.join(staging, `${MANIFEST}.tmp`), path.join(staging, MANIFEST));
    await fsyncDirectory(staging);
    return staging;
  } catch (error) {
    await rm(staging, { recursive: true, force: true }).catch(() => undefined);
    throw writeError(dir, 'stage files in', error);
  }
}

/**
 * Finishes or discards a restore that was interrupted: a committed stage is moved into place,
 * an uncommitted one is deleted. Called before every restore and before the first backup.
 * A committed stage that cannot be finished (a directory or other non-file where one of its files
 * goes, a permission, a read-only mount) throws RestoreWriteError naming what is in the way and the
 * paths to remove; nothing is backed up or skipped over a half-restored directory meanwhile, and the
 * first start after the cause is removed finishes the restore.
 */
export async function recoverInterruptedRestore(dir: string, log: Logger): Promise<'none' | 'rolled-forward' | 'discarded'> {
  let entries: string[];
  try {
    entries = (await readdir(dir)).filter((name) => name.startsWith(STAGING_PREFIX));
  } catch {
    return 'none';
  }
  let outcome: 'none' | 'rolled-forward' | 'discarded' = 'none';
  for (const entry of entries) {
    const staging = path.join(dir, entry);
    const manifest = await readFile(path.join(staging, MANIFEST), 'utf8').catch(() => null);
    const names = manifest === null ? null : parseManifest(manifest);
    if (names === null) {
      await rm(staging, { recursive: true, force: true }).catch((error) => {
        throw writeError(dir, `remove the unfinished restore ${staging} from`, error, `Remove ${staging} by hand`);
      });
      log.info({ staging: entry }, 'discarded an uncommitted restore');
      outcome = outcome === 'none' ? 'discarded' : outcome;
    } else {
      try {
        const blocked = await targetObstructions(dir, names);
        if (blocked.length > 0) throw blockedStageError(dir, staging, blocked);
        await rollForward(dir, staging, names);
      } catch (error) {
        throw unfinishedError(dir, staging, error);
      }
      log.warn({ staging: entry, files: names.length }, 'finished a restore that was interrupted');
      outcome = 'rolled-forward';
    }
  }
  return outcome;
}

async function rollForward(dir: string, staging: string, names: readonly string[]): Promise<void> {
  const wanted = new Set(names);
  for (const name of names) {
    if (name !== CREDS_FILE) await moveIfStaged(staging, dir, name);
  }
  for (const name of await listCandidates(dir)) {
    if (!wanted.has(name)) await unlink(path.join(dir, name)).catch(ignoreMissing);
  }
  if (wanted.has(CREDS_FILE)) await moveIfStaged(staging, dir, CREDS_FILE);
  await fsyncDirectory(dir);
  await removeStage(staging);
}

/**
 * Removes a stage whose files were moved out: its manifest and the empty directory (two calls, not a
 * recursive walk); anything left behind (a file that was not moved) falls back to the recursive removal.
 */
async function removeStage(staging: string): Promise<void> {
  try {
    await unlink(path.join(staging, MANIFEST)).catch(ignoreMissing);
    await rmdir(staging);
  } catch {
    await rm(staging, { recursive: true, force: true });
  }
}

async function moveIfStaged(staging: string, dir: string, name: string): Promise<void> {
  await rename(path.join(staging, name), path.join(dir, name)).catch(ignoreMissing);
}

function parseManifest(text: string): string[] | null {
  try {
    const value = JSON.parse(text) as { files?: unknown };
    if (!Array.isArray(value.files) || !value.files.every((name) => typeof name === 'string' && invalidNameReason(name) === null))
      return null;
    return value.files as string[];
  } catch {
    return null;
  }
}

/**
 * Creates `file` with `content` and flushes it with fdatasync: the data and what reading it back needs
 * (its size), without the timestamps an fsync also writes. The file's name is made durable by the fsync
 * of its directory that follows every stage (fsyncDirectory).
 */
async function writeDurably(file: string, content: Buffer): Promise<void> {
  const handle = await open(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    await handle.writeFile(content);
    await handle.datasync();
  } finally {
    await handle.close();
  }
}

async function fsyncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function ignoreMissing(error: NodeJS.ErrnoException): void {
  if (error.code !== 'ENOENT') throw error;
}

/** A committed stage whose files cannot go in: name each obstruction and both ways out. */
function blockedStageError(dir: string, staging: string, blocked: readonly Obstruction[]): RestoreWriteError {
  return new RestoreWriteError(
    `an interrupted restore in ${dir} cannot be finished: ${describeObstructions(dir, blocked)}, ` +
      `where a restored file goes. Remove ${blocked.length === 1 ? 'it' : 'them'} and start again: the restore then finishes by itself. ` +
      `(Or remove ${staging} to give the restore up, then run restore --force: the directory holds a mix of old and restored files.)`,
  );
}

/** A committed restore that could not be moved into place: what failed and how to get out. */
function unfinishedError(dir: string, staging: string, error: unknown): Error {
  if (error instanceof KeeperError) return error;
  return writeError(
    dir,
    'move restored files into',
    error,
    `The restore is committed and the next restore or sidecar start finishes it once this is fixed; ` +
      `to give it up instead, remove ${staging} and run restore --force`,
  );
}

function writeError(dir: string, action: string, error: unknown, outcome = 'The previous files were left as they were'): Error {
  if (error instanceof KeeperError) return error;
  const code = (error as NodeJS.ErrnoException).code;
  const hint =
    code === 'EROFS'
      ? 'the filesystem is read-only; mount a writable volume at --dir'
      : code === 'ENOSPC' || code === 'EDQUOT'
        ? 'the filesystem is full; free space or use a bigger volume'
        : code === 'EACCES' || code === 'EPERM'
          ? 'permission denied; run as a user that can write there'
          : 'check the path and the filesystem';
  return new RestoreWriteError(`cannot ${action} ${dir} (${code ?? (error as Error).message}): ${hint}. ${outcome}`, { cause: error });
}
