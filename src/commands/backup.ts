// `backup`: one backup of --dir now, under the session's lease (or of every session of --sessions-dir).
import { realpath } from 'node:fs/promises';
import path from 'node:path';
import { describeError, ExitCode, KeeperError, RefusedError } from '../errors.js';
import { recoverInterruptedRestore } from '../restore.js';
import { loginElsewhereAdvice, loginsBelowInstead } from '../login-search.js';
import { listSessionsDir } from '../sessions-dir.js';
import { MAX_FILE_BYTES, readSnapshot, requireDirectory, type Snapshot } from '../snapshot.js';
import type { BackupResult } from '../store/index.js';
import type { RetentionPolicy } from '../store/retention.js';
import type { SessionStore } from '../store/index.js';
import type { CommandSpec, Context } from './command.js';
import { withLease, withStore } from './database.js';
import { formatBytes, logEncryption, print, printJson } from './output.js';

export async function backupCommand(ctx: Context<'backup'>): Promise<number> {
  const { config } = ctx;
  if (config.sessionsDir !== null) return backupSessions(ctx);
  const log = ctx.log.child({ component: 'backup', session: config.sessionId });
  logEncryption(ctx);
  await requireDirectory(config.dir);
  // Before the database: backing up an empty --dir while the login sits below it would only say "no changes".
  const elsewhere = await loginsBelowInstead(config.dir);
  if (elsewhere.length > 0) throw new KeeperError(loginElsewhereAdvice(config.dir, elsewhere), ExitCode.unexpected);
  await recoverInterruptedRestore(config.dir, log);
  const { result, snapshot } = await withStore(ctx, (store) =>
    withLease(store, config.sessionId, async (lease) => {
      const progress = (files: number) => ({ label: `backing up session ${config.sessionId}`, count: files, bytes: null });
      const snapshot = await readSnapshot(config.dir, { progress });
      const result = await store.backup(config.sessionId, snapshot, { lease, allowReplace: config.allowReplace, reason: 'backup' });
      await thinHistory(store, config.retention, config.sessionId, log);
      return { result, snapshot };
    }),
  );
  reportHeld(log, snapshot);
  reportBackup(ctx, log, result, snapshot);
  return heldBackCode(log, snapshot);
}

/**
 * `backup --sessions-dir`: one backup of every session directory (sessions-dir.listSessionsDir: folders named
 * like a session id, and folders with other names that hold a login, under their mapped id), one after another
 * over one pool. Each is reported as `backup` reports one session; anything else is skipped with a warning.
 * Exit 0 when all succeed, else the highest code of those that failed; 1 also when an entry that holds a login
 * is left unkept (a dotted or non-UTF-8 name, a link to a folder that is not kept itself): never 0 while a
 * customer is not stored.
 */
async function backupSessions(ctx: Context<'backup'>): Promise<number> {
  const { config } = ctx;
  const sessionsDir = config.sessionsDir!;
  const log = ctx.log.child({ component: 'backup' });
  logEncryption(ctx);
  await requireDirectory(sessionsDir);
  const sessions: { sessionId: string; dir: string; folder: string | null }[] = [];
  const unkept: string[] = [];
  const links: { name: string; dir: string }[] = [];
  for (const entry of await listSessionsDir(sessionsDir, config.sessionPrefix)) {
    if (entry.kind === 'session') {
      sessions.push({ sessionId: entry.sessionId, dir: path.join(sessionsDir, entry.name), folder: entry.mapped ? entry.name : null });
    } else if (entry.kind === 'waiting') {
      log.info(
        { entry: entry.name, session: entry.sessionId },
        `${JSON.stringify(entry.name)} holds no login (creds.json) yet: nothing to back up (it becomes session ${entry.sessionId} once it does)`,
      );
    } else {
      log.warn({ entry: entry.name }, `skipped ${JSON.stringify(entry.name)} in the sessions directory: ${entry.why}`);
      if (entry.holdsLogin && entry.link) links.push({ name: entry.name, dir: path.join(sessionsDir, entry.name) });
      else if (entry.holdsLogin) unkept.push(entry.name);
    }
  }
  // A link to a session folder of this same directory leaves nothing unkept; a link to anything else does.
  const kept = new Set(await Promise.all(sessions.map(({ dir }) => realpath(dir).catch(() => dir))));
  for (const link of links) if (!kept.has(await realpath(link.dir).catch(() => ''))) unkept.push(link.name);
  sessions.sort((a, b) => a.sessionId.localeCompare(b.sessionId));
  let code = 0;
  await withStore(ctx, async (store) => {
    for (const { sessionId, dir, folder } of sessions) {
      const one = { ...ctx, config: { ...config, sessionId, dir } };
      const oneLog = log.child(folder === null ? { session: sessionId } : { session: sessionId, folder });
      try {
        await recoverInterruptedRestore(dir, oneLog);
        // Stored before its first generation, so that restore can recreate the folder under its own name.
        if (folder !== null) await store.recordFolder(sessionId, folder);
        const { result, snapshot } = await withLease(store, sessionId, async (lease) => {
          const snapshot = await readSnapshot(dir);
          const result = await store.backup(sessionId, snapshot, { lease, allowReplace: config.allowReplace, reason: 'backup' });
          await thinHistory(store, config.retention, sessionId, oneLog);
          return { result, snapshot };
        });
        reportHeld(oneLog, snapshot);
        reportBackup(one, oneLog, result, snapshot);
        code = Math.max(code, heldBackCode(oneLog, snapshot));
      } catch (error) {
        const exitCode = error instanceof KeeperError ? error.exitCode : ExitCode.unexpected;
        code = Math.max(code, exitCode);
        oneLog.error({ exitCode }, `backup of session ${sessionId} failed: ${(error as Error).message}`);
      }
    }
  });
  if (unkept.length > 0) {
    code = Math.max(code, ExitCode.unexpected);
    log.error(
      { sessionsDir, entries: unkept },
      `${unkept.length} ${unkept.length === 1 ? 'entry' : 'entries'} of the sessions directory ` +
        `${unkept.length === 1 ? 'holds a login that is' : 'hold logins that are'} not backed up: ` +
        `${unkept.map((name) => JSON.stringify(name)).join(', ')}; give each a name that does not start with a dot, ` +
        'in UTF-8, as a real directory (not a link) — see docs/many-sessions.md',
    );
  }
  if (sessions.length === 0) log.warn({ sessionsDir }, 'the sessions directory holds no session directory: nothing was backed up');
  return code;
}

