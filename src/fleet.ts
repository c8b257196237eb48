// Many sessions in one process (--sessions-dir, docs/many-sessions.md): every sub-directory of the
// sessions directory that sessions-dir.ts counts is the auth directory of one session, kept by its own
// backup loop (dirty set, debounce, lease, generations, guard). The fleet watches the parent for sessions
// that appear and disappear, shares one pool, one schema migration, one lease renewal statement, one lease
// attempt statement (for the sessions it stands by for) and a bound on backups in flight, and records a
// session whose directory stays removed as removed (a tombstone).
import { randomInt } from 'node:crypto';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { Semaphore } from 'async-mutex';
import { BackupSummary } from './backup-summary.js';
import type { BackupLoop } from './loop/backup-loop.js';
import { sleep, systemClock, within, type Clock } from './clock.js';
import { describeError } from './errors.js';
import { LeaseAttempts } from './lease-attempts.js';
import { LeaseRenewals } from './lease-renewals.js';
import { forEachLimited } from './limit.js';
import type { Logger } from './log.js';
import { type Metrics, readingsOf } from './metrics.js';
import { OutageLog } from './outage-log.js';
import { Backoff } from './retry.js';
import { holdsLogin, listSessionsDir, type SessionsDirEntry } from './sessions-dir.js';
import { RETRY_BACKOFF, type SessionLoopOptions } from './loop/loop-options.js';
import { SessionLoop } from './loop/session-loop.js';
import type { SessionStore } from './store/index.js';
import { type DirectoryWatch, type WatchBackend, WatchOpener } from './watch/chokidar.js';

/** Backups (read + transaction) of different sessions that may run at once: bounds open files and queued queries. */
export const BACKUPS_IN_FLIGHT = 8;
/** Sessions whose directory is being listed and watched at once at start. */
const START_CONCURRENCY = 16;
/** How long shutdown lets watch events already on their way arrive before judging which sessions are clean, ms. */
const WATCH_SETTLE_MS = 250;

export interface FleetOptions
  extends Omit<
    SessionLoopOptions,
    | 'sessionId'
    | 'dir'
    | 'prepareSchema'
    | 'renewals'
    | 'attempts'
    | 'outageLog'
    | 'backupSlots'
    | 'firstRescanMs'
    | 'summary'
    | 'showProgress'
  > {
  /** The sessions directory, absolute. */
  sessionsDir: string;
  /** Session id = prefix + sub-directory name, or its mapped form (names.sessionIdFor). */
  prefix: string;
  /** A session directory removed for longer than this is recorded as removed (a tombstone), ms: --interval. */
  tombstoneAfterMs: number;
}

interface Member {
  /** Its folder in the sessions directory. */
  readonly name: string;
  readonly sessionId: string;
  readonly loop: SessionLoop;
  /** When its directory was seen missing (the loop's clock, ms); null while it is there. */
  removedSince: number | null;
  /** The pending look at whether it is still removed. */
  cancelCheck: (() => void) | null;
  /** A tombstone is being written or the loop stopped: events for this member are ignored. */
  retiring: boolean;
  /** Pauses between attempts to record its tombstone. */
  readonly retry: Backoff;
}

