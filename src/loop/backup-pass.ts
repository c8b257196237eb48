// One backup pass of a session: read the dirty names (or the whole directory when a rescan is due),
// store them in one fenced transaction, and interpret the outcome: metrics, the head's stamps for the
// audit, files held back, a refusal, a lost lease, a failure and its backoff.
import { stat } from 'node:fs/promises';
import { auditDirectory, trustworthy, wallNowNs } from '../audit.js';
import { systemClock } from '../clock.js';
import { CREDS_FILE, parseCreds } from '../creds.js';
import { IntegrityError, LeaseLostError } from '../errors.js';
import type { ProgressWork } from '../progress.js';
import { type FileStamp, readNamed, readSnapshot, type Snapshot } from '../snapshot.js';
import type { BackupResult, Lease, RecordedHead } from '../store/index.js';
import type { LoopContext } from './context.js';
import { type FlushOutcome, LARGE_SESSION_FILES, MANY_FILES } from './loop-options.js';

/**
 * Runs one backup pass under the current lease: 'standby' without it, 'clean' when nothing is to be read,
 * 'failure' when the directory or the database failed (retried after `loop.next.retryAt`), else the
 * store's result. `thinSoon` is called after a stored change. Never rejects.
 */
export async function backupPass(loop: LoopContext, thinSoon: () => void): Promise<FlushOutcome> {
  const outcome = await pass(loop, thinSoon);
  // In a keeper of many sessions the outage log says a database's recovery once for all of them (and a
  // directory readable again is said by ProtectionState): a line per session after an outage is what it avoids.
  if (outcome === 'refused' || (outcome === 'failure' && !loop.options.outageLog)) loop.troubled = true;
  else if (outcome === 'success' || outcome === 'noop') loop.troubled = false;
  return outcome;
}

async function pass(loop: LoopContext, thinSoon: () => void): Promise<FlushOutcome> {
  const { next, dirty, held, metrics, clock, options } = loop;
  const lease = loop.lease.current;
  if (!lease) return 'standby';
  if (next.full && next.fromStamps && !next.fullNext && !next.reclaim) {
    next.fromStamps = false;
    const compared = await compareWithRecorded(loop);
    if (compared !== null) return compared;
  }
  const full = next.full;
  const checkpoint = dirty.checkpoint();
  const names = [...new Set([...dirty.names(), ...held.names()])];
  if (!full && names.length === 0) return 'clean';
  const started = clock.now();
  const readStartedNs = wallNowNs();
  let snapshot: Snapshot;
  try {
    // Torn re-reads wait for a real writer to finish its write: real time, not the loop's clock (a
    // manual clock cannot make Baileys finish, and a backup waiting on it would never end).
    snapshot = full
      ? await readSnapshot(options.dir, { clock: systemClock, progress: (files) => firstBackupProgress(loop, files) })
      : await readNamed(options.dir, names, { clock: systemClock });
    loop.protection.directoryRead();
  } catch (error) {
    loop.directoryUnreadable(error);
    next.retryAt = clock.now() + next.backoff.fail();
    return 'failure';
  }
  const torn = [...snapshot.held.values()].filter((file) => file.torn).length;
  if (torn > 0) metrics.tornReads.inc(torn);

  let result: BackupResult;
  try {
    result = await loop.store.backup(options.sessionId, snapshot, {
      lease,
      allowReplace: options.allowReplace,
      reason: loop.stopping ? 'shutdown' : full ? 'rescan' : 'watch',
      scope: full ? null : new Set(names),
      allowRollback: next.reclaim && full,
      // A directory gone as a whole (moved away, unmounted) is no logout by itself: the guard keeps the login,
      // and a directory that stays gone is a tombstone's business (many sessions).
      login: (await directoryPresent(options.dir)) ? loop.loginWatch : null,
      stamps: trustworthyStamps(snapshot, readStartedNs),
    });
    next.reclaim = false;
  } catch (error) {
    if (error instanceof LeaseLostError) {
      loop.lease.markLost(lease.token, error.message);
      return 'standby';
    }
    metrics.backups.inc({ result: 'failure' });
    const delay = next.backoff.fail();
    next.retryAt = clock.now() + delay;
    // Stored rows under a key this process lacks (or a refused encryption change): no database fault,
    // and retrying alone will not fix it; it is said plainly while the loop keeps trying.
    if (error instanceof IntegrityError) loop.log.error({ retryInMs: delay, dirty: dirty.size }, `backup not stored: ${error.message}`);
    else loop.databaseError(error, 'backup', { retryInMs: delay, dirty: dirty.size });
    return 'failure';
  }

  const ms = clock.now() - started;
  metrics.backupDuration.observe(ms / 1000);
  next.backoff.reset();
  next.retryAt = 0;
  keepHeld(loop, snapshot, full ? null : names);
  // A refusal leaves the directory different from the head: the lag keeps counting from the change.
  loop.protection.refusedSince = result.kind === 'refused' ? (loop.protection.refusedSince ?? dirty.oldestSince() ?? clock.now()) : null;
  dirty.clearUpTo(checkpoint);
  if (result.kind !== 'refused') {
    // What was read is the head now; what was not (deleted, held back) is not known to be.
    const absent = (full ? [...snapshot.held.keys()] : names).filter((name) => !snapshot.files.has(name));
    loop.book.record(snapshot.files.values(), absent, full, readStartedNs);
  }
  if (full) {
    next.rescanDue = false;
    // A full read of a watched directory is stored: whatever happened while it was not watched is in.
    if (loop.watcher.backend !== null) loop.protection.unwatchedSince = null;
  }
  next.fullNext = false;
  next.urgent = false;
  loop.compared();
  // A file the keeper may not read is a failure, never a no-op (SPEC "Protection").
  const unreadable = [...snapshot.held.values()].some((file) => file.kind === 'unreadable');
  metrics.backups.inc({ result: unreadable && result.kind !== 'refused' ? 'failure' : result.kind });
  watchLogin(loop, snapshot, result, full);
  if (result.kind === 'refused') {
    // Nothing retries a refusal until the directory changes again; then it reads everything.
    next.fullNext = true;
    loop.log.warn({ generation: result.generation }, `backup refused: ${result.reason}`);
    return 'refused';
  }
  if (!unreadable && held.counts().too_large === 0) metrics.lastBackupSuccess.set(clock.wall() / 1000);
  metrics.generation.set(result.generation);
  if (result.kind === 'success') {
    metrics.files.set(result.totalFiles);
    metrics.bytes.set(result.totalBytes);
    loop.registered = result.registered;
    metrics.sessionRegistered.set(result.registered ? 1 : 0);
    // Routine backups (a bot writing its keys) are added up into the periodic summary and said at debug;
    // the first under a lease (start, a takeover), one after a failure or refusal, a whole read's, the
    // final one, a login event's and a bulk change are said at info.
    const routine =
      loop.storedUnder === lease.token &&
      !loop.troubled &&
      !full &&
      !loop.stopping &&
      result.event === null &&
      result.changed + result.deleted < MANY_FILES;
    loop.storedUnder = lease.token;
    loop.headless = false;
    loop.summary.stored(options.sessionId, result);
    // The lease token says which writer's lease a generation was committed under.
    loop.log[routine ? 'debug' : 'info'](
      { generation: result.generation, token: lease.token, files: result.changed, deleted: result.deleted, bytes: result.changedBytes, ms },
      'backup stored',
    );
    thinSoon();
  } else {
    loop.log.debug({ generation: result.generation, ms }, 'nothing changed');
  }
  return result.kind;
}