/** Thins the session's history to the retention schedule after a write (not inside its transaction). */
export async function thinHistory(store: SessionStore, retention: RetentionPolicy, sessionId: string, log: Context['log']): Promise<void> {
  try {
    // A one-off command sweeps the whole session: it also reclaims what an interrupted pass left.
    const thinned = await store.thin(sessionId, retention, { sweepAll: true });
    if (thinned.generations > 0 || thinned.files > 0) {
      log.info(
        { session: sessionId, generations: thinned.generations, files: thinned.files, retained: thinned.retained },
        `history thinned to the retention schedule: ${thinned.generations} ` +
          `generation${thinned.generations === 1 ? '' : 's'} and ${thinned.files} file versions deleted`,
      );
    }
  } catch (error) {
    // The write is committed; thinning is housekeeping that the next write or the sidecar does again.
    log.warn({ session: sessionId, err: describeError(error) }, 'the history could not be thinned now; it is thinned at the next write');
  }
}

/** Logs each file that exists but was not stored (torn, unreadable, over the size limit) once; its stored version was kept. */
export function reportHeld(log: Context['log'], snapshot: Snapshot): void {
  for (const [name, held] of snapshot.held) {
    log.warn({ file: name, torn: held.torn }, `not stored: ${name}: ${held.reason}; the previously stored version is kept`);
  }
}

/**
 * The exit code a backup's held files call for (SPEC "Protection"): 1 when a file is held back for a reason
 * other than a torn write (unreadable, over the size limit: no later backup can store it until someone acts),
 * with what to do, else 0. A torn file is re-read by the next backup, as before. The files themselves were
 * named by reportHeld.
 */
export function heldBackCode(log: Context['log'], snapshot: Snapshot): number {
  const reasons = new Set<string>();
  let count = 0;
  for (const held of snapshot.held.values()) {
    if (held.torn) continue;
    count++;
    reasons.add(held.kind);
  }
  if (count === 0) return ExitCode.ok;
  const advice: string[] = [];
  if (reasons.has('unreadable'))
    advice.push(
      `make the files readable by uid ${process.getuid?.()} (run the keeper as the bot's user, or a shared group with g+r: ` +
        'see baileys-keeper doctor and docs/kubernetes.md, "File permissions")',
    );
  if (reasons.has('too_large'))
    advice.push(`move files over ${MAX_FILE_BYTES} bytes out of the auth directory (no Baileys key file comes near that size)`);
  log.error(
    { heldBack: count, reasons: [...reasons] },
    `${count} file${count === 1 ? ' was' : 's were'} not stored and no backup can store ${count === 1 ? 'it' : 'them'} as things are ` +
      `(named above): ${advice.join('; ')}`,
  );
  return ExitCode.unexpected;
}

/** Prints a backup's outcome; a refusal becomes an error. */
export function reportBackup(ctx: Context, log: Context['log'], result: BackupResult, snapshot: Snapshot): number {
  const { config } = ctx;
  if (result.kind === 'refused') {
    log.warn({ generation: result.generation }, 'backup refused');
    throw new RefusedError(`backup of session ${config.sessionId} refused: ${result.reason}`);
  }
  const held = snapshot.held.size;
  if (config.json) {
    const heldBack = [...snapshot.held].filter(([, file]) => !file.torn).map(([name, file]) => ({ file: name, reason: file.kind }));
    printJson(ctx, { session_id: config.sessionId, result: result.kind, ...result, held, held_back: heldBack });
  } else if (result.kind === 'noop') {
    print(
      ctx,
      `no changes: generation ${result.generation} of session ${config.sessionId} is current${held ? `, ${held} not stored (see log)` : ''}`,
    );
  } else {
    print(
      ctx,
      `generation ${result.generation} of session ${config.sessionId}: ${result.changed} changed, ${result.deleted} deleted, ` +
        `${result.totalFiles} files (${formatBytes(result.totalBytes)})${held ? `, ${held} not stored (see log)` : ''}`,
    );
  }
  log.info(
    { generation: result.generation, result: result.kind, ...(result.kind === 'success' ? { files: result.changed } : {}) },
    `backup ${result.kind}`,
  );
  return 0;
}

export const command: CommandSpec<'backup'> = {
  name: 'backup',
  summary: 'back up --dir once now',
  logTo: 'stderr',
  run: backupCommand,
};