export class SessionFleet implements BackupLoop {
  private readonly members = new Map<string, Member>();
  private readonly renewals: LeaseRenewals;
  private readonly attempts: LeaseAttempts;
  /** Says a database outage once for all sessions (one line per backoff step), not once per session and retry. */
  private readonly outage: OutageLog;
  /** Adds up every session's stored backups into one periodic info line (each backup alone is debug while routine). */
  private readonly summary: BackupSummary;
  /** The store as the sessions use it: its answers tell the outage log that the database is back. */
  private readonly store: SessionStore;
  private readonly slots = new Semaphore(BACKUPS_IN_FLIGHT);
  /** Names already warned about (said once each, not at every rescan). */
  private readonly warned = new Set<string>();
  /** Folders whose name is no session id and that hold no login yet, by name, with the id they would get. */
  private waiting = new Map<string, string>();
  private cancelWaiting: (() => void) | null = null;
  private parent: DirectoryWatch | null = null;
  /** What watched the sessions directory last; null until it is watched, and while it is watched again. */
  private backend: WatchBackend | null = null;
  private readonly opener: WatchOpener;
  private schema: Promise<void> | null = null;
  /** What keeps the sessions directory from being read or watched, null while it works. */
  private parentProblem: string | null = null;
  private started: Promise<void> | null = null;
  private listed = false;
  /** The sessions found at start: /readyz waits for their first comparison. */
  private initial: SessionLoop[] = [];
  private stopping = false;
  private cancelRescan: (() => void) | null = null;
  private scanning: Promise<void> | null = null;
  /** A scan was asked for while one ran (it may have read the directory before the change): run another. */
  private scanAgain = false;
  private rewatching: Promise<void> | null = null;
  /** Loops of removed sessions being stopped: shutdown waits for them. */
  private readonly retirements = new Set<Promise<void>>();
  private readonly log: Logger;

  /** `log` is the process's logger: each session's loop logs with its `session`. */
  constructor(
    store: SessionStore,
    private readonly options: FleetOptions,
    private readonly metrics: Metrics,
    private readonly baseLog: Logger,
    private readonly clock: Clock = systemClock,
  ) {
    this.log = baseLog.child({ component: 'fleet' });
    this.opener = new WatchOpener(options.watchMode, options.pollIntervalMs);
    this.outage = new OutageLog(this.log, clock);
    this.summary = new BackupSummary(this.log, clock);
    this.store = this.outage.watching(store);
    this.attempts = new LeaseAttempts(this.store, options.owner, options.leaseTtlMs, clock);
    this.renewals = new LeaseRenewals(this.store, options.owner, options.leaseTtlMs, clock, (error, sessionIds) => {
      metrics.databaseErrors.inc();
      this.log.debug({ err: describeError(error), leases: sessionIds.length }, 'renewing the leases failed; retrying');
      this.outage.failed('lease renewal', error, sessionIds);
    });
  }

  get healthy(): boolean {
    return this.problems.length === 0;
  }

  /**
   * The sessions directory cannot be read or watched, or the database cannot be prepared for the
   * sessions (every one of them fails the same way). A single session whose directory cannot be watched
   * does not make the process unhealthy (restarting it would not help the others): its lag grows instead.
   */
  get problems(): string[] {
    const problems: string[] = [];
    if (this.parentProblem) problems.push(`cannot watch the sessions directory: ${this.parentProblem}`);
    const loops = [...this.members.values()].map((member) => member.loop);
    const failing = loops.filter((loop) => !loop.databaseHealthy);
    if (failing.length > 0 && failing.length === loops.length)
      problems.push(failing[0]!.problems.find((problem) => problem.startsWith('cannot prepare')) ?? 'cannot prepare the database');
    return problems;
  }

  /**
   * See BackupLoop.allProtected: ready and healthy, and every session it writes protected — at least one,
   * unless the sessions directory holds none yet (nothing to lose). A removed session waiting for its
   * tombstone is not counted: its folder is gone.
   */
  allProtected(): boolean {
    if (!this.ready || !this.healthy) return false;
    const kept = [...this.members.values()].filter((member) => member.removedSince === null);
    const written = kept.filter((member) => member.loop.writerLease !== null);
    return (kept.length === 0 || written.length > 0) && written.every((member) => member.loop.protection().protected);
  }

  get ready(): boolean {
    return this.listed && !this.stopping && this.initial.every((loop) => loop.ready || loop.phase === 'stopped' || loop.watchStalled);
  }

  get watchBackend(): WatchBackend | null {
    return this.backend;
  }

  get defaultSession(): null {
    return null;
  }

  /** Sessions kept now. */
  get size(): number {
    return this.members.size;
  }