/**
 * What the progress line (on a terminal, src/progress.ts) of a whole read of `files` files says: only for
 * the first backup of a session (no backup stored yet) of at least LARGE_SESSION_FILES files, in a loop
 * that shows progress; else null.
 */
function firstBackupProgress(loop: LoopContext, files: number): ProgressWork | null {
  if (!loop.headless || !loop.options.showProgress || files < LARGE_SESSION_FILES) return null;
  return { label: `first backup of session ${loop.options.sessionId}`, count: files, bytes: null };
}

/**
 * The first comparison after the lease was acquired (start, a takeover), by metadata: the directory's files
 * against the stamps the head recorded (store/stamps.ts), one lstat each. Every file matching, and no file
 * missing or added, the directory is the head — nothing is read ('noop', the comparison done). Anything else
 * (a file differs, a stamp is not known, the head holds nothing) gives null: the caller reads the whole
 * directory, as a start always did, so that every rule of a whole read (never backwards, the guard) applies
 * to what changed while no keeper ran. 'failure' when the database or the directory cannot be read.
 */
async function compareWithRecorded(loop: LoopContext): Promise<FlushOutcome | null> {
  const { next, metrics, clock, options } = loop;
  let head: RecordedHead | null;
  try {
    head = await loop.store.headStamps(options.sessionId);
  } catch (error) {
    metrics.backups.inc({ result: 'failure' });
    next.retryAt = clock.now() + next.backoff.fail();
    loop.databaseError(error, 'backup');
    return 'failure';
  }
  loop.headless = head === null;
  if (head === null) return null;
  loop.book.prime(head.stamps);
  try {
    const result = await auditDirectory(options.dir, loop.book);
    loop.protection.directoryRead();
    if (result.differ.length > 0) {
      loop.book.invalidate();
      loop.log.debug({ files: result.differ.length, checked: result.files }, 'start: files differ from the head; reading the directory');
      return null;
    }
  } catch (error) {
    loop.book.invalidate();
    loop.directoryUnreadable(error);
    next.retryAt = clock.now() + next.backoff.fail();
    return 'failure';
  }
  // As a whole read finding nothing to store: compared, watched since, the head's login (read now, not at
  // start: another writer may have paired or logged out since) seen in the directory, whose creds.json is the head's.
  next.rescanDue = false;
  next.urgent = false;
  next.backoff.reset();
  if (loop.watcher.backend !== null) loop.protection.unwatchedSince = null;
  loop.compared();
  loop.registered = head.registeredJid !== null;
  loop.headJid = head.registeredJid;
  metrics.sessionRegistered.set(loop.registered ? 1 : 0);
  if (loop.registered) {
    loop.loginWatch = 'seen';
    loop.loginJid ??= loop.headJid;
  } else loop.loginWatch = null;
  metrics.backups.inc({ result: 'noop' });
  metrics.lastBackupSuccess.set(clock.wall() / 1000);
  loop.log.debug({ files: head.stamps.size }, 'start: the directory matches the head by recorded metadata');
  return 'noop';
}

