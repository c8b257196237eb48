// Materialises a generation into the auth directory so that a kill at any instant leaves either the
// previous files or the complete new set, as seen by the next keeper start (which finishes the job).
//
// The directory itself is never renamed: on Kubernetes it is a volume mount point (rename fails with
// EBUSY) and its parent sits on a read-only root filesystem. So the files are staged in a hidden
// directory inside it, fsynced, and committed by atomically renaming a manifest into place. Only a
// committed stage is moved into the directory, and the next start rolls a half-moved one forward.
// creds.json moves last, so until a restore is complete the directory never looks restorable-complete.
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, unlink } from 'node:fs/promises';
import path from 'node:path';
import { CREDS_FILE, parseCreds } from './creds.js';
import { IntegrityError, KeeperError, ExitCode } from './errors.js';
import type { Logger } from './log.js';
import { forEachLimited } from './limit.js';
import { invalidNameReason, quoteName } from './names.js';
import { listCandidates, sha256 } from './snapshot.js';

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
  try {
    const handle = await open(path.join(dir, CREDS_FILE), constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    try {
      if (!(await handle.stat()).isFile()) return false;
      return parseCreds(await handle.readFile('utf8')) !== null;
    } finally {
      await handle.close();
    }
  } catch {
    return false;
  }
}

/** What a restore of `files` would change in `dir`. */
export async function planRestore(
  dir: string,
  files: readonly RestoreFile[],
): Promise<{ write: string[]; unchanged: string[]; remove: string[] }> {
  const present = await listCandidates(dir).catch(() => [] as string[]);
  const wanted = new Set(files.map((file) => file.name));
  const write: string[] = [];
  const unchanged: string[] = [];
  for (const file of files) {
    const current = await readFile(path.join(dir, file.name)).catch(() => null);
    (current && sha256(current).equals(sha256(file.content)) ? unchanged : write).push(file.name);
  }
  return { write, unchanged, remove: present.filter((name) => !wanted.has(name)).sort() };
}

/**
 * Replaces the backed-up files of `dir` with exactly `files` (mode 0600). Other entries (dotfiles,
 * sub-directories, links) are left alone. Names are validated first: a bad one writes nothing.
 */
export async function materialise(dir: string, files: readonly RestoreFile[], log: Logger): Promise<void> {
  for (const file of files) {
    const bad = invalidNameReason(file.name);
    if (bad) throw new IntegrityError(`refusing to restore ${quoteName(file.name)}: ${bad}`);
  }
  await mkdir(dir, { recursive: true, mode: 0o700 }).catch((error) => {
    throw writeError(dir, 'create', error);
  });
  await recoverInterruptedRestore(dir, log);

  const staging = await stageRestore(dir, files);
  try {
    await rollForward(
      dir,
      staging,
      files.map((file) => file.name),
    );
  } catch (error) {
    throw writeError(dir, 'move restored files into', error, 'The restore is committed: the next restore or sidecar start finishes it');
  }
}

/**
 * Writes `files` durably into a new hidden stage inside `dir` and commits it (the manifest rename).
 * Returns the stage's path; from then on the restore wins, even if the process dies.
 */
export async function stageRestore(dir: string, files: readonly RestoreFile[]): Promise<string> {
  const staging = path.join(dir, `${STAGING_PREFIX}${randomBytes(6).toString('hex')}`);
  try {
    await mkdir(staging, { mode: 0o700 });
    await forEachLimited(files, WRITE_CONCURRENCY, (file) => writeDurably(path.join(staging, file.name), file.content));
    const manifest = JSON.stringify({ files: files.map((file) => file.name) });
    await writeDurably(path.join(staging, `${MANIFEST}.tmp`), Buffer.from(manifest));
    await fsyncDirectory(staging);
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
      await rm(staging, { recursive: true, force: true });
      log.info({ staging: entry }, 'discarded an uncommitted restore');
      outcome = outcome === 'none' ? 'discarded' : outcome;
    } else {
      await rollForward(dir, staging, names);
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
  await rm(staging, { recursive: true, force: true });
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

async function writeDurably(file: string, content: Buffer): Promise<void> {
  const handle = await open(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    await handle.writeFile(content);
    await handle.sync();
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