  /**
   * The sessions whose directory is gone and not back yet, with when that was seen (the loop's clock, ms):
   * each gets its tombstone `tombstoneAfterMs` after that, unless the directory returns.
   */
  get missing(): ReadonlyMap<string, number> {
    return new Map(
      [...this.members].filter(([, member]) => member.removedSince !== null).map(([id, member]) => [id, member.removedSince!]),
    );
  }

  /** The session ids kept now, sorted. */
  sessionIds(): string[] {
    return [...this.members.keys()].sort();
  }

  loopFor(sessionId: string): SessionLoop | null {
    const member = this.members.get(sessionId);
    return member && !member.retiring ? member.loop : null;
  }

  /**
   * Resolves once no session's backup, thinning or lease attempt and no lease renewal is in flight; starts
   * none, never rejects. For tests that move the loop's clock themselves (see SessionLoop.whenIdle).
   */
  async whenIdle(): Promise<void> {
    await Promise.all([...this.members.values()].map((member) => member.loop.whenIdle()));
    await this.renewals.idle();
    await this.attempts.idle();
  }

  /** Lists the sessions directory, starts a loop per session, and watches it; retried while it fails. Never rejects. */
  start(): Promise<void> {
    this.started ??= (async () => {
      this.armRescan();
      if (!this.stopping) this.summary.start();
      const backoff = new Backoff(RETRY_BACKOFF);
      while (!this.stopping) {
        try {
          await this.watchParent();
          await this.scan();
          this.initial = [...this.members.values()].map((member) => member.loop);
          this.listed = true;
          this.log.info(
            { sessionsDir: this.options.sessionsDir, sessions: this.members.size, watch: this.backend },
            `watching the sessions directory: ${this.members.size} session${this.members.size === 1 ? '' : 's'}`,
          );
          // Each session's start resolves once its directory is watched: no later write is missed. One that
          // cannot be watched (or vanished) must not hold up the others, nor `run`'s platform: its first
          // attempt is enough here, and its lag shows it until it works.
          // A few at a time: a thousand directories listed and watched at once is a burst of memory (every
          // file's stat in flight) and of queued queries, and no faster in all.
          await forEachLimited(this.initial, START_CONCURRENCY, async (loop) => {
            void loop.start();
            await loop.attempted();
          });
          return;
        } catch (error) {
          this.setParentProblem(error);
          await this.pause(backoff.fail());
        }
      }
    })();
    return this.started;
  }

  /**
   * Stops every session at once within one shutdown timeout: each waits until it has not changed for
   * `quietMs` (at most half of the timeout), then its final backup (skipped when nothing is pending; the
   * backups queue for the backup slots), then its lease is released. True when every session is stored
   * (or another process is its writer).
   */
  async shutdown(quietMs = this.options.shutdownQuietMs): Promise<boolean> {
    this.stopping = true;
    const deadline = this.clock.now() + this.options.shutdownTimeoutMs;
    this.summary.stop();
    this.cancelRescan?.();
    this.cancelWaiting?.();
    await this.parent?.close();
    this.parent = null;
    // A scan in flight may fail (the sessions directory removed meanwhile): that is no reason not to stop.
    await this.scanning?.catch(() => undefined);
    const members = [...this.members.values()];
    for (const member of members) member.cancelCheck?.();
    // What the kernel reported just before the stop reaches the dirty sets first: a session with nothing
    // pending skips its final read (skipWhenClean), which is only right once its last events are in.
    await sleep(this.clock, WATCH_SETTLE_MS);
    let stored = true;
    // Every session at once, each waiting for its own quiet period: the backups themselves queue for the
    // backup slots, and one shared deadline bounds everything (leases not released by then expire).
    // A session being recorded as removed has no final backup: its retirement is waited for instead.
    await Promise.all(
      members
        .filter((member) => !member.retiring)
        .map(async (member) => {
          const done = await member.loop.shutdown(quietMs, { deadline, releaseGraceMs: 0, skipWhenClean: true });
          if (!done) stored = false;
        }),
    );
    await within(this.clock, Promise.all(this.retirements), Math.max(0, deadline - this.clock.now()));
    this.renewals.stop();
    this.attempts.stop();
    return stored;
  }