/** The snapshot's stamps that prove what was read (audit.ts `trustworthy`), for the store to record. */
function trustworthyStamps(snapshot: Snapshot, readStartedNs: bigint): Map<string, FileStamp> {
  const stamps = new Map<string, FileStamp>();
  for (const file of snapshot.files.values()) if (file.stamp && trustworthy(file.stamp, readStartedNs)) stamps.set(file.name, file.stamp);
  return stamps;
}

/**
 * At shutdown in `run`, after the bot's process group exited on its own, the directory is gone although
 * this loop saw the login in it: the bot wiped its folder and exited (what many bots do on a 401), a logout
 * the keeper saw (SPEC "Session lifecycle"). It is stored as one — every file deleted — under `lease`, so
 * that the restart restores no dead login. 'failure' when it could not be stored (a database error: the
 * caller retries), else the store's result.
 */
export async function storeRemovedLogin(loop: LoopContext, lease: Lease): Promise<FlushOutcome> {
  const empty: Snapshot = { files: new Map(), held: new Map() };
  try {
    const result = await loop.store.backup(loop.options.sessionId, empty, {
      lease,
      allowReplace: false,
      reason: 'shutdown',
      scope: null,
      login: 'dropped',
    });
    loop.metrics.backups.inc({ result: result.kind });
    if (result.kind === 'success') {
      loop.metrics.generation.set(result.generation);
      loop.metrics.files.set(0);
      loop.metrics.bytes.set(0);
      loop.metrics.sessionRegistered.set(0);
    }
    watchLogin(loop, empty, result, true);
    return result.kind;
  } catch (error) {
    if (error instanceof LeaseLostError) loop.lease.markLost(lease.token, error.message);
    else loop.databaseError(error, 'backup');
    return 'failure';
  }
}

/** Whether `dir` is there as a directory now (a read of names in a missing one finds every name deleted). */
export async function directoryPresent(dir: string): Promise<boolean> {
  return stat(dir).then(
    (stats) => stats.isDirectory(),
    () => false,
  );
}

/**
 * What the loop now knows of the head's login (LoopContext.loginWatch), and the lifecycle events of this
 * result: after a stored or unchanged read of creds.json, the directory holds what the head holds — a
 * paired login is 'seen'; none is nothing to watch. A refusal changes nothing (the guard's case).
 */
function watchLogin(loop: LoopContext, snapshot: Snapshot, result: BackupResult, full: boolean): void {
  if (result.kind === 'refused') {
    if (result.refusal === 'identity' && loop.lastRefusal !== 'identity') loop.emit('identity_refused', result.generation);
    loop.lastRefusal = result.refusal;
    return;
  }
  loop.lastRefusal = null;
  const creds = snapshot.files.get(CREDS_FILE);
  const jid = creds ? (parseCreds(creds.content.toString('utf8'))?.registeredJid ?? null) : null;
  // A logout tells whose login ended: the one stored before it.
  if (result.kind === 'success' && result.event)
    loop.emit(result.event, result.generation, result.event === 'logged_out' ? loop.loginJid : jid);
  if (creds) loop.loginWatch = jid ? 'seen' : null;
  else if (full && !snapshot.held.has(CREDS_FILE)) loop.loginWatch = null;
  if (jid) loop.loginJid = jid;
}

/**
 * After a stored backup: files it could not store stay held (pending, retried on HELD_RETRY_BACKOFF,
 * counted in the lag from when they first differed); files it read (`scope`: the names it read, null:
 * the whole directory) and could store, or found gone, are released.
 */
function keepHeld(loop: LoopContext, snapshot: Snapshot, scope: readonly string[] | null): void {
  const { held, next } = loop;
  const now = loop.clock.now();
  for (const name of scope ?? held.names()) if (!snapshot.held.has(name)) held.release(name);
  for (const [name, file] of snapshot.held) held.hold(name, file, loop.dirty.sinceOf(name) ?? now);
  if (held.size === 0) {
    next.heldBackoff.reset();
    next.heldRetryAt = 0;
  } else {
    next.heldRetryAt = now + next.heldBackoff.fail();
  }
}
