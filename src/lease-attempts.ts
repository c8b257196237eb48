// One acquisition statement for every lease this process waits for (a keeper of many sessions standing by
// while another keeper holds them): a thousand sessions tried one by one would be a thousand statements
// (and as many holder look-ups) every third of the TTL.
import type { Clock } from './clock.js';
import type { Lease, SessionStore } from './store/index.js';

/** What a session waiting for its lease hears from a batch attempt. */
export interface WaitingLease {
  /** Taken by a statement that started at `startedAt` (the local clock, ms). Also told after `remove` (release it then). */
  acquired(lease: Lease, startedAt: number): void;
  /** Another live process holds it (`holder`, null when the statement could not tell who). */
  standby(holder: string | null): void;
  /** The statement failed; the session keeps waiting. */
  failed(error: unknown): void;
}

/**
 * Tries every registered session's lease for `owner` in one statement every third of `ttlMs`. A session
 * asking to be tried at once (first start, a lease it gave up or lost) joins the next prompt batch instead:
 * those asked for while a statement runs go together in the next one, so a thousand sessions starting
 * make a few statements, not a thousand. Batches never overlap (a session is never acquired twice at once).
 */
export class LeaseAttempts {
  private readonly waiting = new Map<string, WaitingLease>();
  /** Sessions asking to be tried at once, with whoever waits for that attempt to end. */
  private readonly prompt = new Map<string, WaitingLease>();
  private promptDone: Promise<void> | null = null;
  private cancelTimer: (() => void) | null = null;
  private running: Promise<void> = Promise.resolve();
  private stopped = false;
  private periodicInFlight = false;

  constructor(
    private readonly store: SessionStore,
    private readonly owner: string,
    private readonly ttlMs: number,
    private readonly clock: Clock,
  ) {}

  /**
   * Tries the session with the others every third of the TTL from now on (replacing what was registered
   * for it), until it is acquired or removed. `now`: also in the next prompt batch; the promise settles
   * once that batch has ended (at once without `now`); never rejects.
   */
  add(sessionId: string, waiting: WaitingLease, now = false): Promise<void> {
    if (this.stopped) return Promise.resolve();
    this.waiting.set(sessionId, waiting);
    if (!this.cancelTimer) this.schedule();
    if (!now) return Promise.resolve();
    this.prompt.set(sessionId, waiting);
    this.promptDone ??= this.enqueue(() => {
      this.promptDone = null;
      const batch = [...this.prompt];
      this.prompt.clear();
      return batch;
    });
    return this.promptDone;
  }

  /** Stops trying the session's lease (acquired, or the session is no longer kept). */
  remove(sessionId: string, waiting: WaitingLease): void {
    if (this.waiting.get(sessionId) === waiting) this.waiting.delete(sessionId);
    if (this.prompt.get(sessionId) === waiting) this.prompt.delete(sessionId);
  }

  /** Sessions waiting for their lease. */
  get size(): number {
    return this.waiting.size;
  }

  /** Settles once the statement in flight (if any) and its outcomes have ended; never rejects. */
  idle(): Promise<void> {
    return this.running;
  }

  /** Stops the timer; nothing more is tried. */
  stop(): void {
    this.stopped = true;
    this.cancelTimer?.();
    this.cancelTimer = null;
  }

  /** A steady cadence, whatever a statement takes; one still in flight when the next is due is not doubled. */
  private schedule(): void {
    this.cancelTimer = this.clock.setTimer(() => {
      this.cancelTimer = null;
      if (this.stopped || this.waiting.size === 0) return;
      this.schedule();
      if (this.periodicInFlight) return;
      this.periodicInFlight = true;
      void this.enqueue(() => [...this.waiting]).finally(() => (this.periodicInFlight = false));
    }, this.ttlMs / 3);
  }

  /** Runs a batch after the one in flight; `take` picks its sessions when it starts (not when it is queued). */
  private enqueue(take: () => [string, WaitingLease][]): Promise<void> {
    // Never rejects: a session's callback that threw must not stop every later batch (nor go unhandled).
    const run = this.running.then(() => this.attempt(take())).catch(() => undefined);
    this.running = run;
    return run;
  }

  private async attempt(batch: [string, WaitingLease][]): Promise<void> {
    if (batch.length === 0 || this.stopped) return;
    const startedAt = this.clock.now();
    let outcomes: Awaited<ReturnType<SessionStore['acquireLeases']>>;
    try {
      outcomes = await this.store.acquireLeases(
        batch.map(([sessionId]) => sessionId),
        this.owner,
        this.ttlMs,
      );
    } catch (error) {
      for (const [sessionId, waiting] of batch) if (this.waiting.get(sessionId) === waiting) waiting.failed(error);
      return;
    }
    const told = new Map(batch);
    for (const outcome of outcomes) {
      const waiting = told.get(outcome.sessionId);
      if (!waiting) continue;
      if ('lease' in outcome) {
        // Told even when removed meanwhile (the session stopped): a lease taken must be released, not left to expire.
        this.remove(outcome.sessionId, waiting);
        waiting.acquired({ owner: outcome.lease.owner, token: outcome.lease.token }, startedAt);
      } else if (this.waiting.get(outcome.sessionId) === waiting) waiting.standby(outcome.holder);
    }
  }
}