  /** Creates or upgrades the schema once for every session; a failure is tried again by the next caller. */
  private readonly prepareSchema = (): Promise<void> => {
    if (this.schema === null) {
      this.schema = this.store.prepare().then(
        () => undefined,
        (error: unknown) => {
          this.schema = null;
          throw error;
        },
      );
    }
    return this.schema;
  };

  private armRescan(): void {
    this.cancelRescan = this.clock.setTimer(() => {
      void this.scan()
        .catch((error) => this.setParentProblem(error))
        .finally(() => {
          if (!this.stopping) this.armRescan();
        });
    }, this.options.tombstoneAfterMs);
  }

  /**
   * Reads the sessions directory: starts loops for new sessions, notes the ones whose directory is gone.
   * Asked for while a scan runs, another one follows it (that one may have read the directory too early).
   */
  private scan(): Promise<void> {
    if (this.scanning) {
      this.scanAgain = true;
      return this.scanning;
    }
    this.scanning = (async () => {
      do {
        this.scanAgain = false;
        const kept = new Set([...this.members.values()].map((member) => member.name));
        const entries = await listSessionsDir(this.options.sessionsDir, this.options.prefix, (name) => kept.has(name));
        this.parentProblem = null;
        const present = new Set<string>();
        const waiting = new Map<string, string>();
        for (const entry of entries) {
          if (entry.kind === 'waiting') waiting.set(entry.name, entry.sessionId);
          if (this.consider(entry)) present.add(entry.name);
        }
        for (const member of this.members.values()) {
          if (present.has(member.name)) this.present(member);
          else this.markMissing(member);
        }
        this.watchWaiting(waiting);
      } while (this.scanAgain && !this.stopping);
    })().finally(() => (this.scanning = null));
    return this.scanning;
  }

  /** A change in the sessions directory was reported: read it (the names' types come from the listing). */
  private changed(): void {
    void this.scan().catch((error) => this.setParentProblem(error));
  }

  /**
   * Looks at one entry of the sessions directory: a session gets a loop (once); a folder waiting for a login
   * is said once; anything else is skipped with one warning (saying so when it holds a login that is therefore
   * not kept). Returns true for a session directory.
   */
  private consider(entry: SessionsDirEntry): boolean {
    const once = (): boolean => {
      if (this.warned.has(entry.name)) return false;
      this.warned.add(entry.name);
      return true;
    };
    if (entry.kind === 'skipped') {
      if (once()) {
        const login = entry.holdsLogin ? '; it holds a login (creds.json), which is NOT kept through this entry' : '';
        this.log.warn({ entry: entry.name }, `skipped ${JSON.stringify(entry.name)} in the sessions directory: ${entry.why}${login}`);
      }
      return false;
    }
    if (entry.kind === 'waiting') {
      if (once())
        this.log.info(
          { entry: entry.name, session: entry.sessionId },
          `${JSON.stringify(entry.name)} in the sessions directory holds no login (creds.json) yet: ` +
            `its name is no session id, so it becomes session ${entry.sessionId} once it holds one`,
        );
      return false;
    }
    const member = this.members.get(entry.sessionId);
    if (member) {
      if (!member.retiring) this.present(member);
      return true;
    }
    if (!this.stopping) this.add(entry.name, entry.sessionId, entry.mapped);
    return true;
  }

  /**
   * Folders named unlike a session id become sessions once they hold a login, which no watch of the parent
   * reports: look for their creds.json every poll interval while there are any, and list the directory
   * again when one has it (so that a first login there is kept within about a second too).
   */
  private watchWaiting(waiting: Map<string, string>): void {
    this.waiting = waiting;
    if (waiting.size === 0 || this.cancelWaiting !== null || this.stopping) return;
    this.cancelWaiting = this.clock.setTimer(() => {
      this.cancelWaiting = null;
      void (async () => {
        const logins = await Promise.all([...this.waiting.keys()].map((name) => holdsLogin(path.join(this.options.sessionsDir, name))));
        if (logins.some(Boolean)) this.changed();
        else this.watchWaiting(this.waiting);
      })();
    }, this.options.pollIntervalMs);
  }

