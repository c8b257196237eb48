// One renewal statement for every lease this process holds (a keeper of many sessions): a thousand
// sessions renewed one by one would be a thousand statements every third of the TTL.
import type { Clock } from './clock.js';
import type { Lease, SessionStore } from './store/index.js';

/** What a held lease hears from a batch renewal. */
export interface HeldLease {
  readonly lease: Lease;
  /** It was renewed by a statement that started at `startedAt` (the local clock, ms). */
  renewed(startedAt: number): void;
  /** It was not renewed: it expired and was taken, or was released. */
  lost(): void;
  /** The statement failed, or has not answered for a third of the TTL; the lease is kept until it runs out by the local clock. */
  failed(): void;
}

/**
 * Renews every registered lease of `owner` in one statement every third of `ttlMs`. Leases are added
 * when acquired and removed when released or lost; each hears how its renewal went.
 */
export class LeaseRenewals {
  private readonly held = new Map<string, HeldLease>();
  private cancelTimer: (() => void) | null = null;
  private running: Promise<void> = Promise.resolve();
  private stopped = false;
  private inFlight = false;

  constructor(
    private readonly store: SessionStore,
    private readonly owner: string,
    private readonly ttlMs: number,
    private readonly clock: Clock,
    /** A renewal statement for `sessionIds` failed (counted once, however many leases it carried). */
    private readonly onError: (error: unknown, sessionIds: string[]) => void,
  ) {}

  /** Renews `held` with the others from now on (replacing what was registered for the session). */
  add(sessionId: string, held: HeldLease): void {
    this.held.set(sessionId, held);
    if (!this.cancelTimer && !this.stopped) this.schedule();
  }

  /** Stops renewing the session's lease (released, lost, or the session is no longer kept). */
  remove(sessionId: string, held: HeldLease): void {
    if (this.held.get(sessionId) === held) this.held.delete(sessionId);
  }

  /** Leases renewed together. */
  get size(): number {
    return this.held.size;
  }

  /** Settles once the renewal in flight (if any) has ended; never rejects. */
  idle(): Promise<void> {
    return this.running;
  }

  /** Stops the timer; leases are released by their keepers. */
  stop(): void {
    this.stopped = true;
    this.cancelTimer?.();
    this.cancelTimer = null;
  }

  /** A steady cadence, whatever a statement takes; one still in flight when the next is due is not doubled. */
  private schedule(): void {
    this.cancelTimer = this.clock.setTimer(() => {
      this.cancelTimer = null;
      if (this.stopped || this.held.size === 0) return;
      this.schedule();
      if (this.inFlight) {
        // The last statement has not answered for a third of the TTL: each lease still counts only until it
        // runs out by the local clock (a statement may hang up to its query timeout, longer than the TTL).
        for (const held of this.held.values()) held.failed();
        return;
      }
      this.inFlight = true;
      this.running = this.renewAll().finally(() => (this.inFlight = false));
    }, this.ttlMs / 3);
  }

  private async renewAll(): Promise<void> {
    const batch = [...this.held];
    if (batch.length === 0) return;
    const startedAt = this.clock.now();
    let renewed: Set<string>;
    try {
      renewed = await this.store.renewLeases(
        this.owner,
        batch.map(([sessionId, held]) => ({ sessionId, token: held.lease.token })),
        this.ttlMs,
      );
    } catch (error) {
      this.onError(
        error,
        batch.map(([sessionId]) => sessionId),
      );
      for (const [, held] of batch) held.failed();
      return;
    }
    for (const [sessionId, held] of batch) {
      // Released or replaced while the statement ran: what it says is about a lease no longer kept.
      if (this.held.get(sessionId) !== held) continue;
      if (renewed.has(sessionId)) held.renewed(startedAt);
      else held.lost();
    }
  }
}