  private add(name: string, sessionId: string, mapped: boolean): void {
    // A mapped id does not show its folder: every line of its loop names it (the folder name only).
    const log = this.baseLog.child(mapped ? { session: sessionId, folder: name } : { session: sessionId });
    let loop: SessionLoop | null = null;
    // A directory the fleet saw removed is on its way to a tombstone, a normal event for a platform (a
    // customer leaving): no lag, so that the lag alert does not fire for every customer who leaves.
    const metrics = this.metrics.session(
      sessionId,
      readingsOf(() => (this.members.get(sessionId)?.removedSince != null ? null : loop)),
    );
    loop = new SessionLoop(
      this.store,
      {
        ...this.options,
        sessionId,
        dir: path.join(this.options.sessionsDir, name),
        // A mapped session's folder name is stored before anything else of it, so that restore can recreate it.
        prepareSchema: mapped ? () => this.prepareSchema().then(() => this.store.recordFolder(sessionId, name)) : this.prepareSchema,
        renewals: this.renewals,
        attempts: this.attempts,
        outageLog: this.outage,
        summary: this.summary,
        backupSlots: this.slots,
        // Spread over the interval: every session's periodic full rescan at once would starve the others' backups.
        firstRescanMs: randomInt(1, this.options.intervalMs + 1),
      },
      metrics,
      log,
      this.clock,
    );
    this.members.set(sessionId, {
      name,
      sessionId,
      loop,
      removedSince: null,
      cancelCheck: null,
      retiring: false,
      retry: new Backoff(RETRY_BACKOFF),
    });
    this.metrics.sessions?.set(this.members.size);
    // Sessions found at start are started together by start(); later ones at once.
    if (this.listed) {
      this.log.info(mapped ? { session: sessionId, folder: name } : { session: sessionId }, 'new session directory: backing it up');
      void loop.start();
    }
  }

  private present(member: Member): void {
    if (member.removedSince === null) return;
    // Back within --interval: a re-pair (the loop follows the new directory itself), not a removal.
    member.removedSince = null;
    member.cancelCheck?.();
    member.cancelCheck = null;
  }

  private markMissing(member: Member): void {
    if (member.retiring || member.removedSince !== null) return;
    member.removedSince = this.clock.now();
    this.checkLater(member, this.options.tombstoneAfterMs);
  }

  private checkLater(member: Member, ms: number): void {
    member.cancelCheck?.();
    member.cancelCheck = this.clock.setTimer(() => {
      member.cancelCheck = null;
      void this.checkRemoved(member);
    }, ms);
  }

  /** The directory was seen missing --interval ago: if it still is, record the session as removed and stop keeping it. */
  private async checkRemoved(member: Member): Promise<void> {
    if (this.stopping || member.retiring || member.removedSince === null) return;
    const dir = path.join(this.options.sessionsDir, member.name);
    const state = await this.entryState(dir);
    if (state === 'present') return this.present(member);
    if (state === 'unknown') {
      // The sessions directory itself is missing or unreadable (an unmounted volume), or the entry cannot
      // be looked at: that is no customer leaving. Look again later.
      this.checkLater(member, member.retry.fail());
      return;
    }
    member.retiring = true;
    const { sessionId } = member;
    let done!: () => void;
    // Registered before the tombstone is written, so that a shutdown meanwhile waits for all of it.
    const retirement = new Promise<void>((resolve) => (done = resolve));
    this.retirements.add(retirement);
    try {
      const outcome = await member.loop.tombstone();
      if (outcome === 'failure') {
        // The database failed, or nobody holds the lease right now: keep the session and try again soon.
        member.retiring = false;
        if (!this.stopping) this.checkLater(member, member.retry.fail());
        return;
      }
      if (outcome === 'standby')
        this.log.info({ session: sessionId }, 'session directory removed; its writer (another process) records it');
      if ((await this.entryState(dir)) === 'present') {
        // Recreated while the tombstone was written (a backup of it may even have gone first): the session
        // stays, and its whole directory is stored again, over the tombstone.
        member.retiring = false;
        this.present(member);
        if (outcome === 'written') void member.loop.backupNow();
        return;
      }
      await member.loop.retire();
      this.members.delete(sessionId);
      this.metrics.forget(sessionId);
      this.metrics.sessions?.set(this.members.size);
    } finally {
      this.retirements.delete(retirement);
      done();
    }
  }

  /**
   * Whether `dir`, an entry of the sessions directory, is a directory ('present'), certainly gone ('gone':
   * ENOENT while the sessions directory itself reads fine), or cannot be told ('unknown').
   */
  private async entryState(dir: string): Promise<'present' | 'gone' | 'unknown'> {
    const info = await stat(dir).catch((error: NodeJS.ErrnoException) => error);
    if (!(info instanceof Error)) return info.isDirectory() ? 'present' : 'gone';
    if (info.code !== 'ENOENT' || this.parentProblem !== null) return 'unknown';
    return (await readdir(this.options.sessionsDir).then(
      () => true,
      () => false,
    ))
      ? 'gone'
      : 'unknown';
  }

  /** Watches the sessions directory's own entries (natively, or by polling where inotify is unavailable). */
  private async watchParent(): Promise<void> {
    const old = this.parent;
    this.parent = null;
    await old?.close();
    if (!(await isDirectory(this.options.sessionsDir))) throw new Error(`${this.options.sessionsDir} does not exist or is not a directory`);
    const watch = await this.opener.open(this.options.sessionsDir, {
      // Any entry added or removed: the listing says what it is (a link, a file, a directory).
      entry: (_name, event, from) => {
        if (from === this.parent && event !== 'change') this.changed();
      },
      removed: (from) => {
        if (from === this.parent) this.setParentProblem(new Error(`${from.dir} was removed`));
      },
      // Events may have been lost: read the directory again.
      error: (error, from) => {
        if (from !== this.parent) return;
        this.log.warn({ err: describeError(error) }, 'watcher error on the sessions directory: reading it again');
        void this.scan().catch((scanError) => this.setParentProblem(scanError));
      },
      fellBack: (error, broken) => {
        this.log.warn({ err: describeError(error) }, 'native watching is unavailable for the sessions directory: polling it instead');
        // Broken while running: what it watched is no longer seen; watch again (by polling) and read it again.
        if (broken !== null && broken === this.parent && this.listed && !this.stopping) void this.rewatch();
      },
    });
    if (this.stopping) {
      await watch.close();
      return;
    }
    this.parent = watch;
    this.backend = watch.backend;
    this.parentProblem = null;
  }

  private setParentProblem(error: unknown): void {
    const problem = describeError(error);
    if (this.parentProblem !== problem)
      this.log.error({ sessionsDir: this.options.sessionsDir, err: problem }, `cannot watch the sessions directory, retrying: ${problem}`);
    this.parentProblem = problem;
    if (this.listed && !this.stopping) void this.rewatch();
  }

  /** The sessions directory went away or its watcher broke: watch it again when it is there. */
  private rewatch(): Promise<void> {
    this.rewatching ??= (async () => {
      this.backend = null;
      const backoff = new Backoff(RETRY_BACKOFF);
      while (!this.stopping) {
        try {
          await this.watchParent();
          await this.scan();
          this.log.info({ sessionsDir: this.options.sessionsDir }, 'watching the sessions directory again');
          return;
        } catch (error) {
          this.parentProblem = describeError(error);
          await this.pause(backoff.fail());
        }
      }
    })().finally(() => (this.rewatching = null));
    return this.rewatching;
  }

  private pause(ms: number): Promise<void> {
    return sleep(this.clock, ms);
  }
}

async function isDirectory(dir: string): Promise<boolean> {
  return stat(dir).then(
    (info) => info.isDirectory(),
    () => false,
  );
}
